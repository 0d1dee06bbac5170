package drivers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
