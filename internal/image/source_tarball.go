package image

import (
	"context"
	"io"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// rootfsTarball is a plain root filesystem tarball, as `podman import` and
// `lxc image import` of a single rootfs take: the archive's root is the
// instance's root. It may be compressed with gzip, xz, zstd or bzip2.
type rootfsTarball struct{}

func (rootfsTarball) extract(ctx context.Context, upload io.Reader, root string, opts unpackOptions) error {
	r, release, _, err := decompress(upload, opts.size)
	if err != nil {
		return err
	}
	defer release()
	n, err := unpack(ctx, r, root, opts)
	if err != nil {
		return err
	}
	if n == 0 {
		return errdefs.Invalid("not a root filesystem tarball: the archive holds no files")
	}
	// Read to the end: a compressed stream's checksum follows the tar's
	// end-of-archive blocks, and all of the upload is fingerprinted.
	return drain(ctx, r)
}
