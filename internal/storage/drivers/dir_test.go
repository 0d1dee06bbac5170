package drivers

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestDirQuotaRefused: a dir pool on a filesystem without project quotas
// (this machine's kernel cannot turn them on) refuses a size with a 400
// that says why, at create and at SetQuota; block volumes still grow.
func TestDirQuotaRefused(t *testing.T) {
	e := newEnv(t)
	d, p := e.pool("p", "dir", nil)
	if _, err := d.Create(e.ctx); err != nil {
		t.Fatal(err)
	}
	info := d.Info()
	if info.Quotas || info.Clones || info.ReadOnlyVolumes {
		t.Errorf("dir info %+v: no quotas, clones or read-only volumes", info)
	}
	m, err := mountOf(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	// The sentence names the pool's directory and its filesystem.
	wantWhy := "the filesystem under " + p.Dir + " (" + m.fstype + " on " + m.source + ")"
	if ok, _ := projectQuotas(p.Dir); ok {
		wantWhy += " has project quotas, but this hangard does not set them"
	} else {
		wantWhy += " has no project "
	}
	if !strings.Contains(info.QuotaUnsupported, wantWhy) || !strings.Contains(info.QuotaUnsupported, "use a btrfs pool") {
		t.Errorf("QuotaUnsupported = %q, want it to hold %q", info.QuotaUnsupported, wantWhy)
	}
	t.Logf("on this machine: %s", info.QuotaUnsupported)

	v := Volume{Type: TypeCustom, Name: "v", Content: ContentFilesystem}
	checkInvalid(t, d.CreateVolume(e.ctx, v, 1<<30, false, nil), info.QuotaUnsupported)
	if ok, _ := pathExists(d.Path(v)); ok {
		t.Errorf("a refused create left %s", d.Path(v))
	}
	if err := d.CreateVolume(e.ctx, v, 0, false, nil); err != nil {
		t.Fatal(err)
	}
	checkInvalid(t, d.SetQuota(e.ctx, v, 2<<30), info.QuotaUnsupported)
	if err := d.SetQuota(e.ctx, v, 0); err != nil {
		t.Errorf("removing a limit a dir volume never had: %v", err)
	}
	if u, err := d.VolumeUsage(e.ctx, v); err != nil || u.Total != 0 {
		t.Errorf("usage of a dir volume %+v, %v: Total 0 (no limit)", u, err)
	}
	if err := d.DeleteVolume(e.ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

// TestDirFullPool: a dir pool whose source is a small filesystem (a
// tmpfs) fails a fill with a 507 and leaves nothing; the pool keeps
// working.
func TestDirFullPool(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.base, "small")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", src, "tmpfs", 0, "size=4m"); err != nil {
		t.Fatal(err)
	}
	d, _ := e.pool("p", "dir", map[string]string{"source": src})
	cfg, err := d.Create(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, _ = e.pool("p", "dir", cfg)
	v := Volume{Type: TypeCustom, Name: "v", Content: ContentFilesystem}
	err = d.CreateVolume(e.ctx, v, 0, false, func(dir string) error {
		return writeZeros(filepath.Join(dir, "f"), 8<<20)
	})
	mustErrIs(t, err, errdefs.ErrNoSpace, "fill past a full dir pool")
	assertNoLeftovers(t, d)
	if err := d.CreateVolume(e.ctx, v, 0, false, func(dir string) error {
		return writeZeros(filepath.Join(dir, "f"), 1<<20)
	}); err != nil {
		t.Errorf("a fitting create after a full one: %v", err)
	}
	if maj, min, err := d.Device(); err != nil || maj != 0 || min == 0 {
		t.Errorf("device of a tmpfs pool: %d:%d, %v (an anonymous device)", maj, min, err)
	}
	if err := d.DeleteVolume(e.ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(src, 0); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

// TestRemoveTreeStaysOnItsFilesystem: removing a volume never descends
// into a mount under it (a wipe of what is mounted there); it stops with
// a 409 and what is mounted survives.
func TestRemoveTreeStaysOnItsFilesystem(t *testing.T) {
	e := newEnv(t)
	d, _ := e.pool("p", "dir", nil)
	if _, err := d.Create(e.ctx); err != nil {
		t.Fatal(err)
	}
	v := Volume{Type: TypeContainer, Name: "c", Content: ContentFilesystem}
	if err := d.CreateVolume(e.ctx, v, 0, false, nil); err != nil {
		t.Fatal(err)
	}
	precious := filepath.Join(e.base, "precious")
	writeFile(t, filepath.Join(precious, "keep"), "data")
	mnt := filepath.Join(d.Path(v), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(precious, mnt, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	tmpfs := filepath.Join(d.Path(v), "tmp")
	if err := os.Mkdir(tmpfs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", tmpfs, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	err := d.DeleteVolume(e.ctx, v)
	mustErrIs(t, err, errdefs.ErrConflict, "delete of a volume with mounts under it")
	if b, err := os.ReadFile(filepath.Join(precious, "keep")); err != nil || string(b) != "data" {
		t.Errorf("bind-mounted directory damaged: %q, %v", b, err)
	}
	// The volume was moved aside before the removal began: it is a
	// leftover now, not a volume, and Sweep finishes it once unmounted.
	if vols, _ := d.Volumes(e.ctx); len(vols) != 0 {
		t.Errorf("volumes %v", vols)
	}
	forceClean(filepath.Join(e.dataDir(), "storage-pools"))
	if err := d.Sweep(e.ctx); err != nil {
		t.Fatalf("sweep once the mounts are gone: %v", err)
	}
	assertNoLeftovers(t, d)
	if err := d.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.assertClean()
}

// TestDirCopiesShareBlocksOnBtrfs: a dir pool on a btrfs filesystem
// copies by reflink: a clone's and a snapshot's files start at the same
// physical extent as their source's (FIEMAP), so a copy takes no data
// space.
func TestDirCopiesShareBlocksOnBtrfs(t *testing.T) {
	needBtrfs(t)
	e := newEnv(t)
	mnt, release := e.hostBtrfs()
	d, _ := e.pool("p", "dir", map[string]string{"source": filepath.Join(mnt, "pool")})
	if err := os.Mkdir(filepath.Join(mnt, "pool"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, err := d.Create(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	d, _ = e.pool("p", "dir", cfg)
	v := Volume{Type: TypeCustom, Name: "v", Content: ContentFilesystem}
	if err := d.CreateVolume(e.ctx, v, 0, false, func(dir string) error {
		return writeZeros(filepath.Join(dir, "data"), 8<<20)
	}); err != nil {
		t.Fatal(err)
	}
	snap := Volume{Type: TypeCustom, Name: "v@s", Content: ContentFilesystem}
	clone := Volume{Type: TypeCustom, Name: "c", Content: ContentFilesystem}
	if err := d.SnapshotVolume(e.ctx, snap, v); err != nil {
		t.Fatal(err)
	}
	if err := d.CloneVolume(e.ctx, clone, snap); err != nil {
		t.Fatal(err)
	}
	want := firstExtent(t, filepath.Join(d.Path(v), "data"))
	for _, c := range []Volume{snap, clone} {
		if got := firstExtent(t, filepath.Join(d.Path(c), "data")); got != want {
			t.Errorf("%s's file starts at physical %d, its source's at %d: not a reflink", c.Name, got, want)
		}
	}
	for _, vol := range []Volume{clone, snap, v} {
		if err := d.DeleteVolume(e.ctx, vol); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Delete(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(mnt, "pool")); err != nil {
		t.Fatal(err)
	}
	release()
	e.assertClean()
}

// firstExtent is the physical address of a file's first extent
// (FS_IOC_FIEMAP), after a sync so that it has one.
func firstExtent(t *testing.T, p string) uint64 {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// struct fiemap (32 bytes) and one struct fiemap_extent (56 bytes).
	var buf [32 + 56]byte
	binary.LittleEndian.PutUint64(buf[8:], ^uint64(0)) // fm_length: all
	binary.LittleEndian.PutUint32(buf[16:], 1)         // FIEMAP_FLAG_SYNC
	binary.LittleEndian.PutUint32(buf[24:], 1)         // fm_extent_count
	const fsIocFiemap = 0xc020660b
	if err := ioctl(int(f.Fd()), fsIocFiemap, unsafe.Pointer(&buf[0])); err != nil {
		t.Fatalf("fiemap %s: %v", p, err)
	}
	if n := binary.LittleEndian.Uint32(buf[20:]); n != 1 {
		t.Fatalf("fiemap %s: %d extents mapped", p, n)
	}
	return binary.LittleEndian.Uint64(buf[32+8:])
}
