package qemu

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmdisk"
)

// TestVMStorage boots one VM the way storage hands it over: its root a
// qcow2 overlay made with vmdisk, larger than the ext4 in it, on
// virtio-scsi (found by serial, not by name); extra disks on every bus;
// 9p shares, one read-only. Then, while it runs, a disk is plugged and
// unplugged and the root grows.
func TestVMStorage(t *testing.T) {
	needQEMU(t)
	tmp := t.TempDir()
	agent := buildAgent(t, tmp)
	tree := busyboxTree(t, tmp)
	for _, l := range []string{"df", "touch", "readlink", "mount", "grep", "wc", "head", "dd"} {
		if err := os.Symlink("busybox", filepath.Join(tree, "bin", l)); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	qemuImg, _ := exec.LookPath("qemu-img")
	root := storageRoot(t, tmp, tree, 2<<30)
	root.Bus = "virtio-scsi"
	rootDisk := root.Path
	rawDisk := func(name string, size int64, content string) string {
		p := filepath.Join(tmp, name+".raw")
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	share, rw := filepath.Join(tmp, "share"), filepath.Join(tmp, "rw")
	for _, dir := range []string{share, rw} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(share, "hello.txt"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	d, err := New(Config{Dir: filepath.Join(tmp, "vms"), Agent: agent, CgroupParent: "/hangar-vm-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	spec := driver.Spec{
		ID: "h1", Hostname: "vm1",
		Args: []string{"/bin/sh", "-c", "exec sleep 100000"}, Env: []string{"PATH=/bin"},
		StopSignal: syscall.SIGTERM, Limits: driver.Limits{CPUCount: 1},
		Root: driver.Root{Disk: root},
		Disks: []driver.Disk{
			{Name: "data", Path: rawDisk("data", 64<<20, "data disk"), Format: "raw",
				Limits: driver.IOLimits{ReadBps: 50 << 20, WriteBps: 50 << 20, ReadIops: 1000, WriteIops: 1000}},
			{Name: "fast", Path: rawDisk("fast", 32<<20, "nvme disk"), Format: "raw", Bus: "nvme", ReadOnly: true},
			{Name: "more", Path: rawDisk("more", 16<<20, "scsi disk"), Format: "raw", Bus: "virtio-scsi"},
		},
		Mounts: []driver.Mount{
			{Type: "bind", Source: share, Destination: "/mnt/share", Name: "share", ReadOnly: true},
			{Type: "bind", Source: rw, Destination: "/mnt/rw", Name: "a-share-name-longer-than-31-bytes"},
		},
	}
	start := time.Now()
	if _, err := d.Start(ctx, spec); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("booted to agent ready in %v", time.Since(start))
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
	must := func(args ...string) string {
		t.Helper()
		out, code := run(args...)
		if code != 0 {
			t.Fatalf("%v: code %d: %s", args, code, out)
		}
		return out
	}
	// rootSize is the root filesystem's size as df says, in bytes.
	rootSize := func() int64 {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(must("df", "-k", "/")), "\n")
		f := strings.Fields(lines[len(lines)-1])
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("df: %q", lines)
		}
		return kb << 10
	}

	t.Run("root grown to its disk", func(t *testing.T) {
		// ext4 keeps a few percent for its own tables.
		if size := rootSize(); size < 1900<<20 || size > 2<<30 {
			t.Fatalf("root filesystem of %d MiB on a 2 GiB disk (the image's ext4 is %d MiB)", size>>20, vmdisk.Size(0, 0, 0)>>20)
		}
	})
	t.Run("disks by id", func(t *testing.T) {
		for link, content := range map[string]string{
			"virtio-data":                   "data disk",
			"nvme-QEMU_NVMe_Ctrl_fast":      "nvme disk",
			"scsi-0QEMU_QEMU_HARDDISK_more": "scsi disk",
			"scsi-0QEMU_QEMU_HARDDISK_root": "",
		} {
			out := must("head", "-c", strconv.Itoa(len(content)), "/dev/disk/by-id/"+link)
			if out != content {
				t.Errorf("%s holds %q, want %q", link, out, content)
			}
		}
		// Written through, so that the write reaches QEMU.
		if out, code := run("dd", "if=/dev/zero", "of=/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_fast", "bs=4096", "count=1", "conv=fsync"); code == 0 {
			t.Errorf("wrote to the read-only disk: %s", out)
		}
		if b, err := os.ReadFile(spec.Disks[1].Path); err != nil || !bytes.HasPrefix(b, []byte("nvme disk")) {
			t.Errorf("the read-only disk's file changed: %q %v", b[:16], err)
		}
	})
	t.Run("shares", func(t *testing.T) {
		if out := must("cat", "/mnt/share/hello.txt"); out != "from the host\n" {
			t.Errorf("shared file reads %q", out)
		}
		out, code := run("sh", "-c", "echo no > /mnt/share/new")
		if code == 0 || !strings.Contains(out, "Read-only file system") {
			t.Errorf("write to the read-only share: code %d: %s", code, out)
		}
		if _, err := os.Stat(filepath.Join(share, "new")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the read-only share took a file: %v", err)
		}
		must("sh", "-c", "echo yes > /mnt/rw/new")
		if b, err := os.ReadFile(filepath.Join(rw, "new")); err != nil || string(b) != "yes\n" {
			t.Errorf("written through the share: %q %v", b, err)
		}
		if err := d.Standby(ctx, "h1", driver.Compression{}); !errors.Is(err, errdefs.ErrConflict) {
			t.Errorf("standby with shares: %v, want a conflict", err)
		}
		called := false
		if _, err := d.Checkpoint(ctx, "h1", filepath.Join(tmp, "state"), driver.Compression{}, func(context.Context) error { called = true; return nil }); !errors.Is(err, errdefs.ErrConflict) || called {
			t.Errorf("checkpoint with shares: %v (callback called: %v), want a conflict", err, called)
		}
	})
	t.Run("hotplug", func(t *testing.T) {
		hot := driver.Disk{Name: "hot", Path: rawDisk("hot", 8<<20, "hot disk"), Format: "raw"}
		start := time.Now()
		if err := d.AttachDisk(ctx, "h1", hot); err != nil {
			t.Fatalf("attach: %v", err)
		}
		t.Logf("attach: %v", time.Since(start))
		if out := must("head", "-c", "8", "/dev/disk/by-id/virtio-hot"); out != "hot disk" {
			t.Errorf("plugged disk holds %q", out)
		}
		for _, tc := range []struct {
			name string
			err  error
			do   func() error
		}{
			{"name taken", errdefs.ErrConflict, func() error { return d.AttachDisk(ctx, "h1", hot) }},
			{"missing file", errdefs.ErrNotFound, func() error {
				return d.AttachDisk(ctx, "h1", driver.Disk{Name: "x", Path: filepath.Join(tmp, "nope"), Format: "raw"})
			}},
			{"bad bus", errdefs.ErrInvalidArgument, func() error {
				return d.AttachDisk(ctx, "h1", driver.Disk{Name: "x", Path: hot.Path, Format: "raw", Bus: "ide"})
			}},
			{"detach the root", errdefs.ErrInvalidArgument, func() error { return d.DetachDisk(ctx, "h1", "root") }},
			{"detach unknown", errdefs.ErrNotFound, func() error { return d.DetachDisk(ctx, "h1", "nope") }},
			{"shrink", errdefs.ErrInvalidArgument, func() error { return d.ResizeDisk(ctx, "h1", "data", 1<<20) }},
			{"attach to a stopped VM", driver.ErrNotRunning, func() error { return d.AttachDisk(ctx, "h2", hot) }},
		} {
			if err := tc.do(); !errors.Is(err, tc.err) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
			}
		}
		start = time.Now()
		if err := d.DetachDisk(ctx, "h1", "hot"); err != nil {
			t.Fatalf("detach: %v", err)
		}
		t.Logf("detach: %v", time.Since(start))
		if out, code := run("ls", "/dev/disk/by-id/"); code != 0 || strings.Contains(out, "virtio-hot") || !strings.Contains(out, "virtio-data") {
			t.Errorf("links after detach: %s", out)
		}
		// The file is closed: QEMU holds no lock on it any more.
		if out, err := exec.Command(qemuImg, "info", hot.Path).CombinedOutput(); err != nil {
			t.Errorf("qemu-img info of the detached disk: %v: %s", err, out)
		}
		// Its port is free again, and a SCSI disk joins the controller.
		if err := d.AttachDisk(ctx, "h1", driver.Disk{Name: "hot2", Path: hot.Path, Format: "raw", Bus: "virtio-scsi"}); err != nil {
			t.Fatalf("attach a SCSI disk: %v", err)
		}
		if out := must("head", "-c", "8", "/dev/disk/by-id/scsi-0QEMU_QEMU_HARDDISK_hot2"); out != "hot disk" {
			t.Errorf("plugged SCSI disk holds %q", out)
		}
	})
	t.Run("root grows while running", func(t *testing.T) {
		start := time.Now()
		if err := d.ResizeDisk(ctx, "h1", "root", 3<<30); err != nil {
			t.Fatalf("resize: %v", err)
		}
		t.Logf("resize: %v", time.Since(start))
		if size := rootSize(); size < 2900<<20 || size > 3<<30 {
			t.Fatalf("root filesystem of %d MiB after growing its disk to 3 GiB", size>>20)
		}
		if size, _, err := vmdisk.Info(ctx, qemuImg, rootDisk, "qcow2"); err != nil || size != 3<<30 {
			t.Fatalf("root image after resize: %d bytes, %v", size, err)
		}
	})
	if err := d.Stop(ctx, "h1", syscall.SIGTERM, 10*time.Second, false); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
