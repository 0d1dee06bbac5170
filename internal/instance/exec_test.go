package instance

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestExecRequestValidate(t *testing.T) {
	ok := ExecRequest{Command: []string{"sh"}}
	tests := []struct {
		name  string
		edit  func(r *ExecRequest)
		field string // "" for valid
	}{
		{"valid", func(r *ExecRequest) {}, ""},
		{"no command", func(r *ExecRequest) { r.Command = nil }, "command"},
		{"empty program", func(r *ExecRequest) { r.Command = []string{""} }, "command"},
		{"NUL in argument", func(r *ExecRequest) { r.Command = []string{"sh", "a\x00b"} }, "command"},
		{"env key with =", func(r *ExecRequest) { r.Environment = map[string]string{"A=B": "x"} }, "environment"},
		{"empty env key", func(r *ExecRequest) { r.Environment = map[string]string{"": "x"} }, "environment"},
		{"relative cwd", func(r *ExecRequest) { r.Cwd = "tmp" }, "cwd"},
		{"negative width", func(r *ExecRequest) { r.Width = -1 }, "width"},
		{"huge height", func(r *ExecRequest) { r.Height = 1 << 20 }, "width/height"},
	}
	for _, tt := range tests {
		r := ok
		tt.edit(&r)
		err := r.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s: err = %v, want invalid argument naming %s", tt.name, err, tt.field)
		}
	}
}

func TestExecEnvironment(t *testing.T) {
	expanded := map[string]string{"environment.MODE": "prod", "environment.PATH": "/opt/bin", "limits.cpu": "1"}
	tests := []struct {
		name string
		req  ExecRequest
		want map[string]string
	}{
		{"instance env and defaults", ExecRequest{},
			map[string]string{"MODE": "prod", "PATH": "/opt/bin", "HOME": "/root", "USER": "root", "LANG": "C.UTF-8"}},
		{"request wins", ExecRequest{Environment: map[string]string{"MODE": "dev", "HOME": "/home/x"}},
			map[string]string{"MODE": "dev", "PATH": "/opt/bin", "HOME": "/home/x", "USER": "root", "LANG": "C.UTF-8"}},
		{"non-root gets no root defaults", ExecRequest{User: 1000},
			map[string]string{"MODE": "prod", "PATH": "/opt/bin", "LANG": "C.UTF-8"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, execEnvironment(expanded, tt.req)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
	if got := execEnvironment(nil, ExecRequest{})["PATH"]; got != defaultExecPath {
		t.Errorf("default PATH %q", got)
	}
}

func TestExec(t *testing.T) {
	s, drv, _, _ := newTestService(t)
	ctx := context.Background()
	req := imageReq("c1")
	req.Config = map[string]string{"environment.MODE": "prod"}
	if err := launch(t, s, req); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckExec(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(ctx, "c1", ExecRequest{Command: []string{"env"}, Cwd: "/tmp", User: 5, Group: 6}); err != nil {
		t.Fatal(err)
	}
	got := drv.execs[len(drv.execs)-1]
	if got.Cwd != "/tmp" || got.CwdOptional || got.UID != 5 || got.GID != 6 || !strings.Contains(strings.Join(got.Env, " "), "MODE=prod") {
		t.Errorf("driver got %+v", got)
	}
	// No cwd: HOME, which may be missing.
	if _, err := s.Exec(ctx, "c1", ExecRequest{Command: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	if got := drv.execs[len(drv.execs)-1]; got.Cwd != "/root" || !got.CwdOptional {
		t.Errorf("default cwd %q optional=%v, want /root optional", got.Cwd, got.CwdOptional)
	}

	for _, tt := range []struct {
		name   string
		status func() error
		want   string
	}{
		{"frozen", func() error { return s.Freeze(ctx, "c1") }, "frozen"},
		{"stopped", func() error { s.Unfreeze(ctx, "c1"); return s.Stop(ctx, "c1", StopOptions{Force: true}) }, "not running"},
	} {
		if err := tt.status(); err != nil {
			t.Fatal(err)
		}
		for _, err := range []error{s.CheckExec(context.Background(), "c1"), func() error { _, err := s.Exec(ctx, "c1", ExecRequest{Command: []string{"true"}}); return err }()} {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: err = %v, want invalid argument %q", tt.name, err, tt.want)
			}
		}
	}
	if _, err := s.Exec(ctx, "nope", ExecRequest{Command: []string{"true"}}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing instance: %v", err)
	}
}
