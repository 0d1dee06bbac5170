package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// TestStorageCrashRepair: hangard killed with -9 while a launch makes its
// volumes on a btrfs pool (an image unpacked into a subvolume, an
// instance's snapshot of it) leaves, after the restart's reconciliation,
// exactly the volumes it has records of: no half-made subvolume, no
// temporary one, no second loop device or mount. Whenever the kill lands,
// that holds. A subvolume made behind its back is removed too.
func TestStorageCrashRepair(t *testing.T) {
	requireBtrfs(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("storage", "create", "kb", "btrfs", "size=1GiB")
	d.deletePoolAtEnd(t, "kb")
	pool := filepath.Join(d.dir, "storage-pools", "kb")

	op, err := d.client().CreateInstance(context.Background(), api.InstancesPost{
		Name: "k1", Source: api.InstanceSource{Type: "image", Alias: "busybox"}, Start: true,
		InstancePut: api.InstancePut{Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "kb"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = op
	d.kill9()
	if out, err := exec.Command("btrfs", "subvolume", "create", filepath.Join(pool, "containers", "orphan")).CombinedOutput(); err != nil {
		t.Fatalf("make an unrecorded subvolume: %v: %s", err, out)
	}
	d.start()
	d.deletePoolAtEnd(t, "kb")

	recorded := map[string]bool{}
	out := d.must("storage", "volume", "list", "kb", "--format", "csv")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Split(line, ","); len(f) > 1 {
			recorded[f[0]+"/"+f[1]] = true
		}
	}
	names := d.instanceNames()
	for _, dir := range []string{"images", "containers"} {
		entries, _ := os.ReadDir(filepath.Join(pool, dir))
		for _, e := range entries {
			switch {
			case strings.HasPrefix(e.Name(), ".tmp-"):
				t.Errorf("temporary volume %s/%s left after the restart", dir, e.Name())
			case e.Name() == "orphan":
				t.Errorf("unrecorded subvolume %s/orphan kept", dir)
			case dir == "containers" && len(names) == 0:
				t.Errorf("container volume %s with no instance", e.Name())
			}
		}
	}
	if len(names) == 1 && !recorded["container/k1"] {
		t.Errorf("instance k1 exists but its volume is not listed: %v", recorded)
	}
	if loops := loopsOf(t, d.dir); len(loops) != 1 {
		t.Errorf("loop devices of the pool after the restart: %v, want one", loops)
	}
	// Whatever was made, the pool works.
	d.must("launch", "busybox", "k2", "-s", "kb")
	if out := d.must("exec", "k2", "--", "echo", "ok"); out != "ok\n" {
		t.Fatalf("exec after repair: %q", out)
	}
}

// TestStorageFullPool: a container filling a small btrfs pool gets "No
// space left" on its write; the daemon keeps serving, other pools keep
// working, and the space comes back when the file goes.
func TestStorageFullPool(t *testing.T) {
	requireBtrfs(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("storage", "create", "tiny", "btrfs", "size=256MiB")
	d.deletePoolAtEnd(t, "tiny")
	d.must("launch", "busybox", "f1", "-s", "tiny")
	_, errOut, code := d.hangar("exec", "f1", "--", "dd", "if=/dev/zero", "of=/root/fill", "bs=1M", "count=1024")
	if code == 0 || !strings.Contains(errOut, "No space left") {
		t.Fatalf("filling the pool: exit %d, %q", code, errOut)
	}
	if _, _, code := d.hangar("storage", "volume", "create", "tiny", "more", "--type=block", "size=64MiB"); code == 0 {
		// A sparse block file may still fit: writing into it is what fails.
		d.must("storage", "volume", "delete", "tiny", "more")
	}
	d.must("launch", "busybox", "f2")
	if out := d.must("exec", "f2", "--", "echo", "ok"); out != "ok\n" {
		t.Fatalf("another pool while tiny is full: %q", out)
	}
	d.must("exec", "f1", "--", "rm", "/root/fill")
	d.must("exec", "f1", "--", "sync")
	waitFor(t, "the space to come back", 30e9, func() bool {
		_, _, code := d.hangar("exec", "f1", "--", "dd", "if=/dev/zero", "of=/root/again", "bs=1M", "count=32")
		return code == 0
	})
}
