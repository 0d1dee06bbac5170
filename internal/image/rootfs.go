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

// flight is one tree build that concurrent callers share.
type flight struct {
	done chan struct{}
	err  error
}

// treeName is the directory name of an image's tree for an id map.
func treeName(fp string, m *driver.IDMap) string {
	if m == nil {
		return fp
	}
	return fmt.Sprintf("%s@%d-%d", fp, m.HostID, m.Size)
}

func (s *Service) treePath(fp string, m *driver.IDMap) string {
	return filepath.Join(s.rootfsDir, treeName(fp, m))
}

// RootFS returns the path of an image's unpacked tree: with idmap nil the
// tree with the archive's ids, else the tree shifted for idmap, unpacked
// from the blob on first use. Concurrent callers for one tree share one
// unpack; a tree is renamed into place only once complete. The tree must
// not be modified: layer a writable overlay over it.
//
// A caller whose ctx ends stops waiting; the unpack goes on for the others
// (and for next time).
func (s *Service) RootFS(ctx context.Context, fp string, idmap *driver.IDMap) (string, error) {
	rec, err := s.record(ctx, fp)
	if err != nil {
		return "", err
	}
	if isDiskFormat(rec.Format) {
		return "", errdefs.Invalid("image %s is a virtual-machine disk image: it has no root filesystem, so only a virtual machine boots it", rec.Fingerprint[:12])
	}
	var m *driver.IDMap
	if idmap != nil {
		if err := validIDMap(*idmap); err != nil {
			return "", err
		}
		c := *idmap
		m = &c
	}
	name := treeName(rec.Fingerprint, m)
	final := s.treePath(rec.Fingerprint, m)
	if isDir(final) {
		return final, nil
	}

	s.mu.Lock()
	f, ok := s.flights[name]
	if !ok {
		f = &flight{done: make(chan struct{})}
		s.flights[name] = f
		go s.build(context.WithoutCancel(ctx), rec, m, name, f)
	}
	s.mu.Unlock()

	select {
	case <-f.done:
		if f.err != nil {
			return "", f.err
		}
		return final, nil
	case <-ctx.Done():
		return "", cancelled(ctx.Err())
	}
}

// build unpacks one tree from the image's blob. The unshifted tree is
// normally made by Import; it is rebuilt here only if it went missing.
func (s *Service) build(ctx context.Context, rec Record, m *driver.IDMap, name string, f *flight) {
	defer func() {
		s.mu.Lock()
		delete(s.flights, name)
		s.mu.Unlock()
		close(f.done)
	}()
	s.treeMu.RLock()
	defer s.treeMu.RUnlock()

	final := filepath.Join(s.rootfsDir, name)
	if isDir(final) {
		return // Built by a flight that ended between our check and now.
	}
	// Delete may have run before we took treeMu.
	if _, err := s.record(ctx, rec.Fingerprint); err != nil {
		f.err = err
		return
	}
	s.builds.Add(1)
	f.err = s.unpackTree(ctx, rec, m, final)
	switch {
	case errors.Is(f.err, errdefs.ErrInvalidArgument):
		// The image's doing (beyond the size cap, not shiftable): the
		// caller is told; not a fault of the server.
		s.log.Warn("cannot unpack image tree", "fingerprint", rec.Fingerprint, "tree", name, "error", f.err)
	case f.err != nil:
		s.log.Error("cannot unpack image tree", "fingerprint", rec.Fingerprint, "tree", name, "error", f.err)
	}
}

func (s *Service) unpackTree(ctx context.Context, rec Record, m *driver.IDMap, final string) error {
	blob, err := os.Open(s.rootfsBlobPath(rec))
	if err != nil {
		return fmt.Errorf("image %s: %w", rec.Fingerprint, err)
	}
	defer blob.Close()
	tmp, err := os.MkdirTemp(s.rootfsDir, ".tmp-"+filepath.Base(final)+"-")
	if err != nil {
		return err
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { os.RemoveAll(tmp) })
	src, err := sourceFor(rec)
	if err != nil {
		return err
	}
	size, err := s.newCap()
	if err != nil {
		return err
	}
	opts := unpackOptions{shift: m, log: s.log, blobs: s.blobDir, size: size}
	if err := src.extract(ctx, blob, tmp, opts); err != nil {
		if m != nil && errors.Is(err, errdefs.ErrInvalidArgument) {
			return errdefs.Invalid("image %s cannot be shifted for id map %d+%d: %v", rec.Fingerprint, m.HostID, m.Size, err)
		}
		return fmt.Errorf("unpack image %s: %w", rec.Fingerprint, err)
	}
	if err := syncFS(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("unpack image %s: %w", rec.Fingerprint, err)
	}
	r.Success()
	s.log.Info("image tree unpacked", "fingerprint", rec.Fingerprint, "tree", filepath.Base(final))
	return syncDir(s.rootfsDir)
}

// UnpackTree writes image fp's root filesystem into dir (which exists and
// is empty), with its ids shifted for idmap when not nil: a storage pool
// caches an image this way, once per pool and id map. A virtual-machine
// disk image has no tree (errdefs invalid).
func (s *Service) UnpackTree(ctx context.Context, fp string, idmap *driver.IDMap, dir string) error {
	rec, err := s.record(ctx, fp)
	if err != nil {
		return err
	}
	if isDiskFormat(rec.Format) {
		return errdefs.Invalid("image %s is a virtual-machine disk image: it has no root filesystem, so only a virtual machine boots it", rec.Fingerprint[:12])
	}
	if idmap != nil {
		if err := validIDMap(*idmap); err != nil {
			return err
		}
	}
	s.treeMu.RLock()
	defer s.treeMu.RUnlock()
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
