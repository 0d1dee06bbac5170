package drivers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
)

// dirDriver keeps volumes as plain directories under the pool's
// directory. With a source the user gave, that directory is bind-mounted
// at the pool's directory, as LXD does; without one the pool's directory
// is the source.
//
// A dir pool cannot clone instantly (the manager layers instances over an
// image's volume with overlayfs): CloneVolume, SnapshotVolume and
// RestoreVolume copy the tree with cp (copy.go), sharing blocks by
// reflink when the filesystem under the pool can (btrfs, xfs), so
// Info.Clones is false. It sets no quotas: that would take project
// quotas on the backing filesystem, which this machine's kernel cannot
// turn on (no quota format support), so it is not built; Info says why
// for the error a user sees.
type dirDriver struct {
	p Pool
	l layout

	mu   sync.Mutex
	info *Info // probed once the source exists
}

func newDir(p Pool) Driver { return &dirDriver{p: p, l: layout{root: p.Dir}} }

// source is where the pool's data is: the given source, or the pool's
// directory.
func (d *dirDriver) source() string {
	if s := d.p.Config["source"]; s != "" {
		return s
	}
	return d.p.Dir
}

func (d *dirDriver) external() bool { return d.source() != d.p.Dir }

func (d *dirDriver) Info() Info {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.info != nil {
		return *d.info
	}
	info := Info{Name: "dir"}
	src := d.source()
	_, statErr := os.Stat(src)
	probe := src
	if statErr != nil {
		probe = existingAncestor(src)
	}
	// The probe says whether project quotas are on; hangard does not set
	// them yet (nothing here could test it), so Quotas stays false and
	// the sentence says which of the two it is.
	_, info.QuotaUnsupported = projectQuotas(probe)
	if statErr == nil {
		d.info = &info
	}
	return info
}

// existingAncestor is path's nearest ancestor that exists.
func existingAncestor(path string) string {
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == "/" {
			return p
		}
	}
}

// dataDir is hangard's data directory: the pool lives at
// DataDir/storage-pools/NAME.
func dataDir(p Pool) string { return filepath.Dir(filepath.Dir(p.Dir)) }

func (d *dirDriver) Create(ctx context.Context) (map[string]string, error) {
	r := revert.New()
	defer r.Fail()
	if d.external() {
		src := d.source()
		if inside(src, dataDir(d.p)) {
			return nil, errdefs.Invalid("source %s is inside hangard's data directory %s", src, dataDir(d.p))
		}
		if err := checkEmptyDir(src); err != nil {
			return nil, err
		}
	}
	made, err := mkdirNew(d.p.Dir)
	if err != nil {
		return nil, err
	}
	if made {
		r.Add(func() { _ = os.Remove(d.p.Dir) })
	} else if err := checkPoolDir(d.p.Dir); err != nil {
		return nil, err
	}
	if err := d.Mount(ctx); err != nil {
		return nil, err
	}
	r.Add(func() { _ = d.Unmount(context.Background()) })
	if err := d.l.makeTypeDirs(); err != nil {
		return nil, err
	}
	r.Add(func() { _ = d.l.removeTypeDirs() })

	cfg := copyConfig(d.p.Config)
	cfg["source"] = d.source()
	r.Success()
	d.p.Log.Info("dir pool created", "source", cfg["source"])
	return cfg, nil
}

// inside says whether path is dir or under it.
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// checkEmptyDir is the 400 for a source that is not an empty directory.
func checkEmptyDir(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.Invalid("source %s does not exist", dir)
	}
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return errdefs.Invalid("source %s is not a directory", dir)
	}
	empty, err := isEmptyDir(dir)
	if err != nil {
		return err
	}
	if !empty {
		return errdefs.Invalid("source %s is not empty", dir)
	}
	return nil
}

// checkPoolDir is the 400 for a pool directory that already holds
// something or has something mounted (a pool of that name not deleted).
// A source the user gives may be a mount point (a disk mounted for the
// pool); the pool's own directory may not.
func checkPoolDir(dir string) error {
	if m, ok, err := mountAt(dir); err != nil {
		return err
	} else if ok {
		return errdefs.Invalid("pool directory %s is in use: %s is mounted there", dir, m.source)
	}
	empty, err := isEmptyDir(dir)
	if err != nil {
		return err
	}
	if !empty {
		return errdefs.Invalid("pool directory %s is not empty", dir)
	}
	return nil
}

// mkdirNew makes dir (and its parents) and says whether it made dir.
func mkdirNew(dir string) (bool, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return false, err
	}
	err := os.Mkdir(dir, 0o711)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	return err == nil, err
}

func copyConfig(c map[string]string) map[string]string {
	out := make(map[string]string, len(c)+2)
	for k, v := range c {
		out[k] = v
	}
	return out
}

func (d *dirDriver) Mount(ctx context.Context) error {
	if !d.external() {
		if err := os.MkdirAll(d.p.Dir, 0o711); err != nil {
			return err
		}
		return d.l.makeTypeDirs()
	}
	if _, ok, err := mountAt(d.p.Dir); err != nil || ok {
		return err
	}
	if _, err := os.Stat(d.source()); err != nil {
		return fmt.Errorf("source of pool %s: %w", d.p.Name, err)
	}
	if err := os.MkdirAll(d.p.Dir, 0o711); err != nil {
		return err
	}
	if err := bindMount(d.source(), d.p.Dir); err != nil {
		return err
	}
	return d.l.makeTypeDirs()
}

func (d *dirDriver) Unmount(ctx context.Context) error {
	if !d.external() {
		return nil
	}
	return unmount(d.p.Dir)
}

// Delete removes the pool's (empty) type directories, unmounts a source
// and removes the pool's directory. A source the user gave is left,
// empty, as LXD does. Deleting a pool half made or already deleted is
// not an error, so the manager can finish a delete a crash cut short.
func (d *dirDriver) Delete(ctx context.Context) error {
	if _, err := os.Stat(d.p.Dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if d.external() {
		if _, err := os.Stat(d.source()); err == nil {
			if err := d.Mount(ctx); err != nil {
				return err
			}
		}
	}
	if err := d.Sweep(ctx); err != nil {
		return err
	}
	if err := d.l.removeTypeDirs(); err != nil {
		return err
	}
	if err := d.Unmount(ctx); err != nil {
		return err
	}
	if err := os.Remove(d.p.Dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	d.p.Log.Info("dir pool deleted")
	return nil
}

func (d *dirDriver) Update(ctx context.Context, changed map[string]string) error {
	for _, k := range sortedKeys(changed) {
		if k == "source" {
			return errdefs.Invalid("source cannot be changed on an existing pool")
		}
	}
	return nil
}

func (d *dirDriver) Usage(ctx context.Context) (Usage, error) { return statfsUsage(d.p.Dir) }

func (d *dirDriver) Device() (uint32, uint32, error) { return deviceOf(d.source()) }

func (d *dirDriver) Path(vol Volume) string { return d.l.path(vol) }

func (d *dirDriver) CreateVolume(ctx context.Context, vol Volume, size int64, readOnly bool, fill func(dir string) error) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	if vol.Content == ContentFilesystem && size > 0 {
		return errdefs.Invalid("%s", d.Info().QuotaUnsupported)
	}
	if err := checkCreate(vol, size, fill); err != nil {
		return err
	}
	final := d.l.path(vol)
	if _, err := os.Lstat(final); err == nil {
		return errdefs.Conflict("volume %s/%s already exists", vol.Type, vol.Name)
	}
	r := revert.New()
	defer r.Fail()
	tmp := d.l.tmpPath(vol)
	if err := os.Mkdir(tmp, 0o711); err != nil {
		return noSpace(err)
	}
	r.Add(func() { _ = removeTree(context.Background(), tmp) })
	if vol.Content == ContentBlock {
		if err := makeBlockFile(tmp, size, nil); err != nil {
			return err
		}
	}
	if err := fillVolume(fill, tmp); err != nil {
		return err
	}
	if err := checkFilled(tmp, vol, size); err != nil {
		return err
	}
	// readOnly is a convention on a dir pool (Info.ReadOnlyVolumes is
	// false): the manager mounts image volumes read-only.
	if err := renameNoReplace(tmp, final); err != nil {
		return err
	}
	r.Success()
	return nil
}

// CloneVolume copies parent's tree into a .tmp- name and renames it into
// place, so a kill leaves only the .tmp- copy for Sweep.
func (d *dirDriver) CloneVolume(ctx context.Context, vol, parent Volume) error {
	if err := checkPair(vol, parent, false); err != nil {
		return err
	}
	return d.copyInto(ctx, vol, parent)
}

// SnapshotVolume is a copy as CloneVolume's; read-only by convention
// (the manager never writes a snapshot, and mounts it read-only).
func (d *dirDriver) SnapshotVolume(ctx context.Context, snap, vol Volume) error {
	if err := checkPair(snap, vol, true); err != nil {
		return err
	}
	return d.copyInto(ctx, snap, vol)
}

func (d *dirDriver) copyInto(ctx context.Context, vol, from Volume) error {
	if err := mustExist(d.l, from); err != nil {
		return err
	}
	if err := mustNotExist(d.l, vol); err != nil {
		return err
	}
	tmp, err := copyVolume(ctx, d.l, vol, d.l.path(from))
	if err != nil {
		return err
	}
	if err := renameNoReplace(tmp, d.l.path(vol)); err != nil {
		return errors.Join(err, removeTree(context.Background(), tmp))
	}
	return nil
}

func (d *dirDriver) RestoreVolume(ctx context.Context, vol, snap Volume) error {
	if err := checkPair(vol, snap, true); err != nil {
		return err
	}
	if err := mustExist(d.l, vol); err != nil {
		return err
	}
	if err := mustExist(d.l, snap); err != nil {
		return err
	}
	tmp, err := copyVolume(ctx, d.l, vol, d.l.path(snap))
	if err != nil {
		return err
	}
	old, err := swapIn(d.l, tmp, vol)
	if err != nil {
		return errors.Join(err, removeTree(context.Background(), tmp))
	}
	// The restore is done; the old content's removal failing leaves a
	// .tmp- entry for Sweep, not a failed restore.
	if err := removeTree(ctx, old); err != nil {
		d.p.Log.Warn("restore: old content not removed; Sweep will", "path", old, "err", err)
	}
	return nil
}

// SendVolume: a dir pool has no stream format of its own; the manager
// streams its volumes as tar.
func (d *dirDriver) SendVolume(ctx context.Context, vol Volume, parent *Volume, w io.Writer) error {
	return errdefs.NotImplemented("a dir pool cannot send volumes in an optimized format")
}

func (d *dirDriver) ReceiveVolume(ctx context.Context, vol Volume, r io.Reader, readOnly bool) error {
	return errdefs.NotImplemented("a dir pool cannot receive volumes in an optimized format")
}

func (d *dirDriver) DeleteVolume(ctx context.Context, vol Volume) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	tmp, err := moveAside(d.l, vol)
	if err != nil || tmp == "" {
		return err
	}
	return removeTree(ctx, tmp)
}

func (d *dirDriver) RenameVolume(ctx context.Context, vol Volume, newName string) error {
	return renameVolume(d.l, vol, newName)
}

// renameVolume renames a volume's directory; both drivers use it (a
// btrfs subvolume renames like a directory).
func renameVolume(l layout, vol Volume, newName string) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	if err := checkVolumeName(newName, vol.Content); err != nil {
		return err
	}
	to := vol
	to.Name = newName
	if _, err := os.Lstat(l.path(vol)); errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("volume %s/%s not found", vol.Type, vol.Name)
	}
	err := renameNoReplace(l.path(vol), l.path(to))
	if errors.Is(err, errdefs.ErrConflict) {
		return errdefs.Conflict("volume %s/%s already exists", to.Type, to.Name)
	}
	return err
}

func (d *dirDriver) SetQuota(ctx context.Context, vol Volume, size int64) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	switch vol.Content {
	case ContentISO:
		return errISOSize
	case ContentBlock:
		return growBlockFile(d.l.path(vol), size)
	}
	if size == 0 {
		return nil // no limit is what a dir volume has
	}
	return errdefs.Invalid("%s", d.Info().QuotaUnsupported)
}

func (d *dirDriver) VolumeUsage(ctx context.Context, vol Volume) (Usage, error) {
	if err := checkVolume(vol); err != nil {
		return Usage{}, err
	}
	if vol.Content == ContentBlock || vol.Content == ContentISO {
		return blockUsage(d.l.path(vol))
	}
	used, err := walkUsage(ctx, d.l.path(vol))
	return Usage{Used: used}, err
}

func (d *dirDriver) Volumes(ctx context.Context) ([]Volume, error) { return d.l.volumes(ctx) }

func (d *dirDriver) Sweep(ctx context.Context) error { return d.l.sweep(ctx, removeTree, d.p.Log) }
