package instance

import (
	"errors"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/image"
)

func TestValidateOCIKeys(t *testing.T) {
	for _, tc := range []struct {
		key, value string
		ok         bool
	}{
		{"oci.entrypoint", `["/bin/sh","-c"]`, true},
		{"oci.entrypoint", `[]`, true},
		{"oci.entrypoint", `/bin/sh -c`, false},
		{"oci.entrypoint", `[1, 2]`, false},
		{"oci.cmd", `["sleep","60"]`, true},
		{"oci.cmd", `"sleep"`, false},
		{"oci.cwd", "/srv", true},
		{"oci.cwd", "srv", false},
		{"oci.uid", "1000", true},
		{"oci.uid", "4294967295", false},
		{"oci.uid", "-1", false},
		{"oci.gid", "0", true},
		{"oci.gid", "staff", false},
		{"oci.user", "1000", false},
	} {
		err := validateKey(tc.key, tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("%s=%q: err %v, want ok=%v", tc.key, tc.value, err, tc.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s=%q: error kind %v", tc.key, tc.value, err)
		}
	}
	if err := validateUserConfig(map[string]string{"volatile.oci.cmd": `["x"]`}, nil); err == nil {
		t.Error("volatile.oci.cmd is writable")
	}
}

func TestOCIProcess(t *testing.T) {
	img := ociDefaults(&image.RuntimeConfig{
		Entrypoint: []string{"/entry"}, Cmd: []string{"arg"}, Env: []string{"PATH=/bin", "A=image"},
		WorkingDir: "/app", UID: 1000, GID: 50, StopSignal: "SIGQUIT",
	})
	for _, tc := range []struct {
		name   string
		local  map[string]string
		cfg    map[string]string
		want   ociProcess
		ok     bool
		errMsg string
	}{
		{name: "plain image runs init", local: map[string]string{}, cfg: map[string]string{}},
		{name: "image defaults", local: img, cfg: img, ok: true,
			want: ociProcess{args: []string{"/entry", "arg"}, env: []string{"PATH=/bin", "A=image"}, cwd: "/app", uid: 1000, gid: 50, stop: syscall.SIGQUIT}},
		{name: "cmd override keeps entrypoint", local: img, cfg: with(img, "oci.cmd", `["other"]`, "oci.uid", "0", "oci.cwd", "/tmp"), ok: true,
			want: ociProcess{args: []string{"/entry", "other"}, env: []string{"PATH=/bin", "A=image"}, cwd: "/tmp", uid: 0, gid: 50, stop: syscall.SIGQUIT}},
		{name: "entrypoint override drops cmd", local: img, cfg: with(img, "oci.entrypoint", `["/bin/sh"]`), ok: true,
			want: ociProcess{args: []string{"/bin/sh"}, env: []string{"PATH=/bin", "A=image"}, cwd: "/app", uid: 1000, gid: 50, stop: syscall.SIGQUIT}},
		{name: "override on a plain image", local: map[string]string{}, cfg: map[string]string{"oci.cmd": `["/bin/true"]`}, ok: true,
			want: ociProcess{args: []string{"/bin/true"}, cwd: "/", stop: syscall.SIGTERM}},
		{name: "nothing to run", local: with(img, "volatile.oci.entrypoint", "[]", "volatile.oci.cmd", "[]"), cfg: with(img, "volatile.oci.entrypoint", "[]", "volatile.oci.cmd", "[]"), errMsg: "no entrypoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := ociProcessOf(tc.local, tc.cfg)
			if tc.errMsg != "" {
				if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err %v, want an invalid-argument error", err)
				}
				return
			}
			if err != nil || ok != tc.ok {
				t.Fatalf("ok %v err %v, want ok %v", ok, err, tc.ok)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(ociProcess{})); ok && diff != "" {
				t.Errorf("process (-want +got):\n%s", diff)
			}
		})
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := cloneMap(m)
	for i := 0; i < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func TestMergeEnv(t *testing.T) {
	got := mergeEnv([]string{"container=hangar"}, "PATH=/bin", "A=1", "A=2", "B=x=y")
	got = mergeEnv(got, "A=user", "C=3")
	want := []string{"container=hangar", "PATH=/bin", "A=user", "B=x=y", "C=3"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"SIGINT": syscall.SIGINT, "term": syscall.SIGTERM, "9": syscall.SIGKILL, "SIGNOPE": 0, "0": 0} {
		if got := parseSignal(in); got != want {
			t.Errorf("parseSignal(%q) = %v, want %v", in, got, want)
		}
	}
}
