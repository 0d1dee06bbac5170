package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/revert"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
	"github.com/hangar-dev/hangar/internal/store"
)

// ISO volumes (content type "iso", LXD's custom_volume_iso): an ISO 9660
// or UDF image imported from a stream into a custom volume, as the image
// file of a block volume (drivers.BlockFile). Its size (config size) is
// the image's, counted by the project's limits.disk like any custom
// volume's. It is read-only: a read-only subvolume on btrfs, by
// convention on dir, and only ever attached read-only (package device).
// As in LXD it cannot be created empty, resized, snapshotted or have
// config keys other than user.*; it is renamed and deleted as any custom
// volume, and its users are tracked the same way.

// isoHeaderSize is how much of an image is read before anything is
// written: up to the end of the identifier of the descriptor at sector
// 16 (byte 32768), where every ISO 9660 image has its primary volume
// descriptor and every UDF image its volume recognition sequence.
const isoHeaderSize = isoMagicAt + 5

// isoMagicAt is where the descriptor's standard identifier is: after its
// one-byte type, at byte 32769.
const isoMagicAt = 16*2048 + 1

// isoMagics are the identifiers a descriptor at sector 16 may have: an
// ISO 9660 volume descriptor (CD001), or the start of UDF's extended area
// (BEA01) or its NSR descriptor (NSR02, NSR03).
var isoMagics = [][]byte{[]byte("CD001"), []byte("BEA01"), []byte("NSR02"), []byte("NSR03")}

// checkISOHeader says whether the first isoHeaderSize bytes of an image
// are an ISO 9660 or UDF image's, as a 400 naming what was found.
func checkISOHeader(h []byte) error {
	if len(h) < isoHeaderSize {
		return errdefs.Invalid("not an ISO image: %d bytes, and an ISO 9660 or UDF image has its first volume descriptor at byte %d", len(h), isoMagicAt-1)
	}
	got := h[isoMagicAt:isoHeaderSize]
	for _, m := range isoMagics {
		if bytes.Equal(got, m) {
			return nil
		}
	}
	return errdefs.Invalid("not an ISO image: no ISO 9660 (CD001) or UDF (BEA01) volume descriptor at byte %d (found %q)", isoMagicAt, got)
}

// writeISO copies an image from r into path, refusing (before it writes
// anything) what is not an ISO 9660 or UDF image. It returns the image's
// size.
func writeISO(r io.Reader, path string) (int64, error) {
	h := make([]byte, isoHeaderSize)
	n, err := io.ReadFull(r, h)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read ISO image: %w", err)
	}
	if err := checkISOHeader(h[:n]); err != nil {
		return 0, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Write(h); err != nil {
		return 0, err
	}
	rest, err := io.Copy(f, r)
	if err != nil {
		return 0, fmt.Errorf("write ISO image: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return int64(len(h)) + rest, f.Close()
}

// ImportISORequest is an ISO volume to make from an image.
type ImportISORequest struct {
	Pool        string
	Name        string
	Description string
	// Image is the ISO 9660 or UDF image, read to its end.
	Image io.Reader
}

// ImportISO makes a custom ISO volume from an image stream. What is not
// an ISO image is a 400 and leaves nothing, as does a stream cut short
// (the caller's read error), a full pool or an exceeded limits.disk: the
// record is pending and the volume under a temporary name until the
// image is whole and counted.
func (m *Manager) ImportISO(ctx context.Context, req ImportISORequest) error {
	if err := m.allowCreateVolume(ctx); err != nil {
		return err
	}
	if err := checkName("storage volume", req.Name); err != nil {
		return err
	}
	p, err := m.get(req.Pool)
	if err != nil {
		return err
	}
	proj := volumeProject(ctx, string(drivers.TypeCustom))
	unlock := m.locks.lock(customLockKey(req.Pool, proj, req.Name))
	defer unlock()
	if err := m.diskNameFree(ctx, req.Pool, customDiskName(proj, req.Name)); err != nil {
		return err
	}
	rec := store.StorageVolume{Pool: req.Pool, Project: proj, Type: string(drivers.TypeCustom), Name: req.Name,
		DiskName: customDiskName(proj, req.Name), Content: string(drivers.ContentISO), Description: req.Description,
		Config: map[string]string{}, CreatedAt: time.Now()}
	// Pending, without a size, while the image arrives: a daemon killed
	// meanwhile removes both at its next start (reconcile).
	if err := m.cfg.Store.CreateStorageVolume(ctx, &rec); err != nil {
		return err
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { m.forget(ctx, rec) })
	dv := diskVolume(rec)
	var size int64
	fill := func(dir string) error {
		size, err = writeISO(req.Image, filepath.Join(dir, drivers.BlockFile))
		return err
	}
	if err := p.drv.CreateVolume(ctx, dv, 0, true, fill); err != nil {
		return fmt.Errorf("import ISO volume %q: %w", req.Name, noSpace(err))
	}
	r.Add(func() { _ = p.drv.DeleteVolume(context.WithoutCancel(ctx), dv) })
	rec.Config["size"] = strconv.FormatInt(size, 10)
	rec.State = "created"
	m.quotaMu.Lock()
	err = m.checkDisk(ctx, proj, size)
	if err == nil {
		err = m.cfg.Store.UpdateStorageVolume(ctx, rec)
	}
	m.quotaMu.Unlock()
	if err != nil {
		return err
	}
	r.Success()
	m.cfg.Log.Info("ISO volume imported", "pool", req.Pool, "project", proj, "volume", req.Name, "size", size)
	m.emitIn(ctx, proj, "storage-volume-created", event.EntityStorageVolume, req.Pool+"/custom/"+req.Name, nil)
	return nil
}

// refuseISO is the 400 for what an ISO volume cannot do (what: "have
// snapshots").
func refuseISO(rec store.StorageVolume, what string) error {
	if rec.Content != string(drivers.ContentISO) {
		return nil
	}
	return errdefs.Invalid("storage volume %q is an ISO volume: ISO volumes cannot %s (they are read-only images)", rec.Name, what)
}

// isoConfig checks an ISO volume's next config: only user.* keys change;
// size stays the image's (kept when a PUT leaves it out).
func isoConfig(rec store.StorageVolume, next map[string]string) error {
	if next["size"] == "" {
		next["size"] = rec.Config["size"]
	}
	if next["size"] != rec.Config["size"] {
		return errdefs.Invalid("size: storage volume %q is an ISO volume: its size is its image's (%s bytes), it cannot be resized", rec.Name, rec.Config["size"])
	}
	return nil
}
