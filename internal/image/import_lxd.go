package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// splitRootfsPath is where a split image's root filesystem is kept, beside
// its metadata tarball (as LXD keeps <fp> and <fp>.rootfs).
func (s *Service) splitRootfsPath(fp string) string { return s.blobPath(fp) + ".rootfs" }

// rootfsBlobPath is the file an image's trees are unpacked from.
func (s *Service) rootfsBlobPath(rec Record) string {
	if rec.Format == formatLXDSplit {
		return s.splitRootfsPath(rec.Fingerprint)
	}
	return s.blobPath(rec.Fingerprint)
}

// unpackUnifiedAgain unpacks a received upload again, from its stored copy,
// as an LXD unified image: it was first unpacked as a plain root filesystem
// because its metadata.yaml came after rootfs/ entries.
func (s *Service) unpackUnifiedAgain(ctx context.Context, up *upload, size *sizeCap) (*imageTarball, error) {
	s.log.Debug("LXD image tarball with metadata.yaml late; unpacking it again", "upload", up.blob)
	if err := os.RemoveAll(up.root); err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	up.root = ""
	root, err := os.MkdirTemp(s.rootfsDir, ".tmp-import-*")
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	up.root = root
	blob, err := os.Open(up.blob)
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	defer blob.Close()
	src := &imageTarball{unified: true}
	if err := src.extract(ctx, blob, root, unpackOptions{log: s.log, size: size}); err != nil {
		return nil, err
	}
	return src, nil
}

// receiveSplit receives a split LXD image: the metadata tarball from meta,
// read to its end and checked (it must hold a valid metadata.yaml) before
// next is called for the root filesystem, which is stored while it is
// unpacked (a tarball) or then unpacked (squashfs). Both are fingerprinted
// as one stream, metadata first, as LXD does.
func (s *Service) receiveSplit(ctx context.Context, meta io.Reader, next func() (io.Reader, error)) (_ *upload, err error) {
	up := &upload{format: formatLXDSplit}
	defer func() {
		if err != nil {
			up.discard()
		}
	}()
	h := sha256.New()
	size, err := s.newCap()
	if err != nil {
		return nil, err
	}

	mf, err := os.CreateTemp(s.blobDir, ".tmp-upload-*")
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	up.blob = mf.Name()
	defer mf.Close()
	mhr := &hashingReader{ctx: ctx, r: meta, w: mf, h: h, size: size}
	md, err := lxdSplitMetadata(ctx, mhr, size)
	if err == nil {
		_, err = io.Copy(io.Discard, mhr)
	}
	if err := mhr.failure(err); err != nil {
		return nil, err
	}
	if err := closeSynced(mf); err != nil {
		return nil, err
	}
	up.lxd = &md

	rootfs, err := next()
	if err != nil {
		return nil, err
	}
	rf, err := os.CreateTemp(s.blobDir, ".tmp-upload-*")
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	up.rootfsBlob = rf.Name()
	defer rf.Close()
	if up.root, err = os.MkdirTemp(s.rootfsDir, ".tmp-import-*"); err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	rhr := &hashingReader{ctx: ctx, r: rootfs, w: rf, h: h}
	br := bufio.NewReaderSize(rhr, 64<<10)
	head, _ := br.Peek(diskHeadSize)
	opts := unpackOptions{log: s.log, size: size}
	claimed := detectDisk(head)
	if claimed == "" {
		// A root filesystem, unpacked: its bytes count against the cap
		// from the first (a disk is stored as it is, uncapped).
		rhr.size = size
		if err := size.addRaw(int(rhr.n)); err != nil {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
	}
	if claimed != "" {
		// An LXD virtual-machine image: its rootfs.img is a disk, kept
		// as it is, with no tree (disk.go).
		_, err = io.Copy(io.Discard, br)
		if err := rhr.failure(err); err != nil {
			return nil, err
		}
		if err := closeSynced(rf); err != nil {
			return nil, err
		}
		if err := inspectDisk(ctx, up.rootfsBlob, claimed, rhr.n); err != nil {
			return nil, fmt.Errorf("rootfs.img: %w", err)
		}
		if err := os.Remove(up.root); err != nil {
			return nil, fmt.Errorf("store upload: %w", err)
		}
		up.root = ""
		up.format = formatLXDSplitPrefix + claimed
		up.fp = hex.EncodeToString(h.Sum(nil))
		up.size = mhr.n + rhr.n
		return up, nil
	}
	if bytes.HasPrefix(head, magicSquashfs) {
		// unsquashfs reads a file: store all of it first.
		_, err = io.Copy(io.Discard, br)
		if err := rhr.failure(err); err != nil {
			return nil, err
		}
		if err := rf.Sync(); err != nil {
			return nil, fmt.Errorf("store upload: %w", err)
		}
		if _, err := rf.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("store upload: %w", err)
		}
		if err := (splitRootfs{}).extract(ctx, rf, up.root, opts); err != nil {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
	} else {
		err = rootfsTarball{}.extract(ctx, br, up.root, opts)
		if err == nil {
			_, err = io.Copy(io.Discard, br)
		}
		if err := rhr.failure(err); err != nil {
			return nil, fmt.Errorf("rootfs: %w", err)
		}
	}
	if err := closeSynced(rf); err != nil {
		return nil, err
	}
	if err := syncFS(up.root); err != nil {
		return nil, err
	}
	up.fp = hex.EncodeToString(h.Sum(nil))
	up.size = mhr.n + rhr.n
	return up, nil
}

// failure classifies the outcome of reading an upload through h: what went
// wrong upstream of the unpacker comes first, as it is why the archive
// looked corrupt.
func (h *hashingReader) failure(err error) error {
	switch {
	case h.ctx.Err() != nil:
		return cancelled(h.ctx.Err())
	case h.rerr != nil:
		return fmt.Errorf("read upload: %w", h.rerr)
	case h.werr != nil:
		return fmt.Errorf("store upload: %w", h.werr)
	case h.over != nil:
		return h.over
	}
	return err
}

func closeSynced(f *os.File) error {
	if err := f.Sync(); err != nil {
		return fmt.Errorf("store upload: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store upload: %w", err)
	}
	return nil
}
