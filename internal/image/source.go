package image

import (
	"context"
	"fmt"
	"io"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// A source is one image upload format: it turns the upload, exactly as
// received (compressed or not), into a root filesystem tree. The service
// owns everything around it: fingerprinting, temporary directories,
// atomic renames, records and events; a source only reads and unpacks.
//
// Today there is one, rootfsTarball. Later formats slot in beside it:
//   - an LXD image tarball (metadata.yaml + rootfs/ in one tarball, or a
//     split metadata/rootfs pair) extracts the rootfs/ prefix and reports
//     its metadata (architecture, creation date, properties);
//   - OCI and docker archives, and OCI registries, apply layers in order with
//     the unpacker in layer mode (whiteouts);
//
// which is why extract would then return metadata; a plain tarball has none
// beyond what the client sends.
type source interface {
	// extract unpacks the upload into root, an existing empty directory,
	// with opts (ownership shift). It reads the upload to its end, so the
	// caller fingerprints all of it, and returns errors as unpack does:
	// invalid-argument for anything wrong with the upload.
	extract(ctx context.Context, upload io.Reader, root string, opts unpackOptions) error
}

// Formats of stored blobs, as Record.Format names them.
const formatRootfsTarball = "rootfs-tarball"

// sourceFor returns the source that reads an image's blob again (to unpack
// a shifted tree), by the record's format.
func sourceFor(rec Record) (source, error) {
	switch rec.Format {
	case formatRootfsTarball, "":
		return rootfsTarball{}, nil
	case formatLXDUnified:
		return &imageTarball{unified: true}, nil
	case formatLXDSplit:
		return splitRootfs{}, nil
	case formatOCI:
		return ociImage{}, nil
	case formatDiskQcow2, formatDiskRaw, formatLXDSplitQcow2, formatLXDSplitRaw:
		return nil, errdefs.Invalid("image %s is a virtual-machine disk image: it has no root filesystem", rec.Fingerprint)
	}
	return nil, fmt.Errorf("image %s: unknown format %q", rec.Fingerprint, rec.Format)
}
