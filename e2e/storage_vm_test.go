package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestStorageVM: a VM whose root lives on a btrfs pool, grown by its
// root device's size (the guest's / is that big), with a custom block
// volume as a disk by id and a custom filesystem volume shared over 9p;
// a host directory read-only; a block volume hot-plugged while it runs.
// One boot: VMs run under TCG here.
func TestStorageVM(t *testing.T) {
	requireVM(t)
	requireBtrfs(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("storage", "create", "vb", "btrfs", "size=4GiB")
	d.deletePoolAtEnd(t, "vb")
	d.must("storage", "volume", "create", "vb", "disk1", "--type=block", "size=64MiB")
	d.must("storage", "volume", "create", "vb", "disk2", "--type=block", "size=32MiB")
	d.must("storage", "volume", "create", "vb", "share")
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(host, 0o755); err != nil {
		t.Fatal(err)
	}
	d.must("init", "busybox", "v1", "--vm", "-s", "vb", "-d", "root,size=2GiB", "-c", "limits.memory=256MiB")
	d.must("storage", "volume", "attach", "vb", "disk1", "v1")
	d.must("storage", "volume", "attach", "vb", "share", "v1", "/mnt/share")
	d.must("config", "device", "add", "v1", "hostdir", "disk", "source="+host, "path=/mnt/host", "readonly=true")
	d.must("start", "v1")

	// / is the 2GiB root, grown by the agent from the image's smaller disk.
	df := strings.Fields(strings.Split(strings.TrimSpace(d.must("exec", "v1", "--", "df", "-k", "/")), "\n")[1])
	total, _ := strconv.ParseInt(df[1], 10, 64)
	if total < 1900*1024 || total > 2048*1024 {
		t.Fatalf("guest / is %d KiB, want about 2 GiB:\n%v", total, df)
	}
	if out := d.must("exec", "v1", "--", "ls", "/dev/disk/by-id/"); !strings.Contains(out, "disk1") {
		t.Fatalf("block volume not among the guest's disks by id:\n%s", out)
	}
	d.must("exec", "v1", "--", "sh", "-c", "echo in-guest > /mnt/share/g")
	vol := filepath.Join(d.dir, "storage-pools", "vb", "custom", "share", "g")
	if b, err := os.ReadFile(vol); err != nil || string(b) != "in-guest\n" {
		t.Fatalf("the guest's write through 9p is not in the volume: %q %v", b, err)
	}
	if out := d.must("exec", "v1", "--", "cat", "/mnt/host/f"); out != "from-host\n" {
		t.Fatalf("host dir over 9p reads %q", out)
	}
	if _, _, code := d.hangar("exec", "v1", "--", "sh", "-c", "echo x > /mnt/host/g"); code == 0 {
		t.Fatal("wrote into a readonly host directory")
	}
	d.mustFail([]string{"storage", "volume", "delete", "vb", "disk1"}, "in use", "v1")

	// Hot-plugged: a second block volume appears in the running guest.
	d.must("storage", "volume", "attach", "vb", "disk2", "v1")
	waitFor(t, "disk2 in the guest", 30e9, func() bool {
		out, _, _ := d.hangar("exec", "v1", "--", "ls", "/dev/disk/by-id/")
		return strings.Contains(out, "disk2")
	})
	d.must("stop", "-f", "v1")
	d.must("delete", "v1")
}
