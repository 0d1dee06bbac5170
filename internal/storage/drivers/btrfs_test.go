package drivers

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// loopPool makes a btrfs pool on a loop file of size.
func loopPool(t *testing.T, e *testEnv, size string) Driver {
	t.Helper()
	d, _ := e.pool("p", "btrfs", map[string]string{"size": size})
	cfg, err := d.Create(e.ctx)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	d, _ = e.pool("p", "btrfs", cfg)
	return d
}

// TestBtrfsQuota: a filesystem volume's size is a qgroup limit: writing
// past it fails with EDQUOT (a 507 through noSpace), usage reads the
// qgroup, and 0 lifts the limit.
func TestBtrfsQuota(t *testing.T) {
	needBtrfs(t)
	e := newEnv(t)
	d := loopPool(t, e, "256MiB")
	ctx := e.ctx
	v := Volume{Type: TypeCustom, Name: "q", Content: ContentFilesystem}
	if err := d.CreateVolume(ctx, v, 8<<20, false, nil); err != nil {
		t.Fatal(err)
	}
	err := writeZeros(filepath.Join(d.Path(v), "big"), 32<<20)
	if !errors.Is(err, unix.EDQUOT) {
		t.Errorf("writing 32MiB into an 8MiB volume: %v, want EDQUOT", err)
	}
	mustErrIs(t, noSpace(err), errdefs.ErrNoSpace, "noSpace(EDQUOT)")
	u, err := d.VolumeUsage(ctx, v)
	if err != nil || u.Total != 8<<20 || u.Used < 4<<20 || u.Used > 9<<20 {
		t.Errorf("usage of a full 8MiB volume: %+v, %v", u, err)
	}
	// What df shows inside the volume: statfs on btrfs reports the whole
	// filesystem, not the qgroup limit (measured on this kernel, logged
	// for the report; the container's df needs its own answer).
	var st unix.Statfs_t
	if err := unix.Statfs(d.Path(v), &st); err == nil {
		t.Logf("statfs in an 8MiB-limited subvolume: total %d MiB, free %d MiB (kernel %s)",
			int64(st.Blocks)*st.Bsize>>20, int64(st.Bavail)*st.Bsize>>20, kernelRelease())
	}

	// The limit lifted: the write goes through.
	if err := d.SetQuota(ctx, v, 0); err != nil {
		t.Fatal(err)
	}
	if err := writeZeros(filepath.Join(d.Path(v), "big"), 32<<20); err != nil {
		t.Errorf("write after the limit was lifted: %v", err)
	}
	if u, err := d.VolumeUsage(ctx, v); err != nil || u.Total != 0 || u.Used < 32<<20 {
		t.Errorf("usage without a limit: %+v, %v", u, err)
	}
	// Set again on a volume made without one.
	if err := d.SetQuota(ctx, v, 64<<20); err != nil {
		t.Fatal(err)
	}
	if u, _ := d.VolumeUsage(ctx, v); u.Total != 64<<20 {
		t.Errorf("limit after SetQuota 64MiB: %+v", u)
	}
	// A clone is measured on its own qgroup.
	c := Volume{Type: TypeCustom, Name: "c", Content: ContentFilesystem}
	if err := d.CloneVolume(ctx, c, v); err != nil {
		t.Fatal(err)
	}
	if err := d.SetQuota(ctx, c, 40<<20); err != nil {
		t.Fatal(err)
	}
	if u, err := d.VolumeUsage(ctx, c); err != nil || u.Total != 40<<20 || u.Used < 32<<20 {
		t.Errorf("usage of the clone: %+v, %v", u, err)
	}
	mustErrIs(t, d.SetQuota(ctx, Volume{TypeCustom, "nope", ContentFilesystem}, 1<<20), errdefs.ErrNotFound, "quota on a missing volume")

	// A fill that writes past the size fails the create, a 507, leaving
	// nothing.
	small := Volume{Type: TypeCustom, Name: "small", Content: ContentFilesystem}
	err = d.CreateVolume(ctx, small, 4<<20, false, func(dir string) error {
		return writeZeros(filepath.Join(dir, "f"), 16<<20)
	})
	mustErrIs(t, err, errdefs.ErrNoSpace, "fill past the size")
	if ok, _ := pathExists(d.Path(small)); ok {
		t.Errorf("a failed create left %s", d.Path(small))
	}
	assertNoLeftovers(t, d)

	for _, vol := range []Volume{v, c} {
		if err := d.DeleteVolume(ctx, vol); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

func kernelRelease() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	return unix.ByteSliceToString(u.Release[:])
}

// assertNoLeftovers: no .tmp- entry in any type directory.
func assertNoLeftovers(t *testing.T, d Driver) {
	t.Helper()
	var l layout
	switch d := d.(type) {
	case *btrfsDriver:
		l = d.l
	case *dirDriver:
		l = d.l
	}
	if left, err := l.leftovers(); err != nil || len(left) != 0 {
		t.Errorf("leftovers %v, %v", left, err)
	}
}

// TestBtrfsNestedSubvolumes: a volume holding subvolumes (a container
// that made its own, or docker in it), some read-only, is deleted whole.
func TestBtrfsNestedSubvolumes(t *testing.T) {
	needBtrfs(t)
	e := newEnv(t)
	d := loopPool(t, e, "200MiB")
	v := Volume{Type: TypeContainer, Name: "nest", Content: ContentFilesystem}
	if err := d.CreateVolume(e.ctx, v, 0, true, func(dir string) error {
		for _, p := range []string{"a", "a/b", "deep/er/c"} {
			sub := filepath.Join(dir, p)
			if err := os.MkdirAll(filepath.Dir(sub), 0o755); err != nil {
				return err
			}
			if err := btrfsSubvolCreate(sub); err != nil {
				return err
			}
			writeFile(t, filepath.Join(sub, "f"), p)
		}
		fd, err := openDir(filepath.Join(dir, "a", "b"))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return btrfsSetReadOnly(fd, true)
	}); err != nil {
		t.Fatal(err)
	}
	fd, err := openDir(d.Path(v))
	if err != nil {
		t.Fatal(err)
	}
	kids, err := btrfsChildren(fd, d.Path(v))
	unix.Close(fd)
	if err != nil || len(kids) != 2 {
		t.Errorf("children of the volume: %v, %v (want a and deep/er/c)", kids, err)
	}
	if err := d.DeleteVolume(e.ctx, v); err != nil {
		t.Fatalf("delete a read-only volume with nested subvolumes: %v", err)
	}
	if vols, _ := d.Volumes(e.ctx); len(vols) != 0 {
		t.Errorf("volumes left: %v", vols)
	}
	if err := d.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

// TestSweep: what killed creates and deletes leave (.tmp- entries, a
// read-only subvolume with one inside on btrfs) is not listed as a
// volume, and Sweep removes it.
func TestSweep(t *testing.T) {
	for _, driver := range []string{"dir", "btrfs"} {
		t.Run(driver, func(t *testing.T) {
			if driver == "btrfs" {
				needBtrfs(t)
			}
			e := newEnv(t)
			var d Driver
			if driver == "btrfs" {
				d = loopPool(t, e, "200MiB")
			} else {
				d, _ = e.pool("p", "dir", nil)
				if _, err := d.Create(e.ctx); err != nil {
					t.Fatal(err)
				}
			}
			var l layout
			switch dd := d.(type) {
			case *btrfsDriver:
				l = dd.l
			case *dirDriver:
				l = dd.l
			}
			live := Volume{Type: TypeCustom, Name: "live", Content: ContentFilesystem}
			if err := d.CreateVolume(e.ctx, live, 0, false, nil); err != nil {
				t.Fatal(err)
			}
			// A create killed after the fill, a delete killed after its
			// rename: both as the drivers leave them.
			created := l.tmpPath(Volume{Type: TypeImage, Name: "img", Content: ContentFilesystem})
			deleted := l.tmpPath(Volume{Type: TypeVM, Name: "vm", Content: ContentBlock})
			for _, p := range []string{created, deleted} {
				if driver == "btrfs" {
					if err := btrfsSubvolCreate(p); err != nil {
						t.Fatal(err)
					}
				} else if err := os.Mkdir(p, 0o711); err != nil {
					t.Fatal(err)
				}
				writeFile(t, filepath.Join(p, "rootfs", "etc", "passwd"), "root:x:0:0")
			}
			if driver == "btrfs" {
				if err := btrfsSubvolCreate(filepath.Join(deleted, "inner")); err != nil {
					t.Fatal(err)
				}
				fd, _ := openDir(deleted)
				_ = btrfsSetReadOnly(fd, true)
				unix.Close(fd)
			}
			vols, err := d.Volumes(e.ctx)
			if err != nil || len(vols) != 1 || vols[0] != live {
				t.Errorf("volumes %v, %v: want only the live one", vols, err)
			}
			// A copy a killed daemon left running, writing into a
			// leftover: the sweep kills it first (cp outlives hangard).
			stray := exec.Command("sh", "-c", "while :; do sleep 0.1; done", filepath.Join(created, "rootfs"))
			if err := stray.Start(); err != nil {
				t.Fatal(err)
			}
			strayDone := make(chan error, 1)
			go func() { strayDone <- stray.Wait() }()
			t.Cleanup(func() { _ = stray.Process.Kill() })
			if err := d.Sweep(e.ctx); err != nil {
				t.Fatalf("sweep: %v", err)
			}
			select {
			case <-strayDone:
			case <-time.After(10 * time.Second):
				t.Error("the sweep left the process writing into a leftover running")
			}
			for _, p := range []string{created, deleted} {
				if ok, _ := pathExists(p); ok {
					t.Errorf("sweep left %s", p)
				}
			}
			if ok, _ := pathExists(d.Path(live)); !ok {
				t.Errorf("sweep removed a live volume")
			}
			if err := d.DeleteVolume(e.ctx, live); err != nil {
				t.Fatal(err)
			}
			if err := d.Delete(e.ctx); err != nil {
				t.Fatal(err)
			}
			e.assertClean()
		})
	}
}

// TestBtrfsFullPool: a full pool fails writes with ENOSPC (a 507 from a
// create's fill), leaves nothing of the failed create, and keeps
// working: volumes are made, measured and deleted afterwards.
func TestBtrfsFullPool(t *testing.T) {
	needBtrfs(t)
	e := newEnv(t)
	d := loopPool(t, e, "160MiB")
	ctx := e.ctx
	hog := Volume{Type: TypeCustom, Name: "hog", Content: ContentFilesystem}
	err := d.CreateVolume(ctx, hog, 0, false, func(dir string) error {
		return writeZeros(filepath.Join(dir, "f"), 400<<20)
	})
	mustErrIs(t, err, errdefs.ErrNoSpace, "fill past the pool's space")
	if err != nil && !strings.Contains(err.Error(), "no space left on device") {
		t.Errorf("error %q does not give the cause", err)
	}
	assertNoLeftovers(t, d)

	// Fill the pool for real with a volume that stays.
	if err := d.CreateVolume(ctx, hog, 0, false, nil); err != nil {
		t.Fatal(err)
	}
	err = writeZeros(filepath.Join(d.Path(hog), "f"), 400<<20)
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("filling the pool: %v, want ENOSPC", err)
	}
	if u, err := d.Usage(ctx); err != nil || u.Used < u.Total/2 {
		t.Errorf("usage of a full pool: %+v, %v", u, err)
	}
	// A block volume is a sparse file: made even on a full pool (as
	// LXD's); writing into it is what fails.
	blk := Volume{Type: TypeCustom, Name: "blk", Content: ContentBlock}
	if err := d.CreateVolume(ctx, blk, 1<<30, false, nil); err != nil {
		t.Errorf("sparse block volume on a full pool: %v", err)
	}
	small := Volume{Type: TypeCustom, Name: "small", Content: ContentFilesystem}
	if err := d.CreateVolume(ctx, small, 0, false, nil); err != nil {
		t.Errorf("empty volume on a full pool: %v", err)
	}
	if _, err := d.VolumeUsage(ctx, hog); err != nil {
		t.Errorf("usage on a full pool: %v", err)
	}
	for _, v := range []Volume{hog, blk, small} {
		if err := d.DeleteVolume(ctx, v); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("delete %s on a full pool: %v", v.Name, err)
		}
	}
	// Space comes back. btrfs frees a deleted subvolume's extents in its
	// cleaner thread after the delete returns, and a write can meet
	// ENOSPC until a commit has returned them: wait for a 32MiB write to
	// fit, committing between tries.
	again := Volume{Type: TypeCustom, Name: "again", Content: ContentFilesystem}
	poolDir := filepath.Join(e.dataDir(), "storage-pools", "p")
	deadline := time.Now().Add(30 * time.Second)
	for tries := 1; ; tries++ {
		err := d.CreateVolume(ctx, again, 0, false, func(dir string) error {
			return writeZeros(filepath.Join(dir, "f"), 32<<20)
		})
		if err == nil {
			t.Logf("a 32MiB write fit after the deletes at try %d", tries)
			break
		}
		if !errors.Is(err, errdefs.ErrNoSpace) || time.Now().After(deadline) {
			t.Fatalf("write after the hog was deleted: %v", err)
		}
		if fd, err := openDir(poolDir); err == nil {
			_ = ioctl(fd, btrfsIocSync, nil)
			unix.Close(fd)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = d.DeleteVolume(ctx, again)
	if err := d.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

// TestBtrfsGrow: a loop pool grows with size (file, loop device and
// filesystem); it cannot shrink, and other keys are refused or applied.
func TestBtrfsGrow(t *testing.T) {
	needBtrfs(t)
	e := newEnv(t)
	d := loopPool(t, e, "200MiB")
	before, _ := d.Usage(e.ctx)
	if err := d.Update(e.ctx, map[string]string{"size": "400MiB"}); err != nil {
		t.Fatalf("grow: %v", err)
	}
	after, _ := d.Usage(e.ctx)
	if after.Total < before.Total+150<<20 {
		t.Errorf("total %d MiB after growing from %d MiB by 200MiB", after.Total>>20, before.Total>>20)
	}
	mustErrIs(t, d.Update(e.ctx, map[string]string{"size": "300MiB"}), errdefs.ErrInvalidArgument, "shrink")
	mustErrIs(t, d.Update(e.ctx, map[string]string{"source": "/dev/sdz"}), errdefs.ErrInvalidArgument, "change of source")
	if err := d.Update(e.ctx, map[string]string{"btrfs.mount_options": "noatime,user_subvol_rm_allowed"}); err != nil {
		t.Errorf("remount with new options: %v", err)
	}
	if m, ok, _ := mountAt(filepath.Join(e.dataDir(), "storage-pools", "p")); !ok || m.fstype != "btrfs" {
		t.Errorf("pool not mounted after the remount: %+v", m)
	}
	mustErrIs(t, d.Update(e.ctx, map[string]string{"btrfs.mount_options": "nosuchoption"}), errdefs.ErrInvalidArgument, "bad mount option")
	if err := d.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

// TestBtrfsRemountWhileHeldElsewhere: a mount namespace made while the
// pool was mounted (a container being set up) keeps the filesystem live
// after the pool's unmount. Mounting the pool again must mount that same
// live filesystem (its loop device), not a second loop device on the
// file, which would show the disk as of the last commit: volumes made
// since would be missing, and two filesystems would write one file.
func TestBtrfsRemountWhileHeldElsewhere(t *testing.T) {
	needBtrfs(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	e := newEnv(t)
	d := loopPool(t, e, "200MiB")
	v := Volume{Type: TypeCustom, Name: "fresh", Content: ContentFilesystem}
	if err := d.CreateVolume(e.ctx, v, 0, false, func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "f"), []byte("fresh"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	// The holder: a process in a copy of our mount namespace, alive
	// until its stdin closes.
	holder := exec.Command("unshare", "--mount", "--propagation", "unchanged", "cat")
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	release := func() { stdin.Close(); _ = holder.Wait() }
	t.Cleanup(release)
	self, _ := os.Readlink("/proc/self/ns/mnt")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid))
		if ns != "" && ns != self {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare did not enter a mount namespace of its own")
		}
		time.Sleep(5 * time.Millisecond)
	}

	if err := d.Unmount(e.ctx); err != nil {
		t.Fatal(err)
	}
	held := loopsUnder(e.base)
	if err := d.Mount(e.ctx); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(d.Path(v), "f")); err != nil || string(b) != "fresh" {
		t.Errorf("a volume made before the unmount, after the remount: %q, %v", b, err)
	}
	if now := loopsUnder(e.base); len(held) != 1 || !slices.Equal(now, held) {
		t.Errorf("loop devices on the pool's file: %v after the unmount, %v after the mount; want the one held", held, now)
	}
	release()
	if err := d.DeleteVolume(e.ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

// TestBtrfsStaleQgroups: a deleted volume's qgroup (and its limit) goes
// once btrfs has cleaned the subvolume, which the kernel does itself
// (6.18 here; older kernels left them, to be destroyed by hand). The
// driver relies on it: qgroups are counted at every commit, so a pool
// that makes and deletes instances must not pile them up.
func TestBtrfsStaleQgroups(t *testing.T) {
	needBtrfs(t)
	e := newEnv(t)
	d := loopPool(t, e, "200MiB")
	gone := Volume{Type: TypeContainer, Name: "gone", Content: ContentFilesystem}
	live := Volume{Type: TypeContainer, Name: "live", Content: ContentFilesystem}
	ids := map[string]uint64{}
	for _, v := range []Volume{gone, live} {
		if err := d.CreateVolume(e.ctx, v, 16<<20, false, nil); err != nil {
			t.Fatal(err)
		}
		fd, err := openDir(d.Path(v))
		if err != nil {
			t.Fatal(err)
		}
		ids[v.Name], err = btrfsSubvolID(fd)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
	}
	poolDir := filepath.Join(e.dataDir(), "storage-pools", "p")
	fd, err := openDir(poolDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	})
	uuid, _, err := btrfsFSInfo(fd)
	if err != nil {
		t.Fatal(err)
	}
	qgroup := func(name string) string {
		return fmt.Sprintf("/sys/fs/btrfs/%s/qgroups/0_%d", uuid, ids[name])
	}
	if err := d.DeleteVolume(e.ctx, gone); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_ = ioctl(fd, btrfsIocSync, nil) // let the cleaner drop the subvolume
		if ok, _ := pathExists(qgroup("gone")); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("qgroup of the deleted volume still there after 30s: %s", qgroup("gone"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if u, err := d.VolumeUsage(e.ctx, live); err != nil || u.Total != 16<<20 {
		t.Errorf("live volume's limit: %+v, %v", u, err)
	}
	if err := d.DeleteVolume(e.ctx, live); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	fd = -1
	if err := d.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}
