package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
)

// formatOCI is an image stored as OCI blobs: its own blob (named by its
// fingerprint) is the image manifest, which names a config blob and layer
// blobs stored beside it, each once however many images share it.
const formatOCI = "oci"

// Limits on the JSON documents read into memory; real ones are a few KiB.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 8 << 20
)

// Sources of OCI images, as Record.Source names them.
const (
	sourceRegistry = "registry"
	sourceArchive  = "archive"
)

// blobFetcher opens the blobs of one image where it comes from: a
// registry, or an unpacked archive.
type blobFetcher interface {
	open(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error)
}

// ResolvedImage is an OCI image chosen for this host, its manifest and
// config read and checked, its layers not yet fetched (ResolveRemote).
type ResolvedImage struct {
	ref      string // where it came from, for the record (never credentials)
	manifest []byte // exactly as served: its SHA-256 is the fingerprint
	digest   v1.Hash
	man      *v1.Manifest
	config   []byte
	cfg      *v1.ConfigFile
	arch     string // LXD name
	fetch    blobFetcher
	source   string
}

// Fingerprint is the image's fingerprint: the hex SHA-256 of its manifest.
func (ri *ResolvedImage) Fingerprint() string { return ri.digest.Hex }

// Reference is where the image comes from ("index.docker.io/library/alpine:3.20").
func (ri *ResolvedImage) Reference() string { return ri.ref }

// StoreOptions say what to record beside an OCI image.
type StoreOptions struct {
	// Alias, when set, is created for the image (or kept, when it already
	// names it).
	Alias  string
	Public bool
	// Progress, when set, receives progress reports while the caller waits.
	Progress func(Progress)
	// Cached marks an image fetched only to create an instance from it, as
	// LXD's cached images: PruneCached removes it once unused for the
	// server's images.remote_cache_expiry. An explicit pull (not Cached)
	// of a cached image makes it a kept one.
	Cached bool
}

// hostPlatform is the OCI platform whose images this host runs.
func hostPlatform() v1.Platform {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
	}
	return p
}

func platformString(p *v1.Platform) string {
	if p == nil {
		return "unknown"
	}
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pickManifest chooses the manifest for this host from an index: linux and
// the host's architecture (variant preferred when the index gives one).
func pickManifest(idx *v1.IndexManifest, what string) (v1.Descriptor, error) {
	host := hostPlatform()
	var avail []string
	var match *v1.Descriptor
	for i := range idx.Manifests {
		d := &idx.Manifests[i]
		if d.Platform == nil || d.Platform.OS == "unknown" {
			continue // Attestations and other artifacts.
		}
		avail = append(avail, platformString(d.Platform))
		if d.Platform.OS != host.OS || d.Platform.Architecture != host.Architecture {
			continue
		}
		if match == nil || (host.Variant != "" && d.Platform.Variant == host.Variant) {
			match = d
		}
	}
	if match == nil {
		sort.Strings(avail)
		avail = slices.Compact(avail)
		if len(avail) == 0 {
			avail = []string{"none"}
		}
		return v1.Descriptor{}, errdefs.Invalid("%s has no image for this host (%s); available: %s", what, platformString(&host), strings.Join(avail, ", "))
	}
	return *match, nil
}

// parseManifest checks an image manifest and the layers it names.
func parseManifest(raw []byte, what string) (*v1.Manifest, error) {
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errdefs.Invalid("%s: invalid image manifest: %v", what, err)
	}
	if m.SchemaVersion != 2 {
		return nil, errdefs.Invalid("%s: unsupported manifest schema version %d", what, m.SchemaVersion)
	}
	if m.Config.Digest.Algorithm != "sha256" || len(m.Config.Digest.Hex) != 64 {
		return nil, errdefs.Invalid("%s: config digest %q is not sha256", what, m.Config.Digest)
	}
	if m.Config.Size <= 0 || m.Config.Size > maxConfigSize {
		return nil, errdefs.Invalid("%s: config of %d bytes", what, m.Config.Size)
	}
	for _, l := range m.Layers {
		if l.Digest.Algorithm != "sha256" || len(l.Digest.Hex) != 64 || !isHexPrefix(l.Digest.Hex) {
			return nil, errdefs.Invalid("%s: layer digest %q is not sha256", what, l.Digest)
		}
		if l.Size < 0 {
			return nil, errdefs.Invalid("%s: layer %s has a negative size", what, l.Digest)
		}
		switch l.MediaType {
		case types.OCILayer, types.OCIUncompressedLayer, types.DockerLayer, types.DockerUncompressedLayer, types.OCILayerZStd, "":
		case types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer, types.DockerForeignLayer:
			return nil, errdefs.Invalid("%s: layer %s is non-distributable (%s); such images are not supported", what, l.Digest, l.MediaType)
		default:
			return nil, errdefs.Invalid("%s: layer %s has unsupported media type %q", what, l.Digest, l.MediaType)
		}
	}
	return &m, nil
}

// checkConfig parses an image config and checks that this host runs it,
// returning the architecture's LXD name.
func checkConfig(raw []byte, what string) (*v1.ConfigFile, string, error) {
	var cfg v1.ConfigFile
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, "", errdefs.Invalid("%s: invalid image config: %v", what, err)
	}
	host := hostPlatform()
	if cfg.OS != "" && cfg.OS != host.OS {
		return nil, "", errdefs.Invalid("%s is a %s image; this host runs %s images only", what, cfg.OS, host.OS)
	}
	if cfg.Architecture != "" && cfg.Architecture != host.Architecture {
		return nil, "", errdefs.Invalid("%s is for %s and cannot run on this %s host; available: %s/%s", what, cfg.Architecture, host.Architecture, cfg.OS, cfg.Architecture)
	}
	arch, err := normalizeArchitecture(host.Architecture)
	if err != nil {
		return nil, "", err
	}
	return &cfg, arch, nil
}

// verifyBytes checks a small blob read into memory against its digest.
func verifyBytes(b []byte, d v1.Descriptor, what string) error {
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != d.Digest.Hex {
		return errdefs.Invalid("%s %s does not match its digest", what, d.Digest)
	}
	if d.Size > 0 && int64(len(b)) != d.Size {
		return errdefs.Invalid("%s %s is %d bytes, not %d", what, d.Digest, len(b), d.Size)
	}
	return nil
}

// readBlob reads a small blob (a config) through a fetcher and verifies it.
func readBlob(ctx context.Context, f blobFetcher, d v1.Descriptor, limit int64, what string) ([]byte, error) {
	rc, err := f.open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, cancelled(ctx.Err())
		}
		return nil, fmt.Errorf("read %s %s: %w", what, d.Digest, err)
	}
	if int64(len(b)) > limit {
		return nil, errdefs.Invalid("%s %s is larger than %d bytes", what, d.Digest, limit)
	}
	return b, verifyBytes(b, d, what)
}

// ociState is the image service's state for OCI work.
type ociState struct {
	pulls callGroup // by manifest digest
	blobs callGroup // by blob digest

	mu    sync.Mutex
	holds map[string]int // blobs pulls in progress rely on, by hex digest
}

func (o *ociState) hold(hexes []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.holds == nil {
		o.holds = map[string]int{}
	}
	for _, h := range hexes {
		o.holds[h]++
	}
}

func (o *ociState) release(hexes []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, h := range hexes {
		if o.holds[h]--; o.holds[h] <= 0 {
			delete(o.holds, h)
		}
	}
}

func (o *ociState) held(h string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.holds[h] > 0
}

// storeOCI stores a resolved image: the blobs it lacks are fetched and
// verified, the layers applied into a new tree, and the image recorded.
// Concurrent calls for one image share one download; an image already
// stored is returned as it is (with opts.Alias added). On failure or
// cancellation nothing new is left: no record, no tree, and no blob that
// no image or running pull uses.
func (s *Service) storeOCI(ctx context.Context, ri *ResolvedImage, opts StoreOptions) (api.Image, error) {
	if opts.Alias != "" {
		if err := validAliasName(opts.Alias); err != nil {
			return api.Image{}, err
		}
		if err := s.aliasFreeFor(ctx, opts.Alias, ri.Fingerprint()); err != nil {
			return api.Image{}, err
		}
	}
	fp := ri.Fingerprint()
	fetched := false
	// Stored for any project, it is not fetched again: this one holds it
	// too (ensureHeld).
	if _, err := s.db.GetImage(ctx, "", fp); errors.Is(err, errdefs.ErrNotFound) {
		_, err = s.oci.pulls.do(ctx, fp, opts.Progress, func(ctx context.Context, c *call) error {
			return s.fetchAndCommit(ctx, ri, c.report)
		})
		if err != nil {
			return api.Image{}, err
		}
		fetched = true
	} else if err != nil {
		return api.Image{}, err
	}
	if err := s.ensureHeld(ctx, fp); err != nil {
		return api.Image{}, err
	}
	if err := s.setCached(ctx, fp, fetched, opts.Cached); err != nil {
		return api.Image{}, err
	}
	if opts.Alias != "" {
		if err := s.ensureAlias(ctx, opts.Alias, fp); err != nil {
			return api.Image{}, err
		}
	}
	return s.Get(ctx, fp)
}

// setCached records whether an image is a cached copy: one this store
// fetched (fetched) for an instance (cached) stays cached until someone
// pulls it on purpose.
func (s *Service) setCached(ctx context.Context, fp string, fetched, cached bool) error {
	rec, err := s.db.GetImage(ctx, "", fp)
	if err != nil {
		return err
	}
	want := cached && (fetched || rec.Cached)
	if rec.Cached == want {
		return nil
	}
	rec.Cached = want
	if err := s.db.UpdateImage(ctx, rec); err != nil {
		return fmt.Errorf("record image %s as cached=%v: %w", fp, want, err)
	}
	return nil
}

// aliasFreeFor checks that the scope project's alias is free or already
// names fp.
func (s *Service) aliasFreeFor(ctx context.Context, name, fp string) error {
	a, err := s.db.GetAlias(ctx, scope(ctx), name)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return nil
	case err != nil:
		return err
	case a.Target == fp:
		return nil
	}
	return errdefs.Conflict("alias %q already exists", name)
}

func (s *Service) ensureAlias(ctx context.Context, name, fp string) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if err := s.aliasFreeFor(ctx, name, fp); err != nil {
		return err
	}
	if _, err := s.db.GetAlias(ctx, scope(ctx), name); err == nil {
		return nil
	}
	if err := s.db.CreateAlias(ctx, AliasRecord{Project: scope(ctx), Name: name, Target: fp, Type: typeContainer}); err != nil {
		return fmt.Errorf("create alias %q: %w", name, err)
	}
	s.em.Lifecycle(ctx, EventImageAliasCreated, aliasSource(ctx, name), map[string]any{"target": fp})
	return nil
}

// fetchAndCommit is one pull's work, run once per image however many wait.
func (s *Service) fetchAndCommit(ctx context.Context, ri *ResolvedImage, report func(Progress)) (err error) {
	fp := ri.Fingerprint()
	man := ri.man
	hexes := []string{fp, man.Config.Digest.Hex}
	var total int64
	for _, l := range man.Layers {
		hexes = append(hexes, l.Digest.Hex)
		total += l.Size
	}
	// Layers whose compressed sizes alone pass the cap expand beyond it
	// (compressing real data never grows it by more than a fraction of a
	// percent): refused before anything is fetched.
	bound, err := s.newCap()
	if err != nil {
		return err
	}
	if total > bound.limit || total < 0 {
		return bound.exceeded()
	}
	for _, l := range man.Layers {
		// fetchBlob bounds a download by its descriptor's size; a layer
		// without one (never a real layer: an empty tar is 1 KiB) could
		// stream without end.
		if l.Size <= 0 {
			return errdefs.Invalid("image %s: layer %s has no size in its manifest", fp, l.Digest)
		}
	}
	s.oci.hold(hexes)
	var written []string // blobs this pull created
	var wmu sync.Mutex
	tree := ""
	defer func() {
		s.oci.release(hexes)
		if err != nil {
			if tree != "" {
				os.RemoveAll(tree)
			}
			wmu.Lock()
			s.collectBlobs(context.WithoutCancel(ctx), written)
			wmu.Unlock()
		}
	}()

	// Layers first, a few at a time; the rest of the pull needs them all.
	var done atomic.Int64
	report(Progress{Stage: "download", Total: total})
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, l := range man.Layers {
		g.Go(func() error {
			created, err := s.ensureBlob(gctx, ri.fetch, l, func(n int64) {
				report(Progress{Stage: "download", Done: done.Add(n), Total: total})
			})
			if created {
				wmu.Lock()
				written = append(written, l.Digest.Hex)
				wmu.Unlock()
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		if ctx.Err() != nil {
			return cancelled(ctx.Err())
		}
		return err
	}
	for _, b := range []struct {
		data []byte
		hex  string
	}{{ri.config, man.Config.Digest.Hex}, {ri.manifest, fp}} {
		created, err := s.putBlob(b.hex, b.data)
		if created {
			written = append(written, b.hex)
		}
		if err != nil {
			return err
		}
	}

	tree, err = os.MkdirTemp(s.rootfsDir, ".tmp-oci-")
	if err != nil {
		return fmt.Errorf("unpack image %s: %w", fp, err)
	}
	var unpacked int64
	err = applyLayers(ctx, man, tree, unpackOptions{log: s.log, blobs: s.blobDir, size: bound}, func(n int64) {
		unpacked += n
		report(Progress{Stage: "unpack", Done: unpacked, Total: total})
	})
	if err != nil {
		return err
	}
	if err := syncFS(tree); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return cancelled(ctx.Err())
	}

	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if _, err := s.db.GetImage(ctx, "", fp); err == nil {
		os.RemoveAll(tree) // Stored meanwhile by an import of the same image.
		tree = ""
		return nil
	}
	final := s.treePath(fp)
	if err := s.removeTrees(fp); err != nil {
		return err
	}
	if err := os.Rename(tree, final); err != nil {
		return fmt.Errorf("store image %s: %w", fp, err)
	}
	tree = final
	if err := syncDir(s.rootfsDir); err != nil {
		return err
	}
	size := int64(len(ri.manifest) + len(ri.config))
	for _, l := range man.Layers {
		size += l.Size
	}
	now := s.now()
	props := map[string]string{"architecture": ri.arch, "description": ri.ref}
	if ri.cfg.OS != "" {
		props["oci.os"] = ri.cfg.OS
	}
	if ri.ref != "" {
		props["oci.reference"] = ri.ref
	}
	rec := Record{
		Fingerprint:  fp,
		Size:         size,
		Architecture: ri.arch,
		Type:         typeContainer,
		Properties:   props,
		CreatedAt:    now,
		UploadedAt:   now,
		Source:       ri.source,
		Format:       formatOCI,
	}
	if !ri.cfg.Created.IsZero() {
		rec.CreatedAt = ri.cfg.Created.UTC()
	}
	fillProperties(&rec, tree)
	// The project of the pull that fetched it; the others waiting on this
	// fetch are added by their storeOCI (ensureHeld).
	if err := s.db.CreateImage(ctx, rec, scope(ctx)); err != nil {
		return fmt.Errorf("record image: %w", err)
	}
	tree = "" // Committed.
	s.log.Info("OCI image stored", "fingerprint", fp, "reference", ri.ref, "layers", len(man.Layers), "size", size)
	s.em.Lifecycle(ctx, EventImageCreated, imageSource(ctx, fp), map[string]any{"type": typeContainer})
	return nil
}

// removeTrees removes what a crash left of an image's trees (never the
// blob: it is shared). The caller holds commitMu and the image has no record.
func (s *Service) removeTrees(fp string) error {
	entries, err := os.ReadDir(s.rootfsDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		// <fp>@* are shifted trees of versions before storage pools
		// (removeFiles).
		if e.Name() == fp || strings.HasPrefix(e.Name(), fp+"@") {
			trash := filepath.Join(s.rootfsDir, ".trash-"+randomSuffix())
			if err := os.Rename(filepath.Join(s.rootfsDir, e.Name()), trash); err != nil {
				return err
			}
			if err := os.RemoveAll(trash); err != nil {
				return err
			}
		}
	}
	return nil
}

// ensureBlob makes the blob d present in the store: fetched, verified,
// synced and renamed into place, unless it already is (a layer shared with
// another image is not fetched again). created reports whether this call
// stored it.
func (s *Service) ensureBlob(ctx context.Context, f blobFetcher, d v1.Descriptor, onBytes func(int64)) (created bool, err error) {
	final := s.blobPath(d.Digest.Hex)
	if fileExists(final) {
		onBytes(d.Size)
		return false, nil
	}
	shared, err := s.oci.blobs.do(ctx, d.Digest.Hex, nil, func(ctx context.Context, _ *call) error {
		if fileExists(final) {
			return nil
		}
		return s.fetchBlob(ctx, f, d, final, onBytes)
	})
	if shared && err == nil {
		onBytes(d.Size)
	}
	return !shared && err == nil, err
}

func fileExists(p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.Mode().IsRegular()
}

// fetchBlob streams one blob to a temporary file, hashing it as it goes,
// and renames it into place only when its digest and size match.
func (s *Service) fetchBlob(ctx context.Context, f blobFetcher, d v1.Descriptor, final string, onBytes func(int64)) error {
	rc, err := f.open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(s.blobDir, ".tmp-blob-*")
	if err != nil {
		return fmt.Errorf("store blob: %w", err)
	}
	defer tmp.Close()
	r := revert.New()
	defer r.Fail()
	r.Add(func() { os.Remove(tmp.Name()) })
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return cancelled(err)
		}
		nr, rerr := rc.Read(buf)
		if nr > 0 {
			n += int64(nr)
			if d.Size > 0 && n > d.Size {
				return errdefs.Invalid("blob %s is larger than the %d bytes its descriptor says", d.Digest, d.Size)
			}
			h.Write(buf[:nr])
			if _, err := tmp.Write(buf[:nr]); err != nil {
				return fmt.Errorf("store blob %s: %w", d.Digest, err)
			}
			onBytes(int64(nr))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return cancelled(ctx.Err())
			}
			return blobReadError(d, rerr)
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
		return errdefs.Invalid("blob %s does not match its digest (got sha256:%s); nothing was stored", d.Digest, got)
	}
	if d.Size > 0 && n != d.Size {
		return errdefs.Invalid("blob %s is %d bytes, not the %d its descriptor says", d.Digest, n, d.Size)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("store blob %s: %w", d.Digest, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store blob %s: %w", d.Digest, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("store blob %s: %w", d.Digest, err)
	}
	r.Success()
	return syncDir(s.blobDir)
}

// putBlob stores a small blob already verified in memory.
func (s *Service) putBlob(hexDigest string, data []byte) (created bool, err error) {
	final := s.blobPath(hexDigest)
	if fileExists(final) {
		return false, nil
	}
	tmp, err := os.CreateTemp(s.blobDir, ".tmp-blob-*")
	if err != nil {
		return false, fmt.Errorf("store blob: %w", err)
	}
	defer func() {
		tmp.Close()
		if !created {
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return false, fmt.Errorf("store blob: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return false, fmt.Errorf("store blob: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return false, fmt.Errorf("store blob: %w", err)
	}
	return true, syncDir(s.blobDir)
}

// applyLayers unpacks an image's layers, from the blob store, in order
// into root. onBytes counts compressed bytes read.
func applyLayers(ctx context.Context, man *v1.Manifest, root string, opts unpackOptions, onBytes func(int64)) error {
	for i, l := range man.Layers {
		if err := applyLayer(ctx, filepath.Join(opts.blobs, l.Digest.Hex), root, i == 0, opts, onBytes); err != nil {
			return fmt.Errorf("layer %d (%s): %w", i+1, l.Digest, err)
		}
	}
	return nil
}

func applyLayer(ctx context.Context, blob, root string, first bool, opts unpackOptions, onBytes func(int64)) error {
	f, err := os.Open(blob)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if onBytes != nil {
		r = &byteCounter{r: f, on: onBytes}
	}
	dr, release, _, err := decompress(r, opts.size)
	if err != nil {
		return err
	}
	defer release()
	// Every layer applies over what is there; the first finds an empty
	// root, which looks like a root until a layer says otherwise.
	opts.layer = true
	if first {
		if err := resetRoot(root, opts); err != nil {
			return err
		}
	}
	if _, err := unpack(ctx, dr, root, opts); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, dr); err != nil {
		if ctx.Err() != nil {
			return cancelled(ctx.Err())
		}
		if tl := asTooLarge(err); tl != nil {
			return tl
		}
		return errdefs.Invalid("corrupt layer: %v", err)
	}
	return nil
}

// resetRoot gives an empty tree's root the owner and mode a plain archive
// would (layer mode leaves the root alone).
func resetRoot(root string, opts unpackOptions) error {
	uid, gid := 0, 0
	if opts.shift != nil {
		uid, gid = int(opts.shift.HostID), int(opts.shift.HostID)
	}
	if err := os.Lchown(root, uid, gid); err != nil {
		return err
	}
	return os.Chmod(root, 0o755)
}

type byteCounter struct {
	r  io.Reader
	on func(int64)
}

func (c *byteCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.on(int64(n))
	}
	return n, err
}

// collectBlobs removes the candidate blobs that no image record and no
// pull in progress uses. The manifest of every OCI image is read to know
// what it references.
func (s *Service) collectBlobs(ctx context.Context, candidates []string) {
	if len(candidates) == 0 {
		return
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.collectBlobsLocked(ctx, candidates)
}

func (s *Service) collectBlobsLocked(ctx context.Context, candidates []string) {
	recs, err := s.db.ListImages(ctx, "") // Every project's images use blobs.
	if err != nil {
		s.log.Warn("cannot list images to collect blobs", "error", err)
		return
	}
	used := map[string]bool{}
	for _, r := range recs {
		used[r.Fingerprint] = true
		if r.Format != formatOCI {
			continue
		}
		m, err := s.storedManifest(r.Fingerprint)
		if err != nil {
			s.log.Warn("cannot read image manifest; keeping all blobs", "fingerprint", r.Fingerprint, "error", err)
			return
		}
		used[m.Config.Digest.Hex] = true
		for _, l := range m.Layers {
			used[l.Digest.Hex] = true
		}
	}
	for _, h := range candidates {
		if used[h] || s.oci.held(h) {
			continue
		}
		if err := os.Remove(s.blobPath(h)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("cannot remove unused blob", "digest", h, "error", err)
		}
	}
}

// storedManifest reads an OCI image's manifest from the blob store.
func (s *Service) storedManifest(fp string) (*v1.Manifest, error) {
	b, err := os.ReadFile(s.blobPath(fp))
	if err != nil {
		return nil, err
	}
	return parseManifest(b, "image "+fp)
}

// ociBlobsOf lists the config and layer blobs of a deleted OCI image, for
// collection once its record is gone.
func (s *Service) ociBlobsOf(fp string) []string {
	m, err := s.storedManifest(fp)
	if err != nil {
		return nil
	}
	out := []string{m.Config.Digest.Hex}
	for _, l := range m.Layers {
		out = append(out, l.Digest.Hex)
	}
	return out
}

// RuntimeConfig is what an OCI image's config says about running it.
type RuntimeConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	// User is the image's user as written ("", "1000", "app:staff", ...).
	User string
	// UID and GID are User resolved through the image's /etc/passwd and
	// /etc/group.
	UID, GID     uint32
	StopSignal   string
	ExposedPorts []string
	Labels       map[string]string
}

// RuntimeConfig returns an OCI image's run defaults; nil (and no error) for
// images of other formats, which carry none.
func (s *Service) RuntimeConfig(ctx context.Context, fp string) (*RuntimeConfig, error) {
	rec, err := s.stored(ctx, fp) // Resolved in its project by the caller.
	if err != nil {
		return nil, err
	}
	if rec.Format != formatOCI {
		return nil, nil
	}
	m, err := s.storedManifest(rec.Fingerprint)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", rec.Fingerprint, err)
	}
	raw, err := os.ReadFile(s.blobPath(m.Config.Digest.Hex))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", rec.Fingerprint, err)
	}
	var cf v1.ConfigFile
	if err := json.Unmarshal(raw, &cf); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", rec.Fingerprint, err)
	}
	c := cf.Config
	rc := &RuntimeConfig{
		Entrypoint: slices.Clone(c.Entrypoint),
		Cmd:        slices.Clone(c.Cmd),
		Env:        slices.Clone(c.Env),
		WorkingDir: c.WorkingDir,
		User:       c.User,
		StopSignal: c.StopSignal,
		Labels:     maps.Clone(c.Labels),
	}
	for p := range c.ExposedPorts {
		rc.ExposedPorts = append(rc.ExposedPorts, p)
	}
	sort.Strings(rc.ExposedPorts)
	if c.User != "" {
		root, err := s.RootFS(ctx, rec.Fingerprint)
		if err != nil {
			return nil, err
		}
		if rc.UID, rc.GID, err = resolveUser(root, c.User); err != nil {
			return nil, errdefs.Invalid("image %s: user %q: %v", rec.Fingerprint[:12], c.User, err)
		}
	}
	return rc, nil
}
