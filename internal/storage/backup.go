package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/backup"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
	"github.com/hangar-dev/hangar/internal/vmdisk"
)

// Instance backups (LXD's tarball layout, package backup): the core
// writes the index and decides what goes in; storage writes each volume's
// content into the archive (ExportRoot) and, on import, makes the new
// root and its snapshots from the archive's parts as they stream past
// (ImportRoot). A container's tree is archived as the volume's rootfs/
// with container ids (the root's id map undone); a VM's disk as a raw
// image (a qcow2 root converted first). A container's root on a pool
// with send streams (btrfs) can also be written optimized
// (backup_optimized.go).

// ExportRequest says what ExportRoot writes.
type ExportRequest struct {
	// Type is backup.TypeContainer or backup.TypeVM.
	Type string
	// Snapshots are the root snapshots to write, oldest first.
	Snapshots []string
	// Config is backup.yaml, written into every volume's directory (LXD's
	// import reads it from the instance's).
	Config []byte
	// Quiesce, when not nil, wraps the read of the root itself (not of
	// its snapshots, which do not change): the core pauses a running
	// instance there.
	Quiesce func(ctx context.Context, read func(ctx context.Context) error) error
	// Optimized writes the volumes as the pool's send streams
	// (BackupInfo.Optimized must have said it can), after the index the
	// caller wrote with Optimized and OptimizedHeader set.
	Optimized bool
}

// BackupInfo is what an index records of an instance's root.
type BackupInfo struct {
	// Driver and Pool are the backend and pool the index names.
	Driver, Pool string
	// Optimized: the root can be written as an optimized backup (a
	// container's root on a pool with send streams). LXD writes trees
	// when asked for optimized storage on a pool without, and so do we.
	Optimized bool
	// IDMap is the map the root's files are shifted by on disk (nil:
	// host ids), which an optimized backup's streams keep.
	IDMap *driver.IDMap
}

// BackupBackend says what an index records of an instance's root: its
// pool's driver, the pool's name, whether it can be optimized.
func (m *Manager) BackupBackend(ctx context.Context, instanceID int64) (BackupInfo, error) {
	p, rec, err := m.rootRecord(ctx, instanceID)
	if err != nil {
		return BackupInfo{}, err
	}
	idmap, err := parseIDMap(rec.Config[keyIDMap])
	if err != nil {
		return BackupInfo{}, fmt.Errorf("root volume %s: %w", rec.Name, err)
	}
	return BackupInfo{Driver: p.rec.Driver, Pool: rec.Pool, IDMap: idmap,
		Optimized: p.drv.Info().SendReceive && rec.Type == string(drivers.TypeContainer)}, nil
}

// ExportRoot writes an instance's root volume and the snapshots asked
// for into w, whose index the caller wrote: snapshots first, oldest
// first, then the root, as LXD orders them.
func (m *Manager) ExportRoot(ctx context.Context, instanceID int64, w *backup.Writer, req ExportRequest) error {
	p, rec, unlock, err := m.rootLocked(ctx, instanceID)
	if err != nil {
		return err
	}
	defer unlock()
	if req.Optimized {
		return m.exportOptimized(ctx, p, rec, w, req)
	}
	for _, name := range req.Snapshots {
		snap, err := m.snapshotRecord(ctx, rec, name)
		if err != nil {
			return err
		}
		if err := m.exportVolume(ctx, p, snap, w, req, name); err != nil {
			return fmt.Errorf("back up snapshot %s: %w", name, err)
		}
	}
	read := func(ctx context.Context) error { return m.exportVolume(ctx, p, rec, w, req, "") }
	if req.Quiesce != nil {
		err = req.Quiesce(ctx, read)
	} else {
		err = read(ctx)
	}
	if err != nil {
		return fmt.Errorf("back up root of %s: %w", rec.Name, err)
	}
	return nil
}

// exportVolume writes one volume (snap "" the root) as the layout wants.
func (m *Manager) exportVolume(ctx context.Context, p *pool, rec store.StorageVolume, w *backup.Writer, req ExportRequest, snap string) error {
	dir := backup.VolumeDir(req.Type)
	if snap != "" {
		dir = backup.SnapshotDir(req.Type, snap)
	}
	return m.readVolume(ctx, p, rec, func(v RootView) error {
		if err := ctx.Err(); err != nil {
			return errors.Join(errdefs.ErrCancelled, err)
		}
		if err := w.AddFile(dir+"/"+backup.ConfigFile, 0o600, req.Config); err != nil {
			return err
		}
		if v.Disk == "" {
			return w.AddTree(dir+"/rootfs", v.Dir, backup.TreeOptions{IDMap: backupMap(v.IDMap)})
		}
		return m.exportDisk(ctx, v, w, backup.DiskName(snap))
	})
}

// exportDisk writes a VM disk as a raw image: a raw disk as it is, a
// qcow2 one converted to a scratch file first (a tar header needs the
// size before the data).
func (m *Manager) exportDisk(ctx context.Context, v RootView, w *backup.Writer, name string) error {
	path := v.Disk
	if v.Format != "" && v.Format != vmdisk.FormatRaw {
		qemuImg, err := m.tool(m.cfg.QEMUImg, "qemu-img")
		if err != nil {
			return err
		}
		tmp, err := os.MkdirTemp(m.cfg.Dir, ".backup-disk-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		path = filepath.Join(tmp, "disk.raw")
		if err := vmdisk.ConvertTo(ctx, qemuImg, v.Disk, v.Format, path, vmdisk.FormatRaw); err != nil {
			return err
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return w.AddStream(name, -1, f)
}

func backupMap(m *driver.IDMap) backup.IDMap {
	if m == nil {
		return nil
	}
	return backup.SingleRange(m.HostID, m.Size)
}

// ImportSnapshot is a snapshot an archive holds, as ImportRoot makes it.
type ImportSnapshot struct {
	Name        string
	Description string
	ExpiresAt   time.Time
}

// ImportRequest is the root (and its snapshots) ImportRoot makes.
type ImportRequest struct {
	// Root is the new instance's root; its Image is ignored (an imported
	// root stands alone) and a VM's disk is kept raw.
	Root RootRequest
	// Snapshots are the archive's snapshots, in its index's order.
	Snapshots []ImportSnapshot
	// ArchiveMap is how the archive's rootfs ids are shifted (an LXD
	// export's volatile.last_state.idmap); nil: container ids.
	ArchiveMap backup.IDMap
}

// ImportRoot makes an instance's root, and its snapshots, from a backup
// read front to back from br: every entry goes into the volume it
// belongs to as it streams past. It returns once br reported the
// archive's verified end; on any error nothing it made is left.
func (m *Manager) ImportRoot(ctx context.Context, req ImportRequest, br *backup.Reader) error {
	root := req.Root
	root.Image = ""
	if err := m.CheckRoot(ctx, root.Pool, root.VM, root.Size); err != nil {
		return err
	}
	p, err := m.get(root.Pool)
	if err != nil {
		return err
	}
	if br.Index.Optimized {
		if err := checkOptimizedImport(p, root, req, br.Index); err != nil {
			return err
		}
	}
	unlock := m.locks.lock(fmt.Sprintf("instance/%d", root.InstanceID))
	defer unlock()
	rec := rootRecord(ctx, root)
	if root.VM {
		rec.Config[keyFormat] = vmdisk.FormatRaw
	}
	if root.Size > 0 {
		rec.Config["size"] = strconv.FormatInt(root.Size, 10)
	}
	if err := m.cfg.Store.CreateStorageVolume(ctx, &rec); err != nil {
		return err
	}
	r := revert.New()
	defer r.Fail()
	bg := context.WithoutCancel(ctx)
	r.Add(func() {
		if err := m.deleteSnapshots(bg, p, rec); err != nil {
			m.cfg.Log.Error("remove snapshots of a failed import", "volume", rec.Name, "err", err)
		}
		_ = p.drv.DeleteVolume(bg, diskVolume(rec))
		m.forget(bg, rec)
	})
	dv := diskVolume(rec)
	if br.Index.Optimized {
		if err := m.receiveBackup(ctx, p, rec, req, br); err != nil {
			return err
		}
		rec.State = "created"
		if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
			return err
		}
		if root.Size > 0 {
			if err := p.drv.SetQuota(ctx, dv, root.Size); err != nil {
				return err
			}
		}
		r.Success()
		return nil
	}
	// The root first, empty, so the snapshots that stream before it have
	// their parent; its content comes last in the archive.
	if err := p.drv.CreateVolume(ctx, dv, 0, false, func(dir string) error { return m.emptyRoot(p, root, dir) }); err != nil {
		return fmt.Errorf("import root of %s on pool %q: %w", root.Name, root.Pool, noSpace(err))
	}
	rec.State = "created"
	if err := m.cfg.Store.UpdateStorageVolume(ctx, rec); err != nil {
		return err
	}
	im := &importer{m: m, p: p, br: br, opts: backup.ExtractOptions{ArchiveMap: req.ArchiveMap, HostMap: backupMap(root.IDMap)}}
	if im.e, err = br.Next(); err != nil && err != io.EOF {
		return err
	}
	for _, s := range req.Snapshots {
		if im.e == nil || im.e.Part.Snapshot != s.Name {
			return errdefs.Invalid("backup: snapshot %q is not where the index puts it", s.Name)
		}
		_, err := m.makeSnapshot(ctx, p, rec, s.Name, s.Description, s.ExpiresAt, func(sdv drivers.Volume) error {
			return p.drv.CreateVolume(ctx, sdv, 0, true, func(dir string) error { return im.fill(ctx, dir, s.Name) })
		})
		if err != nil {
			return err
		}
	}
	if im.e == nil || im.e.Part.Snapshot != "" {
		return errdefs.Invalid("backup: the instance's volume is missing or out of place")
	}
	if err := im.fill(ctx, p.drv.Path(dv), ""); err != nil {
		return fmt.Errorf("import root of %s: %w", root.Name, noSpace(err))
	}
	if im.e != nil {
		return errdefs.Invalid("backup: unexpected entry %q after the instance's volume", im.e.Header.Name)
	}
	if root.Size > 0 && !root.VM {
		if err := p.drv.SetQuota(ctx, dv, root.Size); err != nil {
			return err
		}
	}
	if root.Size > 0 && root.VM {
		if err := growRaw(filepath.Join(p.drv.Path(dv), drivers.BlockFile), root.Size); err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			return err
		}
	}
	r.Success()
	return nil
}

// emptyRoot lays out a new, empty root in its volume's directory.
func (m *Manager) emptyRoot(p *pool, root RootRequest, dir string) error {
	if root.VM {
		return nil // the block file CreateVolume made, filled later
	}
	rootID := 0
	if root.IDMap != nil {
		rootID = int(root.IDMap.HostID)
	}
	if p.drv.Info().Clones {
		return os.Lchown(dir, rootID, rootID)
	}
	if err := os.Mkdir(filepath.Join(dir, "upper"), 0o755); err != nil {
		return err
	}
	if err := os.Lchown(filepath.Join(dir, "upper"), rootID, rootID); err != nil {
		return err
	}
	return os.Mkdir(filepath.Join(dir, "work"), 0o700)
}

// importer walks a backup's entries, one volume part after another; e is
// the entry not yet written (nil at the archive's end).
type importer struct {
	m    *Manager
	p    *pool
	br   *backup.Reader
	opts backup.ExtractOptions
	e    *backup.Entry
}

// fill writes the entries of volume snap (the root's: "") into the
// volume directory dir, until the first entry of another part. The tree
// is extracted beside the volume's content, under a scratch name, and
// its rootfs/ then moved where the runtime mounts it: the volume's
// directory (a pool with clones) or its upper/ (dir). The files beside
// rootfs/ (backup.yaml...) are the archive's and dropped.
func (im *importer) fill(ctx context.Context, dir, snap string) error {
	clones := im.p.drv.Info().Clones
	if !clones {
		if err := os.MkdirAll(filepath.Join(dir, "work"), 0o700); err != nil {
			return err
		}
	}
	stage, err := os.MkdirTemp(dir, ".import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	x, err := backup.NewExtractor(stage, im.opts)
	if err != nil {
		return err
	}
	defer x.Close()
	disk := false
	for im.e != nil && im.e.Part.Snapshot == snap {
		if err := ctx.Err(); err != nil {
			return errors.Join(errdefs.ErrCancelled, err)
		}
		switch im.e.Part.Kind {
		case backup.PartVolume:
			if err := x.Extract(im.e, im.br); err != nil {
				return err
			}
		case backup.PartDisk:
			if err := im.disk(dir); err != nil {
				return err
			}
			disk = true
		default:
			return errdefs.Invalid("backup: entry %q cannot be imported here", im.e.Header.Name)
		}
		if im.e, err = im.br.Next(); err == io.EOF {
			im.e = nil
		} else if err != nil {
			return err
		}
	}
	if err := x.Close(); err != nil {
		return err
	}
	if disk {
		return nil // a VM: its config files are not kept
	}
	tree := filepath.Join(stage, "rootfs")
	if _, err := os.Lstat(tree); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil // a volume without a tree (a VM's config part)
		}
		return err
	}
	if !clones {
		if err := os.RemoveAll(filepath.Join(dir, "upper")); err != nil {
			return err
		}
		return os.Rename(tree, filepath.Join(dir, "upper"))
	}
	return moveInto(tree, dir)
}

// disk writes the current entry, a raw disk image, into the volume's
// block file (kept: on btrfs it was made NOCOW).
func (im *importer) disk(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, drivers.BlockFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := backup.CopyDisk(f, im.br)
	if err != nil {
		return err
	}
	if n != im.e.Header.Size {
		return errdefs.Invalid("backup: disk %q: %d of %d bytes", im.e.Header.Name, n, im.e.Header.Size)
	}
	return f.Close()
}

// moveInto moves what directory src holds into dst (same filesystem)
// and gives dst src's owner and mode: the tree's root directory becomes
// the volume's.
func moveInto(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(src, e.Name()), unix.AT_FDCWD, filepath.Join(dst, e.Name()), unix.RENAME_NOREPLACE); err != nil {
			return fmt.Errorf("move %s into the volume: %w", e.Name(), err)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return os.Chmod(dst, os.FileMode(st.Mode&0o777)|modeBits(st.Mode))
}

// modeBits are the setuid, setgid and sticky bits of a stat mode as an
// os.FileMode.
func modeBits(m uint32) os.FileMode {
	var out os.FileMode
	if m&unix.S_ISUID != 0 {
		out |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		out |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		out |= os.ModeSticky
	}
	return out
}
