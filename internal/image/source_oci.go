package image

import (
	"context"
	"io"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// ociImage is an image stored as OCI blobs. Its upload, as the store keeps
// it, is the image manifest; the layers it names are read from the blob
// store (opts.blobs) and applied in order, whiteouts included. This is how
// shifted trees of an OCI image are built: from the stored blobs, never
// fetched again.
type ociImage struct{}

func (ociImage) extract(ctx context.Context, upload io.Reader, root string, opts unpackOptions) error {
	if opts.blobs == "" {
		return errdefs.Invalid("OCI image: no blob store to read layers from")
	}
	raw, err := io.ReadAll(io.LimitReader(upload, maxManifestSize+1))
	if err != nil {
		return err
	}
	if len(raw) > maxManifestSize {
		return errdefs.Invalid("OCI image manifest larger than %d bytes", maxManifestSize)
	}
	man, err := parseManifest(raw, "stored image")
	if err != nil {
		return err
	}
	return applyLayers(ctx, man, root, opts, nil)
}
