package image

import (
	"bytes"
	"context"
	"fmt"
	"github.com/hangar-dev/hangar/internal/auth"
	"io"
	"os"
)

// EventImageRetrieved is emitted when an image's files are exported.
const EventImageRetrieved = "image-retrieved"

// Export is an image's files as `lxc image export` receives them: the
// file as uploaded (a unified LXD image or a plain rootfs tarball), or a
// split image's metadata tarball and root filesystem. Their bytes hash to
// the fingerprint, metadata first.
type Export struct {
	Fingerprint string
	Meta        *os.File
	MetaName    string
	MetaSize    int64
	// Rootfs is nil unless the image is split.
	Rootfs     *os.File
	RootfsName string
	RootfsSize int64
}

// Close closes the export's files.
func (e *Export) Close() {
	e.Meta.Close()
	if e.Rootfs != nil {
		e.Rootfs.Close()
	}
}

// Export opens an image's files for download, named as LXD names them:
// <fp><ext> for one file; meta-<fp><ext> and <fp><ext> for a split image,
// each ext from the file's own compression. An image deleted while it is
// read stays readable to the end (the files are open).
func (s *Service) Export(ctx context.Context, fp string) (*Export, error) {
	rec, err := s.checked(ctx, fp, auth.CanView)
	if err != nil {
		return nil, err
	}
	fp = rec.Fingerprint
	e := &Export{Fingerprint: fp}
	e.Meta, e.MetaSize, err = openBlob(s.blobPath(fp))
	if err != nil {
		return nil, fmt.Errorf("export image %s: %w", fp, err)
	}
	ext, err := blobExtension(e.Meta)
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("export image %s: %w", fp, err)
	}
	e.MetaName = fp + ext
	if isSplitFormat(rec.Format) {
		e.Rootfs, e.RootfsSize, err = openBlob(s.splitRootfsPath(fp))
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("export image %s: %w", fp, err)
		}
		ext, err := blobExtension(e.Rootfs)
		if err != nil {
			e.Close()
			return nil, fmt.Errorf("export image %s: %w", fp, err)
		}
		if isDiskFormat(rec.Format) {
			ext = ".img" // LXD's rootfs.img
		}
		e.MetaName = "meta-" + e.MetaName
		e.RootfsName = fp + ext
	}
	s.em.Lifecycle(ctx, EventImageRetrieved, imageSource(ctx, fp), nil)
	return e, nil
}

func openBlob(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

// blobExtension names a stored file's kind as LXD's export does, from its
// first bytes; "" when it is none LXD names. f is left at its start.
func blobExtension(f *os.File) (string, error) {
	head := make([]byte, 512)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", err
	}
	head = head[:n]
	if bytes.HasPrefix(head, magicSquashfs) {
		return ".squashfs", nil
	}
	switch detectCompression(head) {
	case compressionGzip:
		return ".tar.gz", nil
	case compressionXz:
		return ".tar.xz", nil
	case compressionZstd:
		return ".tar.zst", nil
	case compressionBzip2:
		return ".tar.bz2", nil
	}
	if len(head) >= 262 && bytes.Equal(head[257:262], magicUstar) {
		return ".tar", nil
	}
	return "", nil
}
