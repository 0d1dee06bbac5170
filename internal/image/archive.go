package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/fsroot"
)

// Image archives an upload may be instead of a root filesystem. Import
// unpacks every upload as a tarball first, so an archive arrives here as a
// directory: the OCI image layout (oci-layout, index.json, blobs/) or what
// `docker save` wrote (manifest.json, a config and layer tarballs; newer
// Docker writes an OCI layout beside it, which is then preferred).
const (
	archiveOCI    = "oci-archive"
	archiveDocker = "docker-archive"
)

// archiveKind tells whether an unpacked upload is an image archive.
func archiveKind(root string) string {
	has := func(name string) bool {
		st, err := os.Lstat(root + "/" + name)
		return err == nil && st.Mode().IsRegular()
	}
	switch {
	case has("oci-layout") && has("index.json"):
		return archiveOCI
	case has("manifest.json") && !isDir(root+"/etc"):
		return archiveDocker
	}
	return ""
}

// importArchive stores the image an unpacked archive holds, as an OCI
// image (its fingerprint the manifest's digest, as for a pull).
func (s *Service) importArchive(ctx context.Context, root, kind string, meta ImportMeta) (api.Image, error) {
	var ri *ResolvedImage
	var err error
	switch kind {
	case archiveOCI:
		ri, err = resolveLayout(ctx, root)
	default:
		ri, err = resolveDockerArchive(ctx, root)
	}
	if err != nil {
		return api.Image{}, err
	}
	if meta.Filename != "" && ri.ref == "" {
		ri.ref = meta.Filename
	}
	img, err := s.storeOCI(ctx, ri, StoreOptions{Alias: meta.Alias, Public: meta.Public})
	if err != nil {
		return api.Image{}, err
	}
	return img, nil
}

// dirFetcher reads blobs from files of an unpacked archive.
type dirFetcher struct {
	root  string
	paths map[string]string // digest → path in root; nil: blobs/<alg>/<hex>
}

func (f dirFetcher) open(_ context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	p, ok := f.paths[d.Digest.String()]
	if f.paths == nil {
		p, ok = "blobs/"+d.Digest.Algorithm+"/"+d.Digest.Hex, true
	}
	if !ok {
		return nil, errdefs.Invalid("archive: no file for blob %s", d.Digest)
	}
	return openInRoot(f.root, p)
}

// openInRoot opens a regular file of the tree; symlinks resolve inside it,
// so an archive cannot make the daemon read host files.
func openInRoot(root, rel string) (*os.File, error) {
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := fsroot.Openat2(dfd, rel, &how)
	if err != nil {
		return nil, errdefs.Invalid("archive: %s: %v", rel, err)
	}
	f := os.NewFile(uintptr(fd), rel)
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, errdefs.Invalid("archive: %s is not a regular file", rel)
	}
	return f, nil
}

func readSmall(root, rel string, limit int64) ([]byte, error) {
	f, err := openInRoot(root, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errdefs.Invalid("archive: %s is larger than %d bytes", rel, limit)
	}
	return b, nil
}

// resolveLayout picks this host's image from an OCI layout.
func resolveLayout(ctx context.Context, root string) (*ResolvedImage, error) {
	f := dirFetcher{root: root}
	raw, err := readSmall(root, "index.json", maxManifestSize)
	if err != nil {
		return nil, err
	}
	ref := ""
	for depth := 0; ; depth++ {
		var idx v1.IndexManifest
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, errdefs.Invalid("archive: invalid index: %v", err)
		}
		if len(idx.Manifests) == 0 {
			return nil, errdefs.Invalid("archive: the index lists no image")
		}
		d := idx.Manifests[0]
		if len(idx.Manifests) > 1 {
			if d, err = pickManifest(&idx, "archive"); err != nil {
				return nil, err
			}
		}
		if r := d.Annotations["org.opencontainers.image.ref.name"]; r != "" && ref == "" {
			ref = r
		}
		if raw, err = readBlob(ctx, f, d, maxManifestSize, "manifest"); err != nil {
			return nil, err
		}
		if d.MediaType.IsIndex() && depth < 2 {
			continue
		}
		if !d.MediaType.IsImage() && d.MediaType != "" {
			return nil, errdefs.Invalid("archive: %s is not an image manifest", d.MediaType)
		}
		return resolveManifest(ctx, raw, d.Digest, f, ref, "archive")
	}
}

// resolveManifest reads and checks the config of a manifest.
func resolveManifest(ctx context.Context, raw []byte, digest v1.Hash, f blobFetcher, ref, what string) (*ResolvedImage, error) {
	man, err := parseManifest(raw, what)
	if err != nil {
		return nil, err
	}
	config, err := readBlob(ctx, f, man.Config, maxConfigSize, "config")
	if err != nil {
		return nil, err
	}
	cfg, arch, err := checkConfig(config, what)
	if err != nil {
		return nil, err
	}
	return &ResolvedImage{ref: ref, manifest: raw, digest: digest, man: man, config: config, cfg: cfg, arch: arch, fetch: f, source: sourceArchive}, nil
}

// dockerManifest is one entry of a `docker save` manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// resolveDockerArchive builds an image manifest for the first image of a
// `docker save` archive: its layer files, as they are (usually plain
// tars), become the layer blobs.
func resolveDockerArchive(ctx context.Context, root string) (*ResolvedImage, error) {
	raw, err := readSmall(root, "manifest.json", maxManifestSize)
	if err != nil {
		return nil, err
	}
	var entries []dockerManifest
	if err := json.Unmarshal(raw, &entries); err != nil || len(entries) == 0 {
		return nil, errdefs.Invalid("archive: manifest.json is not a docker-archive manifest")
	}
	e := entries[0]
	clean := func(p string) (string, error) {
		c := path.Clean(strings.TrimPrefix(p, "/"))
		if c == "." || c == ".." || strings.HasPrefix(c, "../") {
			return "", errdefs.Invalid("archive: bad path %q in manifest.json", p)
		}
		return c, nil
	}
	f := dirFetcher{root: root, paths: map[string]string{}}
	describe := func(p string, layer bool) (v1.Descriptor, error) {
		c, err := clean(p)
		if err != nil {
			return v1.Descriptor{}, err
		}
		fh, err := openInRoot(root, c)
		if err != nil {
			return v1.Descriptor{}, err
		}
		defer fh.Close()
		h := sha256.New()
		head := make([]byte, 512)
		n, _ := io.ReadFull(fh, head)
		h.Write(head[:n])
		rest, err := io.Copy(h, fh)
		if err != nil {
			if ctx.Err() != nil {
				return v1.Descriptor{}, cancelled(ctx.Err())
			}
			return v1.Descriptor{}, fmt.Errorf("archive: read %s: %w", c, err)
		}
		d := v1.Descriptor{Size: int64(n) + rest, Digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, MediaType: types.DockerConfigJSON}
		if layer {
			switch detectCompression(head[:n]) {
			case compressionGzip:
				d.MediaType = types.DockerLayer
			case compressionZstd:
				d.MediaType = types.OCILayerZStd
			case compressionNone:
				d.MediaType = types.DockerUncompressedLayer
			default:
				return v1.Descriptor{}, errdefs.Invalid("archive: layer %s has an unsupported compression", c)
			}
		}
		f.paths[d.Digest.String()] = c
		return d, nil
	}
	man := v1.Manifest{SchemaVersion: 2, MediaType: types.DockerManifestSchema2}
	if man.Config, err = describe(e.Config, false); err != nil {
		return nil, err
	}
	for _, l := range e.Layers {
		d, err := describe(l, true)
		if err != nil {
			return nil, err
		}
		man.Layers = append(man.Layers, d)
	}
	mraw, err := json.Marshal(man)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(mraw)
	ref := ""
	if len(e.RepoTags) > 0 {
		ref = e.RepoTags[0]
	}
	return resolveManifest(ctx, mraw, v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}, f, ref, "archive")
}
