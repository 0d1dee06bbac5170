package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// requireBtrfs skips a test that needs btrfs-progs when it is truly absent
// (CI installs it: scripts/deps.sh).
func requireBtrfs(t *testing.T) {
	t.Helper()
	if lookPath("mkfs.btrfs") == "" {
		t.Skip("mkfs.btrfs is not installed (apt-get install btrfs-progs)")
	}
}

// loopsOf lists the loop devices whose backing file is under dir.
func loopsOf(t *testing.T, dir string) []string {
	t.Helper()
	out, err := exec.Command("losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	var found []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, dir) {
			found = append(found, strings.TrimSpace(line))
		}
	}
	return found
}

// deletePoolAtEnd deletes a pool's instances, custom volumes and the pool
// when the test ends, before the daemon stops, so no mount or loop device
// outlives it. A test that restarts the daemon calls it again after: the
// restarted daemon's clean-up runs before the first call's.
func (d *daemon) deletePoolAtEnd(t *testing.T, pool string) {
	t.Cleanup(func() {
		select {
		case <-d.exited:
			return // a later call's clean-up, before its daemon's, did it
		default:
		}
		if _, _, code := d.hangar("storage", "show", pool); code != 0 {
			return // the test deleted it
		}
		c := d.client()
		ctx := context.Background()
		names, _ := c.GetInstanceNames(ctx)
		for _, n := range names {
			if op, err := c.UpdateInstanceState(ctx, n, api.InstanceStatePut{Action: "stop", Force: true}); err == nil {
				_ = op.Wait(ctx)
			}
			if op, err := c.DeleteInstance(ctx, n); err == nil {
				_ = op.Wait(ctx)
			}
		}
		if out, _, code := d.hangar("storage", "volume", "list", pool, "--format", "csv"); code == 0 {
			for _, line := range strings.Split(out, "\n") {
				f := strings.Split(line, ",")
				if len(f) > 1 && f[0] == "custom" {
					d.hangar("storage", "volume", "delete", pool, f[1])
				}
			}
		}
		if _, errOut, code := d.hangar("storage", "delete", pool); code != 0 {
			t.Errorf("delete pool %s at the end: %s", pool, errOut)
		}
		if left := loopsOf(t, d.dir); len(left) > 0 {
			t.Errorf("loop devices left after the pool went: %v", left)
		}
	})
}

// volumesOf lists the names of a pool's volumes of one type.
func (d *daemon) volumesOf(pool, typ string) []string {
	d.t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(d.must("storage", "volume", "list", pool, "--format", "csv")), "\n") {
		if f := strings.Split(line, ","); len(f) > 1 && f[0] == typ {
			out = append(out, f[1])
		}
	}
	return out
}

// TestStorageDefaultPool: a new daemon has pool default (dir) and the
// default profile its root disk; an instance's root is a volume on it,
// listed, measured and removed with the instance; what a dir pool here
// cannot do (a size) and the drivers this kernel cannot run are clear
// 400s; a pool in use cannot go.
func TestStorageDefaultPool(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	if out := d.must("storage", "list"); !strings.Contains(out, "default") || !strings.Contains(out, "dir") {
		t.Fatalf("storage list:\n%s", out)
	}
	prof := d.must("profile", "show", "default")
	if !strings.Contains(prof, "root:") || !strings.Contains(prof, "pool: default") {
		t.Fatalf("default profile has no root disk:\n%s", prof)
	}
	d.must("launch", "busybox", "c1")
	exp := d.instanceConfig("c1", true)
	if root := exp.Devices["root"]; root["pool"] != "default" || root["path"] != "/" || root["type"] != "disk" {
		t.Fatalf("expanded root device %v", root)
	}
	d.must("exec", "c1", "--", "sh", "-c", "head -c 3000000 /dev/zero > /root/blob")
	if got := d.volumesOf("default", "container"); !slices.Equal(got, []string{"c1"}) {
		t.Fatalf("container volumes %v, want [c1]", got)
	}
	if got := d.volumesOf("default", "image"); !slices.Equal(got, []string{d.fingerprint("busybox")}) {
		t.Fatalf("image volumes %v, want the busybox image's", got)
	}
	st, err := d.client().GetStoragePoolVolumeState(context.Background(), "default", "container", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if st.Usage == nil || st.Usage.Used < 3000000 {
		t.Fatalf("root volume usage %+v, want at least the 3 MB written", st.Usage)
	}
	if out := d.must("storage", "info", "default"); !strings.Contains(strings.ToLower(out), "space") {
		t.Fatalf("storage info:\n%s", out)
	}
	d.mustFail([]string{"launch", "busybox", "c2", "-d", "root,size=1GiB"}, "size", "default")
	d.mustFail([]string{"storage", "volume", "create", "default", "v", "size=1GiB"}, "size")
	d.mustFail([]string{"storage", "create", "p1", "lvm"}, "device-mapper")
	d.mustFail([]string{"storage", "create", "p2", "zfs"}, "zfs")
	d.mustFail([]string{"storage", "create", "p3", "floppy"}, "floppy")
	d.mustFail([]string{"storage", "create", "p4", "dir", "colour=red"}, "colour")
	d.mustFail([]string{"storage", "create", "bad/name", "dir"}, "name")
	d.mustFail([]string{"launch", "busybox", "c3", "-s", "nope"}, "nope")
	d.mustFail([]string{"storage", "delete", "default"}, "in use", "c1")
	if names := d.instanceNames(); len(names) != 1 {
		t.Fatalf("failed launches left instances: %v", names)
	}

	d.must("rename", "c1", "c9")
	if got := d.volumesOf("default", "container"); !slices.Equal(got, []string{"c9"}) {
		t.Fatalf("container volumes after the rename: %v, want [c9]", got)
	}
	d.must("delete", "-f", "c9")
	if got := d.volumesOf("default", "container"); len(got) != 0 {
		t.Fatalf("root volume outlived its instance: %v", got)
	}
	containers, _ := os.ReadDir(filepath.Join(d.dir, "storage-pools", "default", "containers"))
	if len(containers) != 0 {
		t.Fatalf("files left in the pool's containers directory: %v", containers)
	}
}

// TestStorageBtrfs: a loop-backed btrfs pool; a container on it with a
// root quota that writing past fails; a custom volume shared by two
// containers, hot-attached to running ones; a block volume a container
// cannot take; resize; a pool in use cannot go; deleting it frees the loop
// device.
func TestStorageBtrfs(t *testing.T) {
	requireBtrfs(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("storage", "create", "b1", "btrfs", "size=2GiB")
	d.deletePoolAtEnd(t, "b1")
	if show := d.must("storage", "show", "b1"); !strings.Contains(show, "source:") || !strings.Contains(show, "size: 2GiB") {
		t.Fatalf("pool config lacks the loop file it made:\n%s", show)
	}
	if len(loopsOf(t, d.dir)) != 1 {
		t.Fatalf("loop devices of the pool: %v", loopsOf(t, d.dir))
	}
	d.mustFail([]string{"launch", "busybox", "c0", "-s", "b1", "-d", "root,size=64KiB"}, "size", "below", "image")
	d.must("launch", "busybox", "c1", "-s", "b1", "-d", "root,size=64MiB")
	if root := d.instanceConfig("c1", true).Devices["root"]; root["pool"] != "b1" || root["size"] != "64MiB" {
		t.Fatalf("root device %v", root)
	}
	_, errOut, code := d.hangar("exec", "c1", "--", "dd", "if=/dev/zero", "of=/root/big", "bs=1M", "count=128")
	if code == 0 || !strings.Contains(errOut, "quota") && !strings.Contains(errOut, "space") {
		t.Fatalf("writing 128 MiB under a 64 MiB quota: exit %d, %s", code, errOut)
	}
	d.must("exec", "c1", "--", "rm", "/root/big")
	if st, err := d.client().GetInstanceState(context.Background(), "c1"); err != nil || st.Disk["root"].Total != 64<<20 || st.Disk["root"].Usage <= 0 {
		t.Fatalf("instance state's root disk %+v, %v: want its qgroup's usage and the 64MiB limit", st.Disk, err)
	}

	d.must("storage", "volume", "create", "b1", "shared", "size=32MiB")
	d.must("launch", "busybox", "c2", "-s", "b1")
	d.must("storage", "volume", "attach", "b1", "shared", "c1", "/data")
	d.must("storage", "volume", "attach", "b1", "shared", "c2", "/data")
	d.must("exec", "c1", "--", "sh", "-c", "echo from-c1 > /data/x")
	if out := d.must("exec", "c2", "--", "cat", "/data/x"); out != "from-c1\n" {
		t.Fatalf("c2 reads %q from the shared volume", out)
	}
	d.mustFail([]string{"storage", "volume", "delete", "b1", "shared"}, "in use", "c1")
	d.must("storage", "volume", "resize", "b1", "shared", "48MiB")
	if got := strings.TrimSpace(d.must("storage", "volume", "get", "b1", "shared", "size")); got != "48MiB" {
		t.Fatalf("size after resize %q", got)
	}
	if info := d.must("storage", "volume", "info", "b1", "shared"); !strings.Contains(strings.ToLower(info), "usage") {
		t.Fatalf("volume info:\n%s", info)
	}
	d.must("storage", "volume", "create", "b1", "blk", "--type=block", "size=16MiB")
	d.mustFail([]string{"storage", "volume", "attach", "b1", "blk", "c1", "/blk"}, "block")
	d.mustFail([]string{"storage", "delete", "b1"}, "in use")

	d.must("storage", "volume", "detach", "b1", "shared", "c2")
	if out, _, _ := d.hangar("exec", "c2", "--", "cat", "/proc/mounts"); strings.Contains(out, "/data") {
		t.Fatalf("detached volume still mounted in c2:\n%s", out)
	}
	// Restarted, the containers on b1 keep running and the pool serves.
	d.stopClean()
	d.start()
	d.deletePoolAtEnd(t, "b1")
	if out := d.must("exec", "c1", "--", "cat", "/data/x"); out != "from-c1\n" {
		t.Fatalf("after a daemon restart c1 reads %q", out)
	}
	d.must("stop", "-f", "c1")
	d.must("start", "c1")
	if out := d.must("exec", "c1", "--", "cat", "/data/x"); out != "from-c1\n" {
		t.Fatalf("after a restart of c1 it reads %q", out)
	}
}

// TestStorageHostPath: a host directory bind-mounted read-only (writes
// fail), shifted for an unprivileged container (owners as on the host),
// and a symlink in the container that points out of it does not carry a
// hot-attached mount out.
func TestStorageHostPath(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(host, 0o755); err != nil {
		t.Fatal(err)
	}
	d.must("launch", "busybox", "c1")
	d.must("config", "device", "add", "c1", "ro", "disk", "source="+host, "path=/mnt/ro", "readonly=true")
	if out := d.must("exec", "c1", "--", "cat", "/mnt/ro/f"); out != "from-host\n" {
		t.Fatalf("read %q through the bind mount", out)
	}
	_, errOut, code := d.hangar("exec", "c1", "--", "sh", "-c", "echo x > /mnt/ro/g")
	if code == 0 || !strings.Contains(strings.ToLower(errOut), "read-only") {
		t.Fatalf("write to a readonly disk: exit %d, %q", code, errOut)
	}
	if owner := strings.TrimSpace(d.must("exec", "c1", "--", "stat", "-c", "%u", "/mnt/ro/f")); owner != "65534" {
		t.Fatalf("unshifted host file owned by %s inside, want 65534 (nobody)", owner)
	}
	d.must("config", "device", "add", "c1", "sh", "disk", "source="+host, "path=/mnt/shifted", "shift=true")
	if owner := strings.TrimSpace(d.must("exec", "c1", "--", "stat", "-c", "%u", "/mnt/shifted/f")); owner != "0" {
		t.Fatalf("shifted host file owned by %s inside, want 0", owner)
	}
	escape := t.TempDir()
	d.must("exec", "c1", "--", "ln", "-s", "../../../../.."+escape, "/escape")
	// Resolved inside the container's root, the link leads nowhere: the
	// attach is refused, or made inside; never on the host.
	d.hangar("config", "device", "add", "c1", "esc", "disk", "source="+host, "path=/escape/in")
	if _, err := os.Stat(filepath.Join(escape, "in")); err == nil {
		t.Fatalf("a symlink in the container carried the mount out to the host's %s", escape)
	}
	if mounts := mountsUnder(escape); len(mounts) > 0 {
		t.Fatalf("mounted on the host through a symlink: %v", mounts)
	}
	d.mustFail([]string{"config", "device", "add", "c1", "gone", "disk", "source=/nonexistent-hangar", "path=/mnt/x"}, "/nonexistent-hangar")
	d.must("config", "device", "remove", "c1", "ro")
	if out, _, _ := d.hangar("exec", "c1", "--", "cat", "/proc/mounts"); strings.Contains(out, "/mnt/ro") {
		t.Fatalf("removed disk still mounted:\n%s", out)
	}
}

// TestStorageShiftedAndLimits: a security.shifted volume shared by an
// unprivileged and a privileged container shows one owner to both (the
// host sees 0: unshifted data); disk limits on the root device land in the
// container's blkio cgroup for the pool's block device, live.
func TestStorageShiftedAndLimits(t *testing.T) {
	requireBtrfs(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("storage", "create", "sb", "btrfs", "size=1GiB")
	d.deletePoolAtEnd(t, "sb")
	d.must("storage", "volume", "create", "sb", "both", "security.shifted=true")
	d.must("launch", "busybox", "u1", "-s", "sb")
	d.must("launch", "busybox", "p1", "-s", "sb", "-c", "security.privileged=true")
	d.must("storage", "volume", "attach", "sb", "both", "u1", "/shared")
	d.must("storage", "volume", "attach", "sb", "both", "p1", "/shared")
	d.must("exec", "u1", "--", "sh", "-c", "echo from-u1 > /shared/f")
	if owner := strings.TrimSpace(d.must("exec", "p1", "--", "stat", "-c", "%u", "/shared/f")); owner != "0" {
		t.Fatalf("the privileged container sees the file owned by %s, want 0", owner)
	}
	if uid, _, _ := statOwner(t, filepath.Join(d.dir, "storage-pools", "sb", "custom", "both", "f")); uid != 0 {
		t.Fatalf("on the host the shifted volume's file is owned by %d, want 0", uid)
	}
	d.mustFail([]string{"storage", "volume", "set", "sb", "both", "security.shifted=false"}, "in use")

	// Limits: read and write throttles on the root disk, applied live.
	d.must("config", "device", "set", "u1", "root", "limits.read=10MB", "limits.write=200iops")
	loop := loopsOf(t, d.dir)
	if len(loop) != 1 {
		t.Fatalf("loop devices %v", loop)
	}
	dev := strings.Fields(loop[0])[0]
	out, err := exec.Command("lsblk", "-dno", "MAJ:MIN", dev).Output()
	if err != nil {
		t.Fatal(err)
	}
	majmin := strings.TrimSpace(string(out))
	var read, write string
	for _, cg := range cgroupsOf(d.dir) {
		if !strings.Contains(cg, "/blkio/") {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(cg, "*", "blkio.throttle.read_bps_device"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			read += string(b)
			w, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "blkio.throttle.write_iops_device"))
			write += string(w)
		}
	}
	if !strings.Contains(read, majmin+" 10000000") || !strings.Contains(write, majmin+" 200") {
		t.Fatalf("blkio throttles for %s (%s): read %q, write iops %q", dev, majmin, read, write)
	}
}
