package qemu

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestStateHeader(t *testing.T) {
	dir := t.TempDir()
	want := stateHeader{Machine: "microvm", Memory: 512 << 20, CPUs: 2, NICSlots: []string{"eth0", ""},
		NICs: map[string]string{"eth0": "00:16:3e:00:00:01"}, Disks: &diskLayout{Ports: 2, SCSI: scsiNone}}
	p := filepath.Join(dir, "state")
	var b bytes.Buffer
	if err := writeStateHeader(&b, want); err != nil {
		t.Fatal(err)
	}
	b.WriteString("QEVM the stream")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	f, got, err := openState(p)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(f)
	f.Close()
	if string(rest) != "QEVM the stream" {
		t.Fatalf("the file is left at %q, want QEMU's stream", rest)
	}
	if got.Memory != want.Memory || got.CPUs != want.CPUs || got.Machine != want.Machine || got.NICs["eth0"] != "00:16:3e:00:00:01" || got.Disks == nil || got.Disks.Ports != 2 {
		t.Fatalf("header %+v, want %+v", got, want)
	}

	for _, tc := range []struct {
		name    string
		content string
		err     error
	}{
		{"standby's headerless stream", "QEVM\x00\x00\x00\x03", errdefs.ErrInvalidArgument},
		{"empty", "", errdefs.ErrInvalidArgument},
		{"truncated header", stateMagic + `{"memory":1`, errdefs.ErrInvalidArgument},
		{"no memory", stateMagic + `{"cpus":1}` + "\n", errdefs.ErrInvalidArgument},
		{"not JSON", stateMagic + "memory=1\n", errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad")
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if f, _, err := openState(p); !errors.Is(err, tc.err) {
				if f != nil {
					f.Close()
				}
				t.Fatalf("open: %v, want %v", err, tc.err)
			}
		})
	}
	if _, _, err := openState(filepath.Join(dir, "missing")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing file: %v, want not found", err)
	}
}

// TestStartRefusesBadRestore checks the restore arguments before
// anything starts: no QEMU runs, no instance directory is made.
func TestStartRefusesBadRestore(t *testing.T) {
	tmp := t.TempDir()
	d, err := New(Config{Dir: filepath.Join(tmp, "vms"), Machine: "microvm"})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, hdr stateHeader) string {
		var b bytes.Buffer
		if err := writeStateHeader(&b, hdr); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	q35 := write("q35", stateHeader{Machine: "q35", Memory: 256 << 20, CPUs: 1})
	firmware := write("fw", stateHeader{Firmware: true, Memory: 256 << 20, CPUs: 1})
	kernel := write("kernel", stateHeader{Machine: "microvm", Memory: 256 << 20, CPUs: 1})
	root := &driver.Disk{Name: "root", Path: filepath.Join(tmp, "root.raw"), Format: "raw"}
	for _, tc := range []struct {
		name string
		spec driver.Spec
		err  error
	}{
		{"forked without a state", driver.Spec{Forked: true}, errdefs.ErrInvalidArgument},
		{"missing state", driver.Spec{RestoreState: filepath.Join(tmp, "nope")}, errdefs.ErrNotFound},
		{"another machine type", driver.Spec{RestoreState: q35}, errdefs.ErrInvalidArgument},
		{"a firmware VM's state", driver.Spec{RestoreState: firmware}, errdefs.ErrInvalidArgument},
		{"a kernel VM's state for a firmware VM", driver.Spec{RestoreState: kernel, Root: driver.Root{Disk: root, Firmware: true}}, errdefs.ErrInvalidArgument},
		{"a forked firmware VM", driver.Spec{RestoreState: firmware, Forked: true, Root: driver.Root{Disk: root, Firmware: true}}, errdefs.ErrNotImplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.ID = "h9"
			if spec.Root.Disk == nil {
				spec.Root.Disk = root
			}
			if _, err := d.Start(context.Background(), spec); !errors.Is(err, tc.err) {
				t.Fatalf("start: %v, want %v", err, tc.err)
			}
			if _, err := os.Stat(filepath.Join(tmp, "vms", "h9")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("instance dir after a refused start: %v", err)
			}
		})
	}
}

// TestVMCheckpointFork boots a VM with a NIC, serving HTTP, with a
// process started by exec beside its workload and an exec still running,
// checkpoints it while the paused callback copies its root disk, then
// starts a fork from the state and the copy with another ID, tap, MAC,
// address and hostname: both run the processes of before the checkpoint,
// both answer exec and HTTP, each with its own identity.
func TestVMCheckpointFork(t *testing.T) {
	needQEMU(t)
	tmp := t.TempDir()
	agent := buildAgent(t, tmp)
	tree := busyboxTree(t, tmp)
	for _, l := range []string{"httpd", "ip", "hostname", "head", "od", "kill", "cp"} {
		if err := os.Symlink("busybox", filepath.Join(tree, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(tree, "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "www/index.html"), []byte("hello from the vm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Dir: filepath.Join(tmp, "vms"), Agent: agent, CgroupParent: "/hangar-vm-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ns := newNetnsThread(t)
	t.Cleanup(ns.close)
	ns.do(func() {
		err = bridgeWithTap("br1", "tap1", netip.MustParsePrefix("10.99.0.1/24"))
		if err == nil {
			err = bridgeWithTap("br2", "tap2", netip.MustParsePrefix("10.98.0.1/24"))
		}
	})
	if err != nil {
		t.Fatalf("set up the test's network: %v", err)
	}
	ctx := context.Background()
	src := driver.Spec{
		ID: "h1", Hostname: "vm1", Root: driver.Root{Disk: rawRoot(t, tmp, tree)},
		Args: []string{"/bin/httpd", "-f", "-p", "80", "-h", "/www"}, Env: []string{"PATH=/bin"},
		StopSignal: syscall.SIGTERM,
		Limits:     driver.Limits{CPUCount: 1, MemoryBytes: 512 << 20},
		NICs: []driver.NIC{{Name: "eth0", HostName: "tap1", Hwaddr: "00:16:3e:00:00:01",
			Addresses: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")}, Gateway4: netip.MustParseAddr("10.99.0.1")}},
	}
	ns.do(func() { _, err = d.Start(ctx, src) })
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer d.Stop(ctx, "h1", syscall.SIGTERM, 0, true)

	run := func(id string, args ...string) string {
		t.Helper()
		r, w, _ := os.Pipe()
		p, err := d.Exec(ctx, id, driver.ExecSpec{Args: args, Env: []string{"PATH=/bin"}, Stdout: w, Stderr: w})
		w.Close()
		if err != nil {
			t.Fatalf("%s: exec %v: %v", id, args, err)
		}
		out, _ := io.ReadAll(r)
		r.Close()
		if code, err := p.Wait(); err != nil || code != 0 {
			t.Fatalf("%s: %v: code %d, %v: %s", id, args, code, err, out)
		}
		return string(out)
	}
	get := func(addr string) string {
		t.Helper()
		var body string
		var err error
		ns.do(func() { body, err = httpGet(addr) })
		if err != nil {
			t.Fatalf("GET %s: %v", addr, err)
		}
		return body
	}
	// An exec that runs through the checkpoint, on the first channel:
	// in the fork its output must not land on the channels the fork's
	// daemon opens.
	ticker, err := d.Exec(ctx, "h1", driver.ExecSpec{Args: []string{"sh", "-c", "while :; do echo tick; sleep 0.05; done"}, Env: []string{"PATH=/bin"}})
	if err != nil {
		t.Fatal(err)
	}
	run("h1", "sh", "-c", "sleep 100000 >/dev/null 2>&1 </dev/null & echo $! > /root/sleeper")
	sleeper := strings.TrimSpace(run("h1", "cat", "/root/sleeper"))
	if !strings.Contains(get("10.99.0.2"), "hello from the vm") {
		t.Fatal("the source does not serve HTTP")
	}

	state := filepath.Join(tmp, "snap", "vm.state")
	if err := os.Mkdir(filepath.Dir(state), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Run("failed checkpoint", func(t *testing.T) {
		boom := errors.New("the disk snapshot failed")
		_, err := d.Checkpoint(ctx, "h1", state, driver.Compression{}, func(context.Context) error { return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("checkpoint: %v, want the callback's error", err)
		}
		ents, _ := os.ReadDir(filepath.Dir(state))
		if len(ents) != 0 {
			t.Fatalf("a failed checkpoint left %v", ents)
		}
		if st, _ := d.State(ctx, "h1"); st.Status != driver.StatusRunning {
			t.Fatalf("status %v after a failed checkpoint, want Running", st.Status)
		}
		run("h1", "true")
	})

	forkRoot := filepath.Join(tmp, "fork-root.raw")
	var diskState string
	var copied time.Duration
	pause, err := d.Checkpoint(ctx, "h1", state, driver.Compression{}, func(ctx context.Context) error {
		defer func(t0 time.Time) { copied = time.Since(t0) }(time.Now())
		st, _ := d.State(ctx, "h1")
		diskState = st.Status.String()
		out, err := exec.CommandContext(ctx, "cp", "--reflink=auto", "--sparse=always", src.Root.Disk.Path, forkRoot).CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checkpoint of a %d MiB VM: the guest was paused %v, of which %v copying its root disk in the callback; state file %d MiB",
		src.Limits.MemoryBytes>>20, pause, copied, fi.Size()>>20)
	if diskState != "Frozen" {
		t.Errorf("the disks were copied while the VM was %s, want Frozen", diskState)
	}
	if _, err := os.Stat(state + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left: %v", err)
	}
	if st, _ := d.State(ctx, "h1"); st.Status != driver.StatusRunning {
		t.Fatalf("status %v after the checkpoint, want Running", st.Status)
	}
	run("h1", "kill", "-0", sleeper)
	if !strings.Contains(get("10.99.0.2"), "hello from the vm") {
		t.Fatal("the source does not serve HTTP after the checkpoint")
	}

	fork := src
	fork.ID, fork.Hostname, fork.Root = "h2", "vm2", driver.Root{Disk: &driver.Disk{Name: "root", Path: forkRoot, Format: "raw"}}
	fork.RestoreState, fork.Forked = state, true
	fork.Limits.MemoryBytes = 0 // the saved machine's size applies
	fork.NICs = []driver.NIC{{Name: "eth0", HostName: "tap2", Hwaddr: "00:16:3e:00:00:02",
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.98.0.2/24")}, Gateway4: netip.MustParseAddr("10.98.0.1"),
		Nameservers: []netip.Addr{netip.MustParseAddr("10.98.0.1")}}}
	start := time.Now()
	ns.do(func() { _, err = d.Start(ctx, fork) })
	if err != nil {
		t.Fatalf("start the fork: %v", err)
	}
	t.Logf("fork: Start(RestoreState) to agent ready with its new identity: %v", time.Since(start))
	defer d.Stop(ctx, "h2", syscall.SIGTERM, 0, true)
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("the restore removed the state file: %v", err)
	}

	// The first execs in the fork take the channels the ticker had.
	for i := 0; i < 3; i++ {
		if out := run("h2", "echo", "fork"); out != "fork\n" {
			t.Fatalf("exec %d in the fork: %q, want only its own output", i, out)
		}
	}
	run("h2", "kill", "-0", sleeper)
	run("h1", "kill", "-0", sleeper)
	if got := strings.TrimSpace(run("h2", "cat", "/sys/class/net/eth0/address")); got != "00:16:3e:00:00:02" {
		t.Errorf("the fork's eth0 has MAC %s, want its own", got)
	}
	if got := strings.TrimSpace(run("h1", "cat", "/sys/class/net/eth0/address")); got != "00:16:3e:00:00:01" {
		t.Errorf("the source's eth0 has MAC %s", got)
	}
	if got := strings.TrimSpace(run("h2", "hostname")); got != "vm2" {
		t.Errorf("the fork's hostname is %s, want vm2", got)
	}
	if got := strings.TrimSpace(run("h1", "hostname")); got != "vm1" {
		t.Errorf("the source's hostname is %s", got)
	}
	addrs := run("h2", "ip", "-4", "addr", "show", "eth0")
	if !strings.Contains(addrs, "10.98.0.2/24") || strings.Contains(addrs, "10.99.0.2") {
		t.Errorf("the fork's addresses:\n%s", addrs)
	}
	if out := run("h2", "ip", "route"); !strings.Contains(out, "default via 10.98.0.1 dev eth0") {
		t.Errorf("the fork's routes:\n%s", out)
	}
	if out := run("h2", "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.98.0.1\n") {
		t.Errorf("the fork's resolv.conf:\n%s", out)
	}
	// The workload from before the checkpoint serves on the fork's own
	// address, through its new MAC (QEMU's receive filter followed it).
	if !strings.Contains(get("10.98.0.2"), "hello from the vm") {
		t.Fatal("the fork does not serve HTTP")
	}
	if !strings.Contains(get("10.99.0.2"), "hello from the vm") {
		t.Fatal("the source stopped serving HTTP")
	}
	if a, b := run("h1", "head", "-c", "32", "/dev/urandom"), run("h2", "head", "-c", "32", "/dev/urandom"); a == b {
		t.Errorf("source and fork draw the same random bytes: the fork's generator was not reseeded")
	}

	ticker.Signal(syscall.SIGKILL)
	ticker.Wait()
	for _, id := range []string{"h1", "h2"} {
		if err := d.Stop(ctx, id, syscall.SIGTERM, 10*time.Second, false); err != nil {
			t.Fatalf("stop %s: %v", id, err)
		}
		if st, _ := d.State(ctx, id); st.Status != driver.StatusStopped {
			t.Fatalf("%s: status %v after stop", id, st.Status)
		}
		if err := d.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
		for _, p := range cgroupFor("/hangar-vm-test", id).paths {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: cgroup %s left: %v", id, p, err)
			}
		}
	}
	checkTapReleased(t, ns, "tap1")
	checkTapReleased(t, ns, "tap2")
	if ents, _ := os.ReadDir(filepath.Join(tmp, "vms")); len(ents) != 0 {
		t.Errorf("driver dir holds %v after delete", ents)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("the state file went with the VMs: %v", err)
	}
}
