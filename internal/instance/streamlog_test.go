package instance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
)

// fakeLogDriver is the fake driver with its logs as files in dir/<id>,
// removed with the instance.
type fakeLogDriver struct {
	*fakeDriver
	dir string
}

func (f *fakeLogDriver) LogFile(id string, kind driver.LogKind) (string, error) {
	switch kind {
	case driver.LogConsole:
		return filepath.Join(f.dir, id, "console.log"), nil
	case driver.LogRuntime:
		return filepath.Join(f.dir, id, "runtime.log"), nil
	}
	return "", errdefs.Invalid("kind %d", kind)
}

func (f *fakeLogDriver) Delete(ctx context.Context, id string) error {
	if err := f.fakeDriver.Delete(ctx, id); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(f.dir, id))
}

// newLogTestService is newTestService with a log directory and a driver
// whose logs are files.
func newLogTestService(t testing.TB) (*Service, *fakeLogDriver) {
	t.Helper()
	db, drv := newFakeDB(), &fakeLogDriver{fakeDriver: newFakeDriver(), dir: t.TempDir()}
	s := New(Config{DB: db, Images: fakeImages{}, Storage: &fakeStorage{}, Drivers: map[Type]driver.Driver{TypeContainer: drv},
		Events: &fakeEvents{}, Architecture: "x86_64", HostMemory: 8 << 30, LogDir: t.TempDir()})
	s.onlineCPUs = fourCPUs
	drv.onExit = func(e driver.Exit) { s.HandleExit(context.Background(), e) }
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, drv
}

// readLog returns a log's lines, without follow.
func readLog(t *testing.T, s *Service, name string, src LogSource, tail int) []string {
	t.Helper()
	var got []string
	err := s.StreamLog(context.Background(), name, src, tail, false, func(lines [][]byte) error {
		for _, l := range lines {
			got = append(got, string(l))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("stream %s log: %v", src, err)
	}
	return got
}

// actions strips the time off daemon log lines.
func actions(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		_, out[i], _ = strings.Cut(l, " ")
	}
	return out
}

func TestStreamLogRejects(t *testing.T) {
	s, _ := newLogTestService(t)
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	denied := errors.New("denied")
	tests := []struct {
		name   string
		inst   string
		source LogSource
		authz  Authorizer
		want   error
	}{
		{"empty source", "c1", "", nil, errdefs.ErrInvalidArgument},
		{"unknown source", "c1", "console", nil, errdefs.ErrInvalidArgument},
		{"wire name is not the core's", "c1", "hypeman", nil, errdefs.ErrInvalidArgument},
		{"case matters", "c1", "APP", nil, errdefs.ErrInvalidArgument},
		{"unknown instance", "nope", LogApp, nil, errdefs.ErrNotFound},
		{"not allowed", "c1", LogApp, denyAuthz{denied}, denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.cfg.Authorizer = tt.authz
			defer func() { s.cfg.Authorizer = nil }()
			err := s.StreamLog(context.Background(), tt.inst, tt.source, -1, false, func([][]byte) error {
				t.Fatal("emit called")
				return nil
			})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

type denyAuthz struct{ err error }

func (d denyAuthz) Check(context.Context, auth.Object, auth.Entitlement) error { return d.err }
func (d denyAuthz) CanView(context.Context, auth.Object) bool                  { return false }

func TestStreamLogSources(t *testing.T) {
	s, drv := newLogTestService(t)
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := s.snapshot(mustLookup(t, s, "c1"))
	dir := filepath.Join(drv.dir, runtimeID(rec.ID))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for file, content := range map[string]string{"console.log": "app 1\napp 2\napp 3\n", "runtime.log": "qemu: warning\n"} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		source LogSource
		tail   int
		want   []string
	}{
		{LogApp, -1, []string{"app 1", "app 2", "app 3"}},
		{LogApp, 2, []string{"app 2", "app 3"}},
		{LogApp, 0, nil},
		{LogVMM, -1, []string{"qemu: warning"}},
		{LogHangar, 1, []string{"started"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s tail %d", tt.source, tt.tail), func(t *testing.T) {
			got := readLog(t, s, "c1", tt.source, tt.tail)
			if tt.source == LogHangar {
				got = actions(got)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func mustLookup(t testing.TB, s *Service, name string) *inst {
	t.Helper()
	in, err := s.lookup(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func TestStreamLogFollowEndsWithDelete(t *testing.T) {
	s, drv := newLogTestService(t)
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := s.snapshot(mustLookup(t, s, "c1"))
	console := filepath.Join(drv.dir, runtimeID(rec.ID), "console.log")
	if err := os.MkdirAll(filepath.Dir(console), 0o700); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	done := make(chan error, 1)
	go func() {
		done <- s.StreamLog(context.Background(), "c1", LogApp, -1, true, func(ls [][]byte) error {
			for _, l := range ls {
				lines <- string(l)
			}
			return nil
		})
	}()
	f, err := os.OpenFile(console, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hello\n")
	f.Close()
	select {
	case l := <-lines:
		if l != "hello" {
			t.Fatalf("got %q", l)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no line")
	}
	if err := s.Stop(context.Background(), "c1", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("follow ended with %v, want not found", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow still running after the delete")
	}
}

func TestHangarLogRecordsLifecycle(t *testing.T) {
	s, _ := newLogTestService(t)
	ctx := context.Background()
	steps := []struct {
		name string
		do   func() error
		want string // the line it adds
	}{
		{"create and start", func() error { return launch(t, s, imageReq("c1")) }, "created type=container"},
		{"", nil, "started"},
		{"pause", func() error { return s.Freeze(ctx, "c1") }, "paused"},
		{"resume", func() error { return s.Unfreeze(ctx, "c1") }, "resumed"},
		{"stop", func() error { return s.Stop(ctx, "c1", StopOptions{Force: true}) }, "stopped"},
		{"snapshot", func() error { _, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{Name: "snap0"}); return err }, "snapshot-created snap0"},
		{"start", func() error { return s.Start(ctx, "c1") }, "started"},
	}
	var want []string
	for _, st := range steps {
		if st.do != nil {
			if err := st.do(); err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
		}
		want = append(want, st.want)
	}
	got := readLog(t, s, "c1", LogHangar, -1)
	if !slices.Equal(actions(got), want) {
		t.Fatalf("daemon log:\n%s\nwant actions %q", strings.Join(got, "\n"), want)
	}
	for _, l := range got {
		ts, _, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Fatalf("line %q has no time: %v", l, err)
		}
	}
	// The events still go out, after the log line.
	if ev := s.cfg.Events.(*hangarLogEmitter).next.(*fakeEvents); len(ev.actions) < len(want) {
		t.Fatalf("emitted %q", ev.actions)
	}
}

func TestHangarLogLine(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600))
	tests := []struct {
		action, sub string
		meta        map[string]any
		want        string
	}{
		{"instance-started", "", nil, "2026-01-02T02:04:05.000006Z started"},
		{"instance-stopped", "", map[string]any{"stateful": true}, "2026-01-02T02:04:05.000006Z standby"},
		{"instance-stopped", "", nil, "2026-01-02T02:04:05.000006Z stopped"},
		{"instance-forked", "", map[string]any{"source": "a", "processes": true}, "2026-01-02T02:04:05.000006Z forked processes=true source=a"},
		{"instance-shutdown", "", map[string]any{"exit_code": 137, "error": "killed by signal 9"}, `2026-01-02T02:04:05.000006Z shutdown error="killed by signal 9" exit_code=137`},
		{"instance-snapshot-created", "snap0", nil, "2026-01-02T02:04:05.000006Z snapshot-created snap0"},
		{"instance-updated", "", map[string]any{"note": "a\nb"}, `2026-01-02T02:04:05.000006Z updated note="a\nb"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := string(hangarLogLine(at, tt.action, tt.sub, tt.meta)); got != tt.want+"\n" {
				t.Fatalf("got %q, want %q", got, tt.want+"\n")
			}
		})
	}
}

func TestHangarLogIgnoresOtherEntities(t *testing.T) {
	s, _ := newLogTestService(t)
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	before := readLog(t, s, "c1", LogHangar, -1)
	for _, e := range []event.Entity{
		{Kind: event.EntityProfile, Name: "c1"},
		{Kind: event.EntityInstance, Name: "c1", Project: "other"},
		{Kind: event.EntityInstance, Name: "nope"},
	} {
		s.cfg.Events.Lifecycle(context.Background(), "instance-updated", e, nil)
	}
	if after := readLog(t, s, "c1", LogHangar, -1); !slices.Equal(after, before) {
		t.Fatalf("log grew from %q to %q", before, after)
	}
}

func TestAppendBoundedRotates(t *testing.T) {
	tests := []struct {
		name        string
		max         int64
		lines       int
		wantRotated bool
	}{
		{"under the bound", 1000, 10, false},
		{"past the bound", 1000, 300, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "hangar.log")
			for i := range tt.lines {
				if err := appendBounded(path, fmt.Appendf(nil, "line %04d\n", i), tt.max); err != nil {
					t.Fatal(err)
				}
			}
			cur, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			old, err := os.ReadFile(path + ".1")
			if (err == nil) != tt.wantRotated {
				t.Fatalf("rotated: %v, want %v", err == nil, tt.wantRotated)
			}
			for _, b := range [][]byte{cur, old} {
				if int64(len(b)) > tt.max {
					t.Fatalf("a file holds %d bytes, over %d", len(b), tt.max)
				}
			}
			// The newest lines, in order, none missing, ending with the last.
			all := strings.Split(strings.TrimSuffix(string(old)+string(cur), "\n"), "\n")
			first := tt.lines - len(all)
			for i, l := range all {
				if want := fmt.Sprintf("line %04d", first+i); l != want {
					t.Fatalf("line %d is %q, want %q", i, l, want)
				}
			}
			if tt.wantRotated && !bytes.HasPrefix(cur, []byte("line")) {
				t.Fatalf("current file starts with %q", cur[:min(len(cur), 10)])
			}
		})
	}
}
