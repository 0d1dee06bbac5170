package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
)

// TestVMFacts boots two VMs (TCG: slow) to check, against a real guest,
// what issue 15's instances API reads: the workload's start and end (an
// exit code; an OOM kill by the guest kernel), a path's kind through the
// agent, the QEMU process's figures, q35's memory headroom, and an agent
// that serves nothing (agent.skip).
func TestVMFacts(t *testing.T) {
	needQEMU(t)
	tmp := t.TempDir()
	agent := buildAgent(t, tmp)
	tree := busyboxTree(t, tmp)
	exits := make(chan driver.Exit, 4)
	d, err := New(Config{Dir: filepath.Join(tmp, "vms"), Agent: agent, Machine: "q35", CgroupParent: "/hangar-vm-facts-test",
		OnExit: func(e driver.Exit) { exits <- e }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	waitExit := func(t *testing.T, id string) driver.Exit {
		t.Helper()
		select {
		case e := <-exits:
			if e.ID != id {
				t.Fatalf("exit of %s, want %s", e.ID, id)
			}
			return e
		case <-time.After(3 * time.Minute):
			t.Fatalf("%s did not end", id)
		}
		return driver.Exit{}
	}

	t.Run("exit code, stat, stats, hotplug headroom", func(t *testing.T) {
		if err := os.Symlink("/etc/hostname", filepath.Join(tree, "etc", "name-link")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(tree, "etc", "hostname"), []byte("vm\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		rootDisk := rawRoot(t, filepath.Join(tmp), tree)
		// The root disk's limits.read/limits.write (disk_io_bps).
		rootDisk.Limits = driver.IOLimits{ReadBps: 20 << 20, WriteBps: 10 << 20}
		spec := driver.Spec{
			ID: "f1", Hostname: "f1", Root: driver.Root{Disk: rootDisk},
			// Ends with 3 once the test says so.
			Args:       []string{"/bin/sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.2; done; exit 3"},
			Env:        []string{"PATH=/bin"},
			StopSignal: syscall.SIGTERM,
			Limits:     driver.Limits{CPUCount: 1, MemoryBytes: 256 << 20, MemoryHotplug: 128 << 20},
		}
		start := time.Now()
		pid, err := d.Start(ctx, spec)
		if err != nil {
			t.Fatalf("start: %v", err)
		}
		t.Logf("q35 with headroom booted in %v", time.Since(start))
		defer d.Stop(ctx, "f1", syscall.SIGTERM, 0, true)

		if st, _ := d.State(ctx, "f1"); !st.WorkloadStarted || st.Status != driver.StatusRunning {
			t.Fatalf("state %+v: want running with its workload started", st)
		}
		stats := []struct {
			path   string
			follow bool
			want   driver.GuestStat
		}{
			{"/etc/hostname", false, driver.GuestStat{Exists: true, Type: "file", Mode: 0o640, Size: 3}},
			{"/etc", false, driver.GuestStat{Exists: true, Type: "directory", Mode: 0o755}},
			{"/etc/name-link", false, driver.GuestStat{Exists: true, Type: "symlink", Mode: 0o777, Size: int64(len("/etc/hostname")), Target: "/etc/hostname"}},
			{"/etc/name-link", true, driver.GuestStat{Exists: true, Type: "file", Mode: 0o640, Size: 3}},
			{"/nonexistent", false, driver.GuestStat{}},
			{"/etc/hostname/below", false, driver.GuestStat{Err: "not a directory"}},
		}
		for _, s := range stats {
			got, err := d.GuestStat(ctx, "f1", s.path, s.follow)
			if s.want.Type == "directory" {
				got.Size = 0 // the filesystem's
			}
			if err != nil || got != s.want {
				t.Errorf("stat %s (follow %t) = %+v, %v; want %+v", s.path, s.follow, got, err, s.want)
			}
		}

		vs, err := d.VMStats(ctx, "f1")
		if err != nil {
			t.Fatal(err)
		}
		if vs.CPUSeconds <= 0 || vs.MemoryRSS <= 0 || vs.MemoryVMS < vs.MemoryRSS || vs.VCPUs != 1 ||
			vs.Memory != 256<<20 || vs.MemoryHotplug != 128<<20 {
			t.Fatalf("stats %+v", vs)
		}
		t.Logf("stats: %+v", vs)
		// The headroom is QEMU's: DIMM slots up to maxmem, the base RAM
		// as asked.
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "size=256M,slots=8,maxmem=384M") {
			t.Fatalf("QEMU's command line lacks the headroom: %q (%v)", cmdline, err)
		}
		out, err := d.get("f1").monitor().run("query-memory-size-summary", nil)
		var sum struct {
			Base int64 `json:"base-memory"`
		}
		if err != nil || json.Unmarshal(out, &sum) != nil || sum.Base != 256<<20 {
			t.Fatalf("query-memory-size-summary: %s %v", out, err)
		}

		// The root disk is throttled as its limits say.
		v := d.get("f1")
		v.mu.Lock()
		var rootKey string
		for _, p := range v.disks.Disks {
			if p.Name == "root" && p.Throttled {
				rootKey = p.Key
			}
		}
		v.mu.Unlock()
		if rootKey == "" {
			t.Fatal("the root disk has no throttle filter")
		}
		out, err = v.monitor().run("qom-get", map[string]any{"path": "/objects/" + diskGroupID(rootKey), "property": "limits"})
		var lim struct {
			ReadBps  int64 `json:"bps-read"`
			WriteBps int64 `json:"bps-write"`
		}
		if err != nil || json.Unmarshal(out, &lim) != nil || lim.ReadBps != 20<<20 || lim.WriteBps != 10<<20 {
			t.Fatalf("root throttle group limits: %s %v", out, err)
		}
		if err := d.GuestWriteFile(ctx, "f1", "/tmp/go", driver.GuestFileWrite{Type: "file", Mode: 0o644, Content: strings.NewReader("")}); err != nil {
			t.Fatal(err)
		}
		e := waitExit(t, "f1")
		if !e.Known || e.Code != 3 || e.Signal != 0 || e.OOM || e.NotFound || e.Error != "" {
			t.Fatalf("exit %+v, want code 3", e)
		}
		if _, err := d.VMStats(ctx, "f1"); !errors.Is(err, driver.ErrNotRunning) {
			t.Fatalf("stats of an ended VM: %v", err)
		}
	})

	t.Run("OOM kill, agent skipped", func(t *testing.T) {
		// The workload waits for a file in a share from the host: the
		// agent, skipped, cannot be asked to write one.
		share := t.TempDir()
		spec := driver.Spec{
			ID: "f2", Hostname: "f2", Root: driver.Root{Disk: rawRoot(t, t.TempDir(), tree)},
			Mounts: []driver.Mount{{Type: "bind", Source: share, Destination: "/share", Name: "share"}},
			// Doubles a string until the guest runs out of memory,
			// once the test has seen the agent refuse.
			Args:       []string{"/bin/sh", "-c", "while [ ! -e /share/go ]; do sleep 0.2; done; s=x; while true; do s=\"$s$s\"; done"},
			Env:        []string{"PATH=/bin"},
			StopSignal: syscall.SIGTERM,
			SkipAgent:  true,
			Limits:     driver.Limits{CPUCount: 1, MemoryBytes: 256 << 20},
		}
		if _, err := d.Start(ctx, spec); err != nil {
			t.Fatalf("start: %v", err)
		}
		defer d.Stop(ctx, "f2", syscall.SIGTERM, 0, true)
		_, err := d.GuestStat(ctx, "f2", "/etc", false)
		var ge *driver.GuestFileError
		if !errors.As(err, &ge) || !ge.Disabled {
			t.Errorf("stat with the agent skipped: %v, want a disabled error", err)
		}
		if _, err := d.Exec(ctx, "f2", driver.ExecSpec{Args: []string{"true"}, Env: []string{"PATH=/bin"}}); err == nil || !strings.Contains(err.Error(), "skip_guest_agent") {
			t.Errorf("exec with the agent skipped: %v", err)
		}
		if st, _ := d.State(ctx, "f2"); !st.WorkloadStarted {
			t.Errorf("state %+v: the skipped agent still reports the workload", st)
		}
		if err := os.WriteFile(filepath.Join(share, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		e := waitExit(t, "f2")
		if !e.Known || e.Signal != 9 || !e.OOM || e.Code != 137 {
			log, _ := d.ConsoleLog(ctx, "f2")
			t.Fatalf("exit %+v, want an OOM kill; console:\n%s", e, log)
		}
	})
}
