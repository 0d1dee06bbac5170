package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/backup"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
)

// Optimized backups (LXD's optimized_storage on btrfs): a container's
// volumes as send streams instead of trees, the snapshots oldest first,
// the first whole and each next one incremental against the one before,
// then the root incremental against the last snapshot, as LXD 5.0's
// btrfs BackupVolume orders them; backup/optimized_header.yaml lists the
// subvolumes first.
//
// LXD's container volume holds backup.yaml beside rootfs/; ours is the
// tree itself. So each volume is written as LXD writes a volume with a
// nested subvolume: NAME.bin, a small stream of LXD's volume (backup.yaml
// and an empty rootfs/ directory), and NAME_rootfs.bin, our volume sent
// as the subvolume nested at /rootfs, where LXD's restore moves it. The
// import reads the same shape back: the /rootfs streams become the
// volumes (ReceiveVolume, snapshots read-only and oldest first so each
// increment finds its parent, the root writable), the wrapping streams
// are skipped. An optimized backup whose tree is a plain directory of
// the volume (what LXD itself writes) or that holds other nested
// subvolumes is refused with a 400: it would need the tree copied out of
// the received volume; export it without optimized storage instead.
//
// Streams are the ids on disk: the index records the root's map as its
// volatile.last_state.idmap (the core does), and an import needs the
// same map for the new root (a 400 otherwise: a received subvolume is
// not shifted here).
//
// Scratch: the read-only snapshot of the root sent, and the wrapping
// volume, are volumes of the pool with no record (NAME@backup-...),
// removed at the end and, after a kill, by the start's reconcile; each
// stream is spooled to an unnamed temporary file (a tar header needs its
// size first), gone with its descriptor.

// rootfsSubvolume is where an optimized backup nests a container's tree.
const rootfsSubvolume = "/rootfs"

// exportOptimized writes rec's snapshots and rec as send streams (the
// caller holds the root's lock).
func (m *Manager) exportOptimized(ctx context.Context, p *pool, rec store.StorageVolume, w *backup.Writer, req ExportRequest) error {
	if !p.drv.Info().SendReceive || rec.Type != string(drivers.TypeContainer) || req.Type != backup.TypeContainer {
		return errdefs.Invalid("backup: optimized storage needs a container's root on a pool with send streams (btrfs); %s is a %s on a %s pool", rec.Name, rec.Type, p.rec.Driver)
	}
	h := &backup.OptimizedHeader{}
	for _, s := range append(slices.Clone(req.Snapshots), "") {
		ro := s != ""
		h.Subvolumes = append(h.Subvolumes,
			backup.OptimizedSubvolume{Path: "/", Snapshot: s, Readonly: ro},
			backup.OptimizedSubvolume{Path: rootfsSubvolume, Snapshot: s, Readonly: ro})
	}
	yml, err := backup.MarshalOptimizedHeader(h)
	if err != nil {
		return err
	}
	if err := w.AddFile(backup.OptimizedHeaderName, 0o644, yml); err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	scratch := func(what string) drivers.Volume {
		return drivers.Volume{Type: drivers.VolumeType(rec.Type), Name: rec.DiskName + "@backup-" + what + snapshotToken(), Content: drivers.ContentType(rec.Content)}
	}
	// LXD's volume around the tree, the same for every volume: sent
	// whole each time (it is a few hundred bytes).
	wrap := scratch("wrap-")
	defer m.dropScratch(bg, p, wrap)
	err = p.drv.CreateVolume(ctx, wrap, 0, true, func(dir string) error {
		if err := os.WriteFile(filepath.Join(dir, backup.ConfigFile), req.Config, 0o600); err != nil {
			return err
		}
		return os.Mkdir(filepath.Join(dir, "rootfs"), 0o755)
	})
	if err != nil {
		return fmt.Errorf("back up %s: %w", rec.Name, noSpace(err))
	}
	var parent *drivers.Volume
	for _, name := range req.Snapshots {
		snap, err := m.snapshotRecord(ctx, rec, name)
		if err != nil {
			return err
		}
		dv := diskVolume(snap)
		if err := m.sendStream(ctx, p, wrap, nil, w, backup.OptimizedName(req.Type, name, "/")); err != nil {
			return fmt.Errorf("back up snapshot %s: %w", name, err)
		}
		if err := m.sendStream(ctx, p, dv, parent, w, backup.OptimizedName(req.Type, name, rootfsSubvolume)); err != nil {
			return fmt.Errorf("back up snapshot %s: %w", name, err)
		}
		parent = &dv
	}
	// A writable root cannot be sent: a read-only snapshot of it is,
	// taken while the core holds the instance still (instant on btrfs).
	frozen := scratch("")
	defer m.dropScratch(bg, p, frozen)
	take := func(ctx context.Context) error { return p.drv.SnapshotVolume(ctx, frozen, diskVolume(rec)) }
	if req.Quiesce != nil {
		err = req.Quiesce(ctx, take)
	} else {
		err = take(ctx)
	}
	if err != nil {
		return fmt.Errorf("back up root of %s: %w", rec.Name, noSpace(err))
	}
	if err := m.sendStream(ctx, p, wrap, nil, w, backup.OptimizedName(req.Type, "", "/")); err != nil {
		return fmt.Errorf("back up root of %s: %w", rec.Name, err)
	}
	if err := m.sendStream(ctx, p, frozen, parent, w, backup.OptimizedName(req.Type, "", rootfsSubvolume)); err != nil {
		return fmt.Errorf("back up root of %s: %w", rec.Name, err)
	}
	return nil
}

// dropScratch removes a scratch volume an export made; one left by a
// failure here goes at the next start (a volume with no record).
func (m *Manager) dropScratch(ctx context.Context, p *pool, v drivers.Volume) {
	if err := p.drv.DeleteVolume(ctx, v); err != nil {
		m.cfg.Log.Warn("remove a backup's scratch volume", "pool", p.rec.Name, "volume", v.Name, "err", err)
	}
}

// sendStream writes vol's send stream (incremental against parent when
// set) into the archive as name, spooled first: its size goes before it.
func (m *Manager) sendStream(ctx context.Context, p *pool, vol drivers.Volume, parent *drivers.Volume, w *backup.Writer, name string) error {
	f, err := spoolFile(m.cfg.Dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := p.drv.SendVolume(ctx, vol, parent, f); err != nil {
		return noSpace(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	return w.AddStream(name, -1, f)
}

// spoolFile is an unnamed file in dir (O_TMPFILE), or, where the
// filesystem has none, a named one removed at once.
func spoolFile(dir string) (*os.File, error) {
	f, err := os.OpenFile(dir, os.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return f, nil
	}
	f, err = os.CreateTemp(dir, ".backup-stream-")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	return f, nil
}

// checkOptimizedImport refuses, before anything is made, an optimized
// backup that cannot be restored onto p: LXD's rule (the same driver),
// a VM's, or files shifted by another map than the new root's.
func checkOptimizedImport(p *pool, root RootRequest, req ImportRequest, idx *backup.Index) error {
	if idx.Backend != p.rec.Driver || !p.drv.Info().SendReceive {
		return errdefs.Invalid("backup: an optimized backup restores only onto a pool of its own driver: this one is %s, pool %q is %s (export without optimized storage to move between drivers)", idx.Backend, p.rec.Name, p.rec.Driver)
	}
	if root.VM || idx.Type != backup.TypeContainer {
		return errdefs.Invalid("backup: optimized backups of virtual machines are not restored here; export without optimized storage")
	}
	if want := backupMap(root.IDMap); !req.ArchiveMap.Equal(want) {
		return errdefs.Invalid("backup: the optimized backup's files are shifted by another id map (%s %v) than the new container's (%v); export without optimized storage", backup.KeyLastIDMap, req.ArchiveMap, want)
	}
	return nil
}

// receiveBackup makes rec's snapshots and rec itself from an optimized
// backup's streams; on error the caller removes what was made.
func (m *Manager) receiveBackup(ctx context.Context, p *pool, rec store.StorageVolume, req ImportRequest, br *backup.Reader) error {
	e, err := br.Next()
	if err != nil && err != io.EOF {
		return err
	}
	if e == nil || e.Part.Kind != backup.PartOptimizedHeader {
		return errdefs.Invalid("backup: an optimized backup's %s must follow its index", backup.OptimizedHeaderName)
	}
	b, err := io.ReadAll(br)
	if err != nil {
		return err
	}
	h, err := backup.ParseOptimizedHeader(b, br.Index)
	if err != nil {
		return err
	}
	for _, s := range append(slices.Clone(br.Index.Snapshots), "") {
		if !slices.Equal(h.Nested(s), []string{rootfsSubvolume}) {
			return errdefs.Invalid("backup: this optimized backup keeps its tree as a directory of its volume, or has nested subvolumes (%q): only the layout hangard writes (the tree as the subvolume %s) is restored here; export without optimized storage", h.Nested(s), rootfsSubvolume)
		}
	}
	next := func() error {
		e, err = br.Next()
		if err == io.EOF {
			e, err = nil, nil
		}
		return err
	}
	if err := next(); err != nil {
		return err
	}
	// volume consumes the streams of volume snap: the wrapping one is
	// skipped (Next discards it), the tree's received by recv.
	volume := func(snap string, recv func() error) error {
		got := false
		for e != nil && e.Part.Snapshot == snap {
			switch {
			case e.Part.Kind != backup.PartOptimized:
				return errdefs.Invalid("backup: unexpected entry %q among the send streams", e.Header.Name)
			case e.Part.Subvolume == rootfsSubvolume && !got:
				if err := recv(); err != nil {
					return err
				}
				got = true
			case e.Part.Subvolume != "/":
				return errdefs.Invalid("backup: unexpected send stream %q", e.Header.Name)
			}
			if err := next(); err != nil {
				return err
			}
		}
		if !got {
			return errdefs.Invalid("backup: no %s stream for %q", rootfsSubvolume, snap)
		}
		return nil
	}
	for _, s := range req.Snapshots {
		if e == nil || e.Part.Snapshot != s.Name {
			return errdefs.Invalid("backup: snapshot %q is not where the index puts it", s.Name)
		}
		err := volume(s.Name, func() error {
			_, err := m.makeSnapshot(ctx, p, rec, s.Name, s.Description, s.ExpiresAt, func(sdv drivers.Volume) error {
				sr := &streamReader{r: br}
				return sr.error(p.drv.ReceiveVolume(ctx, sdv, sr, true))
			})
			return err
		})
		if err != nil {
			return err
		}
	}
	if e == nil || e.Part.Snapshot != "" {
		return errdefs.Invalid("backup: the instance's volume is missing or out of place")
	}
	err = volume("", func() error {
		sr := &streamReader{r: br}
		if err := sr.error(p.drv.ReceiveVolume(ctx, diskVolume(rec), sr, false)); err != nil {
			return fmt.Errorf("import root of %s: %w", req.Root.Name, noSpace(err))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if e != nil {
		return errdefs.Invalid("backup: unexpected entry %q after the instance's volume", e.Header.Name)
	}
	return nil
}

// streamReader is a stream being received: it keeps the archive's read
// error, which btrfs receive only sees as a short stream.
type streamReader struct {
	r   io.Reader
	err error
}

func (s *streamReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// error is a receive's error as the caller reports it: the archive's
// own (a truncated or corrupt backup) first; a receive that cannot find
// an increment's parent was given a broken backup too.
func (s *streamReader) error(err error) error {
	switch {
	case err == nil:
		return nil
	case s.err != nil:
		return s.err
	case errors.Is(err, errdefs.ErrNotFound):
		return errdefs.Invalid("backup: %v", err)
	}
	return err
}
