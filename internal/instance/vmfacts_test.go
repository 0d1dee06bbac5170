package instance

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestExitMessage(t *testing.T) {
	tests := []struct {
		name string
		e    driver.Exit
		want string
	}{
		{"unknown", driver.Exit{Code: 0}, ""},
		{"clean exit", driver.Exit{Known: true}, "exited with code 0"},
		{"exit 3", driver.Exit{Known: true, Code: 3}, "exited with code 3"},
		{"exit 137 by itself is an exit", driver.Exit{Known: true, Code: 137}, "exited with code 137"},
		{"not found", driver.Exit{Known: true, Code: 127, NotFound: true}, "command not found"},
		{"not executable", driver.Exit{Known: true, Code: 126, NotFound: true}, "command not executable"},
		{"SIGKILL", driver.Exit{Known: true, Code: 137, Signal: 9}, "killed by signal 9 (SIGKILL)"},
		{"OOM", driver.Exit{Known: true, Code: 137, Signal: 9, OOM: true}, "killed by signal 9 (SIGKILL) - OOM"},
		{"SIGTERM", driver.Exit{Known: true, Code: 143, Signal: 15}, "killed by signal 15 (SIGTERM)"},
		{"unnamed signal", driver.Exit{Known: true, Code: 128 + 40, Signal: 40}, "killed by signal 40"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitMessage(tt.e); got != tt.want {
				t.Fatalf("exitMessage(%+v) = %q, want %q", tt.e, got, tt.want)
			}
		})
	}
}

func TestParseHotplug(t *testing.T) {
	tests := []struct {
		v    string
		want int64
		ok   bool
	}{
		{"", 0, true},
		{"0", 0, true},
		{"128MiB", 128 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1GB", 1e9, true},
		{"64MiB", 0, false},
		{"10%", 0, false},
		{"lots", 0, false},
		{"-1GiB", 0, false},
		{"1.5", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.v, func(t *testing.T) {
			got, err := parseHotplug(tt.v)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("parseHotplug(%q) = %d, %v; want %d, ok %t", tt.v, got, err, tt.want, tt.ok)
			}
		})
	}
}

// fakeVMDriver is the fake driver as a VM runtime: memory hotplug as
// hotplugErr says, stats and guest stats as set, guest files refused.
type fakeVMDriver struct {
	*fakeDriver
	hotplugErr error
	stats      driver.VMStats
	stat       driver.GuestStat
	statErr    error
	statCalls  int
}

func (f *fakeVMDriver) MemoryHotplug() error { return f.hotplugErr }

func (f *fakeVMDriver) VMStats(_ context.Context, id string) (driver.VMStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[id]; !ok {
		return driver.VMStats{}, driver.ErrNotRunning
	}
	return f.stats, nil
}

func (f *fakeVMDriver) GuestStat(_ context.Context, id, _ string, _ bool) (driver.GuestStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statCalls++
	return f.stat, f.statErr
}

func (f *fakeVMDriver) GuestReadFile(context.Context, string, string, io.Writer) (driver.GuestFile, error) {
	return driver.GuestFile{}, errors.New("fake: no guest files")
}

func (f *fakeVMDriver) GuestWriteFile(context.Context, string, string, driver.GuestFileWrite) error {
	return errors.New("fake: no guest files")
}

func (f *fakeVMDriver) GuestDeleteFile(context.Context, string, string) error {
	return errors.New("fake: no guest files")
}

func newVMTestService(t *testing.T) (*Service, *fakeVMDriver) {
	t.Helper()
	s, drv, _, _ := newTestService(t)
	vm := &fakeVMDriver{fakeDriver: drv}
	s.cfg.Drivers[TypeVM] = vm
	return s, vm
}

func vmReq(name string, cfg map[string]string) CreateRequest {
	r := imageReq(name)
	r.Type, r.Config = TypeVM, cfg
	return r
}

func TestMemoryHotplugValidation(t *testing.T) {
	tests := []struct {
		name       string
		typ        Type
		cfg        map[string]string
		hotplugErr error
		noDriver   bool
		wantErr    string // "" accepts
	}{
		{"q35 host", TypeVM, map[string]string{"limits.memory": "256MiB", keyMemoryHotplug: "1GiB"}, nil, false, ""},
		{"zero is none", TypeVM, map[string]string{keyMemoryHotplug: "0"}, errors.New("microvm"), false, ""},
		{"microvm host", TypeVM, map[string]string{keyMemoryHotplug: "1GiB"}, errors.New("no memory hotplug: --vm-machine q35"), false, "--vm-machine q35"},
		{"driver without hotplug", TypeVM, map[string]string{keyMemoryHotplug: "1GiB"}, nil, true, "no memory hotplug"},
		{"too small", TypeVM, map[string]string{keyMemoryHotplug: "1MiB"}, nil, false, keyMemoryHotplug},
		{"percentage", TypeVM, map[string]string{keyMemoryHotplug: "10%"}, nil, false, "percentage"},
		{"beyond the host", TypeVM, map[string]string{"limits.memory": "4GiB", keyMemoryHotplug: "5GiB"}, nil, false, "host's"},
		{"container", TypeContainer, map[string]string{keyMemoryHotplug: "1GiB"}, nil, false, "virtual-machines only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, vm := newVMTestService(t)
			vm.hotplugErr = tt.hotplugErr
			if tt.noDriver {
				s.cfg.Drivers[TypeVM] = vm.fakeDriver
			}
			r := imageReq("v")
			r.Type, r.Config = tt.typ, tt.cfg
			err := launch(t, s, r)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want a 400 saying %q", err, tt.wantErr)
			}
		})
	}
}

func TestMemoryHotplugReachesTheDriver(t *testing.T) {
	s, vm := newVMTestService(t)
	if err := launch(t, s, vmReq("v", map[string]string{"limits.memory": "256MiB", keyMemoryHotplug: "512MiB", keyAgentSkip: "true"})); err != nil {
		t.Fatal(err)
	}
	spec := vm.lastSpec()
	if spec.Limits.MemoryBytes != 256<<20 || spec.Limits.MemoryHotplug != 512<<20 || !spec.SkipAgent {
		t.Fatalf("spec limits %+v, skip agent %t; want 256 MiB + 512 MiB headroom, skip", spec.Limits, spec.SkipAgent)
	}
}

func TestRunFacts(t *testing.T) {
	s, drv, _, _ := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("app")); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "app")
	if got.StartedAt.IsZero() || !got.StoppedAt.IsZero() || got.ExitCode != nil {
		t.Fatalf("after start: started %v stopped %v exit %v", got.StartedAt, got.StoppedAt, got.ExitCode)
	}
	started := got.StartedAt

	// The workload ends by itself, OOM-killed.
	drv.mu.Lock()
	pid := drv.running["h1"]
	delete(drv.running, "h1")
	drv.mu.Unlock()
	s.HandleExit(ctx, driver.Exit{ID: "h1", Pid: pid, Code: 137, Known: true, Signal: 9, OOM: true})
	got, _ = s.Get(ctx, "app")
	if got.ExitCode == nil || *got.ExitCode != 137 || got.ExitMessage != "killed by signal 9 (SIGKILL) - OOM" || got.StoppedAt.Before(started) {
		t.Fatalf("after OOM: exit %v %q stopped %v", got.ExitCode, got.ExitMessage, got.StoppedAt)
	}

	// A start clears the exit; a stop records the stop, and the exit
	// that follows it the workload's end.
	if err := s.Start(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(ctx, "app")
	if got.ExitCode != nil || got.ExitMessage != "" || !got.StartedAt.After(started) {
		t.Fatalf("after restart: exit %v %q started %v", got.ExitCode, got.ExitMessage, got.StartedAt)
	}
	drv.mu.Lock()
	pid = drv.running["h1"]
	drv.mu.Unlock()
	if err := s.Stop(ctx, "app", StopOptions{Timeout: -1}); err != nil {
		t.Fatal(err)
	}
	s.HandleExit(ctx, driver.Exit{ID: "h1", Pid: pid, Code: 143, Known: true, Signal: 15})
	got, _ = s.Get(ctx, "app")
	if got.Status != StatusStopped || got.StoppedAt.IsZero() || got.ExitCode == nil || got.ExitMessage != "killed by signal 15 (SIGTERM)" {
		t.Fatalf("after stop: %s stopped %v exit %v %q", got.Status, got.StoppedAt, got.ExitCode, got.ExitMessage)
	}
	// A late report of that run again changes nothing.
	s.HandleExit(ctx, driver.Exit{ID: "h1", Pid: pid, Code: 1, Known: true})
	if got, _ = s.Get(ctx, "app"); got.ExitMessage != "killed by signal 15 (SIGTERM)" {
		t.Fatalf("a second report changed the exit to %q", got.ExitMessage)
	}
}

func TestRunFactsParsing(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]string
		started bool
		code    *int
		msg     string
	}{
		{"none", map[string]string{}, false, nil, ""},
		{"times", map[string]string{keyLastStart: "2026-01-02T03:04:05.5Z", keyLastStop: "2026-01-02T03:05:05Z"}, true, nil, ""},
		{"bad time", map[string]string{keyLastStart: "yesterday"}, false, nil, ""},
		{"code without message", map[string]string{keyLastExitCode: "4"}, false, ptrInt(4), "exited with code 4"},
		{"code and message", map[string]string{keyLastExitCode: "127", keyLastExitMessage: "command not found"}, false, ptrInt(127), "command not found"},
		{"bad code", map[string]string{keyLastExitCode: "x", keyLastExitMessage: "m"}, false, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in Instance
			runFacts(&in, tt.cfg)
			if in.StartedAt.IsZero() == tt.started || (tt.code == nil) != (in.ExitCode == nil) || (tt.code != nil && *tt.code != *in.ExitCode) || in.ExitMessage != tt.msg {
				t.Fatalf("got started %v exit %v %q", in.StartedAt, in.ExitCode, in.ExitMessage)
			}
		})
	}
}

func ptrInt(n int) *int { return &n }

func TestAgentSkipRefusesRequests(t *testing.T) {
	s, vm := newVMTestService(t)
	ctx := context.Background()
	if err := launch(t, s, vmReq("v", map[string]string{keyAgentSkip: "true"})); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		do   func() error
	}{
		{"exec", func() error { _, err := s.Exec(ctx, "v", ExecRequest{Command: []string{"true"}}); return err }},
		{"stat", func() error { _, err := s.StatPath(ctx, "v", "/etc", false); return err }},
		{"read file", func() error { return s.ReadFile(ctx, "v", "/etc/hostname", func(*File) error { return nil }) }},
		{"delete file", func() error { return s.DeleteFile(ctx, "v", "/tmp/x") }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			if !errors.Is(err, errdefs.ErrConflict) || !strings.Contains(err.Error(), "skip_guest_agent") {
				t.Fatalf("err = %v, want a 409 naming skip_guest_agent", err)
			}
		})
	}
	if vm.statCalls != 0 || len(vm.execs) != 0 {
		t.Fatalf("the driver was asked (%d stats, %d execs)", vm.statCalls, len(vm.execs))
	}
	// Turned off, the same requests reach the guest.
	if err := s.Patch(ctx, "v", Patch{Config: map[string]string{keyAgentSkip: "false"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StatPath(ctx, "v", "/etc", false); err != nil || vm.statCalls != 1 {
		t.Fatalf("stat with the agent on: %v (%d calls)", err, vm.statCalls)
	}
}

func TestStatPathVM(t *testing.T) {
	s, vm := newVMTestService(t)
	ctx := context.Background()
	if err := launch(t, s, vmReq("v", nil)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		stat    driver.GuestStat
		statErr error
		want    PathInfo
		kind    error
	}{
		{"file", "/etc/hostname", driver.GuestStat{Exists: true, Type: "file", Mode: 0o644, Size: 3}, nil, PathInfo{Exists: true, IsFile: true, Mode: 0o644, Size: 3}, nil},
		{"dir", "/etc", driver.GuestStat{Exists: true, Type: "directory", Mode: 0o755}, nil, PathInfo{Exists: true, IsDir: true, Mode: 0o755}, nil},
		{"symlink", "/bin/sh", driver.GuestStat{Exists: true, Type: "symlink", Mode: 0o777, Target: "busybox"}, nil, PathInfo{Exists: true, IsSymlink: true, Mode: 0o777, LinkTarget: "busybox"}, nil},
		{"missing", "/nope", driver.GuestStat{}, nil, PathInfo{}, nil},
		{"denied", "/root/x", driver.GuestStat{Err: "permission denied"}, nil, PathInfo{Err: "permission denied"}, nil},
		{"relative path", "etc", driver.GuestStat{}, nil, PathInfo{}, errdefs.ErrInvalidArgument},
		{"agent error", "/x", driver.GuestStat{}, &driver.GuestFileError{Message: "bad path"}, PathInfo{}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm.stat, vm.statErr = tt.stat, tt.statErr
			got, err := s.StatPath(ctx, "v", tt.path, false)
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) {
					t.Fatalf("err = %v, want kind %v", err, tt.kind)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("StatPath = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := s.StatPath(ctx, "nope", "/", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown instance: %v", err)
	}
}

func TestVMStats(t *testing.T) {
	s, vm := newVMTestService(t)
	ctx := context.Background()
	if err := launch(t, s, vmReq("v", nil)); err != nil {
		t.Fatal(err)
	}
	if err := launch(t, s, imageReq("c")); err != nil {
		t.Fatal(err)
	}
	vm.stats = driver.VMStats{CPUSeconds: 1.5, MemoryRSS: 100, MemoryVMS: 200, Memory: 256 << 20, MemoryHotplug: 128 << 20, VCPUs: 2, NetRx: 7, NetTx: 9}
	got, err := s.VMStats(ctx, "v")
	want := VMStats{CPUSeconds: 1.5, MemoryRSS: 100, MemoryVMS: 200, AllocatedMemory: 384 << 20, VCPUs: 2, NetRx: 7, NetTx: 9}
	if err != nil || got != want {
		t.Fatalf("VMStats = %+v, %v; want %+v", got, err, want)
	}
	if _, err := s.VMStats(ctx, "c"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("container: %v, want a 400", err)
	}
	if err := s.Stop(ctx, "v", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VMStats(ctx, "v"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("stopped: %v, want a 409", err)
	}
}
