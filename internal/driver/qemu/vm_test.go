package qemu

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/vmdisk"
)

// These tests boot a real VM under QEMU (TCG here: slow), so they share
// one VM and skip, saying why, where QEMU or a kernel is missing.

func needQEMU(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("booting a VM needs root (its QEMU gets a cgroup of its own)")
	}
	for _, p := range []string{"qemu-system-x86_64", "qemu-img", "mkfs.ext4", "debugfs", "busybox"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed (scripts/deps.sh installs it)", p)
		}
	}
	if _, err := findKernel("", ""); err != nil {
		t.Skipf("no guest kernel: %v", err)
	}
}

// buildAgent builds cmd/hangar-agent, static.
func buildAgent(t testing.TB, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "hangar-agent")
	cmd := exec.Command("go", "build", "-o", out, "github.com/hangar-dev/hangar/cmd/hangar-agent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build agent: %v\n%s", err, b)
	}
	return out
}

// busyboxTree makes a root tree with a static busybox.
func busyboxTree(t testing.TB, dir string) string {
	t.Helper()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "root", "tmp", "proc", "sys", "dev"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, _ := exec.LookPath("busybox")
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"sh", "sleep", "uname", "cat", "echo", "date", "ls", "ps", "true", "false"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// storageRoot makes a VM's root disk as storage does: an ext4 image of
// tree and a qcow2 overlay over it of size bytes (0: the image's size).
func storageRoot(t *testing.T, dir, tree string, size int64) *driver.Disk {
	t.Helper()
	ctx := context.Background()
	mkfs, _ := exec.LookPath("mkfs.ext4")
	qemuImg, _ := exec.LookPath("qemu-img")
	base := filepath.Join(dir, "base.ext4")
	if err := vmdisk.BuildExt4(ctx, mkfs, tree, base, 0); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root.qcow2")
	if err := vmdisk.CreateOverlay(ctx, qemuImg, base, "raw", root, size); err != nil {
		t.Fatal(err)
	}
	return &driver.Disk{Name: "root", Path: root, Format: "qcow2"}
}

// rawRoot makes a VM's root disk as a cloning pool (btrfs) does: the
// instance's own raw ext4 image of tree.
func rawRoot(t testing.TB, dir, tree string) *driver.Disk {
	t.Helper()
	mkfs, _ := exec.LookPath("mkfs.ext4")
	root := filepath.Join(dir, "root.raw")
	if err := vmdisk.BuildExt4(context.Background(), mkfs, tree, root, 0); err != nil {
		t.Fatal(err)
	}
	return &driver.Disk{Name: "root", Path: root, Format: "raw"}
}

// runtimeFiles are all an instance's directory may hold: the driver makes
// no disk of its own.
var runtimeFiles = []string{
	fileQMP, fileAgent, filePid, fileLog, fileConsole, fileConsoleSock,
	fileInitrd, fileState, fileMeta, "nvram.fd", "nvram-secboot.fd",
}

func TestVMLifecycle(t *testing.T) {
	needQEMU(t)
	tmp := t.TempDir()
	agent := buildAgent(t, tmp)
	root := busyboxTree(t, tmp)
	exitc := make(chan driver.Exit, 4)
	d, err := New(Config{Dir: filepath.Join(tmp, "vms"), Agent: agent, CgroupParent: "/hangar-vm-test", OnExit: func(e driver.Exit) { exitc <- e }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	// A raw root, as a btrfs pool clones it (TestVMStorage and
	// TestVMNetwork boot qcow2 overlays, as a dir pool makes them).
	rootDisk := rawRoot(t, tmp, root)
	spec := driver.Spec{
		ID: "h1", Hostname: "vm1", Root: driver.Root{Disk: rootDisk},
		Args: []string{"/bin/sh", "-c", "echo workload up; exec sleep 100000"},
		Env:  []string{"PATH=/bin", "FOO=bar"}, Cwd: "/root",
		StopSignal: syscall.SIGTERM,
		Limits:     driver.Limits{CPUCount: 1, MemoryBytes: MinMemory}, // the floor must boot
	}
	start := time.Now()
	pid, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("booted to agent ready in %v (pid %d)", time.Since(start), pid)
	defer d.Stop(ctx, "h1", syscall.SIGTERM, 0, true)

	run := func(args ...string) (string, int) {
		t.Helper()
		r, w, _ := os.Pipe()
		p, err := d.Exec(ctx, "h1", driver.ExecSpec{Args: args, Env: []string{"PATH=/bin"}, Stdout: w, Stderr: w})
		w.Close()
		if err != nil {
			t.Fatalf("exec %v: %v", args, err)
		}
		var out bytes.Buffer
		out.ReadFrom(r)
		code, err := p.Wait()
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return out.String(), code
	}
	t.Run("exec", func(t *testing.T) {
		out, code := run("uname", "-a")
		if code != 0 || !strings.Contains(out, "Linux vm1") {
			t.Fatalf("uname: %q code %d", out, code)
		}
		if _, code := run("nonexistent"); code != 127 {
			t.Fatalf("missing command: code %d, want 127", code)
		}
		if _, code := run("sh", "-c", "exit 3"); code != 3 {
			t.Fatalf("exit 3: code %d", code)
		}
		// Into the root disk storage gave (read on the host after stop).
		if out, code := run("sh", "-c", "echo written in the guest > /root/marker && busybox sync"); code != 0 {
			t.Fatalf("write to the root: code %d: %s", code, out)
		}
	})
	t.Run("exec with a terminal", func(t *testing.T) {
		p, err := d.Exec(ctx, "h1", driver.ExecSpec{Args: []string{"sh"}, Env: []string{"PATH=/bin"}, TTY: true, Width: 100, Height: 40})
		if err != nil {
			t.Fatal(err)
		}
		tty := p.TTY()
		defer tty.Close()
		if _, err := tty.Write([]byte("stty size; tty; exit 4\n")); err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(tty)
		code, err := p.Wait()
		if err != nil || code != 4 {
			t.Fatalf("wait: %d %v", code, err)
		}
		if !strings.Contains(string(out), "40 100") || !strings.Contains(string(out), "/dev/pts/") {
			t.Fatalf("terminal output: %q", out)
		}
	})
	t.Run("console", func(t *testing.T) { testConsole(t, d, run) })
	t.Run("pause", func(t *testing.T) {
		if err := d.Freeze(ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		st, _ := d.State(ctx, "h1")
		if st.Status != driver.StatusFrozen {
			t.Fatalf("status %v, want Frozen", st.Status)
		}
		if err := d.Unfreeze(ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		st, _ = d.State(ctx, "h1")
		if st.Status != driver.StatusRunning {
			t.Fatalf("status %v, want Running", st.Status)
		}
	})
	t.Run("stop", func(t *testing.T) {
		if err := d.Stop(ctx, "h1", syscall.SIGTERM, 10*time.Second, false); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-exitc:
			if e.Error != "" {
				t.Fatalf("exit with error %q", e.Error)
			}
			t.Logf("exit %+v", e)
		case <-time.After(10 * time.Second):
			t.Fatal("no exit reported")
		}
		log, _ := d.ConsoleLog(ctx, "h1")
		if !strings.Contains(string(log), "workload up") {
			t.Fatalf("console log lacks the workload's output:\n%s", log)
		}
	})
	t.Run("the root is storage's", func(t *testing.T) {
		ents, err := os.ReadDir(filepath.Join(tmp, "vms"))
		if err != nil || len(ents) != 1 || ents[0].Name() != "h1" {
			t.Fatalf("driver dir holds %v (%v), want only h1", ents, err)
		}
		ents, err = os.ReadDir(filepath.Join(tmp, "vms", "h1"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !slices.Contains(runtimeFiles, e.Name()) {
				t.Errorf("instance dir holds %s, not a runtime file", e.Name())
			}
		}
		out, err := exec.Command("debugfs", "-R", "cat /root/marker", rootDisk.Path).Output()
		if err != nil || string(out) != "written in the guest\n" {
			t.Fatalf("the root disk holds %q (%v), want the guest's write", out, err)
		}
		if err := d.Delete(ctx, "h1"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(tmp, "vms", "h1")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("instance dir after delete: %v", err)
		}
		if _, err := os.Stat(rootDisk.Path); err != nil {
			t.Fatalf("delete removed the root disk: %v", err)
		}
	})
}
