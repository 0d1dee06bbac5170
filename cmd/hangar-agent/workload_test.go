package main

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

func TestWorkloadExit(t *testing.T) {
	tests := []struct {
		name string
		st   exitStatus
		oom  bool
		want vmagent.WorkloadExit
	}{
		{"exit 3", exitStatus{code: 3}, false, vmagent.WorkloadExit{Code: 3}},
		{"exit after a child's OOM kill is an exit", exitStatus{code: 1}, true, vmagent.WorkloadExit{Code: 1}},
		{"SIGKILL", exitStatus{code: 137, signal: 9}, false, vmagent.WorkloadExit{Code: 137, Signal: 9}},
		{"OOM kill", exitStatus{code: 137, signal: 9}, true, vmagent.WorkloadExit{Code: 137, Signal: 9, OOM: true}},
		{"SIGTERM is never OOM", exitStatus{code: 143, signal: 15}, true, vmagent.WorkloadExit{Code: 143, Signal: 15}},
	}
	for _, tt := range tests {
		if got := workloadExit(tt.st, tt.oom); got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestStartFailure(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		ok   bool
	}{
		{"lookup: not found", &lookupError{"x: not found", 127}, 127, true},
		{"lookup: not executable", &lookupError{"x: permission denied", 126}, 126, true},
		{"execve ENOENT (no interpreter)", syscall.ENOENT, 127, true},
		{"execve EACCES", syscall.EACCES, 126, true},
		{"execve ENOEXEC", syscall.ENOEXEC, 126, true},
		{"clone3 failure is not the command's", syscall.ENOSYS, 0, false},
		{"other", errors.New("boom"), 0, false},
	}
	for _, tt := range tests {
		e, ok := startFailure("/app", tt.err)
		if ok != tt.ok || (ok && (e.Code != tt.code || !e.NotFound || e.Message == "")) {
			t.Errorf("%s: %+v, %t", tt.name, e, ok)
		}
	}
}

func TestReadCounter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "memory.events")
	if err := os.WriteFile(p, []byte("low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := readCounter(p, "oom_kill"); err != nil || n != 1 {
		t.Fatalf("oom_kill = %d, %v", n, err)
	}
	if _, err := readCounter(p, "absent"); err == nil {
		t.Fatal("a missing key read")
	}
	if _, err := readCounter(filepath.Join(t.TempDir(), "nope"), "oom_kill"); err == nil {
		t.Fatal("a missing file read")
	}
	c := oomCounter{events: p}
	if !c.killed() {
		t.Fatal("an OOM kill in the cgroup not seen")
	}
}

func TestStatInfo(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("abc"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("f", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		follow bool
		want   vmagent.StatInfo
	}{
		{file, false, vmagent.StatInfo{Exists: true, Type: vmagent.TypeFile, Mode: 0o640, Size: 3}},
		{filepath.Join(dir, "l"), false, vmagent.StatInfo{Exists: true, Type: vmagent.TypeSymlink, Mode: 0o777, Size: 1, Target: "f"}},
		{filepath.Join(dir, "l"), true, vmagent.StatInfo{Exists: true, Type: vmagent.TypeFile, Mode: 0o640, Size: 3}},
		{filepath.Join(dir, "missing"), false, vmagent.StatInfo{}},
		{filepath.Join(file, "below"), false, vmagent.StatInfo{Err: "not a directory"}},
	}
	for _, tt := range tests {
		if got := statInfo(tt.path, tt.follow); got != tt.want {
			t.Errorf("statInfo(%s, %t) = %+v, want %+v", tt.path, tt.follow, got, tt.want)
		}
	}
	if _, err := statPath(vmagent.Stat{Path: "relative"}); !errors.Is(err, errInvalid) {
		t.Errorf("relative path: %v", err)
	}
}

func TestSkipAgentServes(t *testing.T) {
	on := &agent{}
	off := &agent{cfg: vmagent.Config{SkipAgent: true}}
	for _, typ := range []byte{vmagent.MsgExec, vmagent.MsgFileGet, vmagent.MsgFilePut, vmagent.MsgData, vmagent.MsgFileDelete, vmagent.MsgStat} {
		if !on.served(typ) || off.served(typ) {
			t.Errorf("request %d: served %t with the agent on, %t skipped", typ, on.served(typ), off.served(typ))
		}
	}
	for _, typ := range []byte{vmagent.MsgHello, vmagent.MsgShutdown, vmagent.MsgNetConfig, vmagent.MsgDisk, vmagent.MsgIdentity, vmagent.MsgNetState} {
		if !off.served(typ) {
			t.Errorf("request %d refused with the agent skipped: the daemon needs it", typ)
		}
	}
}
