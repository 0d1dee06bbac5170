package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
)

// treePath is where an image's unpacked tree (ids as in the archive) is.
func (s *Service) treePath(fp string) string {
	return filepath.Join(s.rootfsDir, fp)
}

// RootFS returns the path of an image's unpacked tree, ids as in the
// archive: the tree Import made, rebuilt from the blob if it went missing.
// The tree is for reading (an OCI image's /etc/passwd): it must not be
// modified, and instances never run on it; storage pools unpack their own
// copies (UnpackTree).
//
// Concurrent callers share one rebuild (callGroup), so no two race on the
// rename; a caller whose ctx ends stops waiting, and the rebuild stops
// once no caller waits, leaving nothing.
func (s *Service) RootFS(ctx context.Context, fp string) (string, error) {
	rec, err := s.stored(ctx, fp) // Any project's: the caller resolved fp in its own.
	if err != nil {
		return "", err
	}
	if err := hasTree(rec); err != nil {
		return "", err
	}
	final := s.treePath(rec.Fingerprint)
	if isDir(final) {
		return final, nil
	}
	if _, err := s.rebuilds.do(ctx, rec.Fingerprint, nil, func(ctx context.Context, _ *call) error {
		return s.rebuild(ctx, rec)
	}); err != nil {
		return "", err
	}
	return final, nil
}

// rebuild unpacks an image's unshifted tree again from its blob, into a
// temporary directory renamed into place once complete.
func (s *Service) rebuild(ctx context.Context, rec Record) error {
	// Shared with other unpacks; Delete takes it exclusively, so it never
	// removes files under a rebuild nor a rebuild recreates them after it.
	s.treeMu.RLock()
	defer s.treeMu.RUnlock()
	final := s.treePath(rec.Fingerprint)
	if isDir(final) {
		return nil // Rebuilt by a call that ended between our check and now.
	}
	// Delete may have run before we took treeMu.
	if _, err := s.stored(ctx, rec.Fingerprint); err != nil {
		return err
	}
	s.log.Warn("image tree missing, unpacking it again", "fingerprint", rec.Fingerprint)
	tmp, err := os.MkdirTemp(s.rootfsDir, ".tmp-"+rec.Fingerprint+"-")
	if err != nil {
		return fmt.Errorf("unpack image %s: %w", rec.Fingerprint, err)
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { os.RemoveAll(tmp) })
	if err := s.unpack(ctx, rec, nil, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("unpack image %s: %w", rec.Fingerprint, err)
	}
	r.Success()
	s.log.Info("image tree unpacked", "fingerprint", rec.Fingerprint)
	return syncDir(s.rootfsDir)
}

// UnpackTree writes image fp's root filesystem into dir (which exists and
// is empty), with its ids shifted for idmap when not nil: a storage pool
// caches an image this way, once per pool and id map. A virtual-machine
// disk image has no tree (errdefs invalid).
func (s *Service) UnpackTree(ctx context.Context, fp string, idmap *driver.IDMap, dir string) error {
	rec, err := s.stored(ctx, fp) // A pool caches it for every project.
	if err != nil {
		return err
	}
	if err := hasTree(rec); err != nil {
		return err
	}
	if idmap != nil {
		if err := validIDMap(*idmap); err != nil {
			return err
		}
	}
	s.treeMu.RLock()
	defer s.treeMu.RUnlock()
	return s.unpack(ctx, rec, idmap, dir)
}

// hasTree refuses an image without a root filesystem.
func hasTree(rec Record) error {
	if isDiskFormat(rec.Format) {
		return errdefs.Invalid("image %s is a virtual-machine disk image: it has no root filesystem, so only a virtual machine boots it", rec.Fingerprint[:12])
	}
	return nil
}

// unpack writes rec's tree from its blob into dir, shifted for idmap when
// not nil, and syncs it. The caller holds treeMu shared.
func (s *Service) unpack(ctx context.Context, rec Record, idmap *driver.IDMap, dir string) error {
	blob, err := os.Open(s.rootfsBlobPath(rec))
	if err != nil {
		return fmt.Errorf("image %s: %w", rec.Fingerprint, err)
	}
	defer blob.Close()
	src, err := sourceFor(rec)
	if err != nil {
		return err
	}
	size, err := s.newCap()
	if err != nil {
		return err
	}
	opts := unpackOptions{shift: idmap, log: s.log, blobs: s.blobDir, size: size}
	if err := src.extract(ctx, blob, dir, opts); err != nil {
		if idmap != nil && errors.Is(err, errdefs.ErrInvalidArgument) {
			return errdefs.Invalid("image %s cannot be shifted for id map %d+%d: %v", rec.Fingerprint, idmap.HostID, idmap.Size, err)
		}
		return fmt.Errorf("unpack image %s: %w", rec.Fingerprint, err)
	}
	return syncFS(dir)
}

func isDir(p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.IsDir()
}
