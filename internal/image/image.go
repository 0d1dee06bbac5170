package image

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/hangar-dev/hangar/internal/auth"
	"hash"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
)

// Record is an image as persisted.
type Record struct {
	Fingerprint  string
	Filename     string
	Size         int64
	Architecture string
	Type         string
	Properties   map[string]string
	Public       bool
	AutoUpdate   bool
	Cached       bool
	CreatedAt    time.Time
	UploadedAt   time.Time
	LastUsedAt   time.Time
	ExpiresAt    time.Time
	Source       string
	// Format names the blob's layout, hence the source that unpacks it
	// (formatRootfsTarball, ...).
	Format string
	// Projects hold the image (read only: the DB's membership methods
	// change them). The record itself, with Public, AutoUpdate and
	// Properties, is one for all of them.
	Projects []string
}

// AliasRecord is an image alias as persisted. Target is a full fingerprint.
type AliasRecord struct {
	// Project has the alias: aliases are per project.
	Project     string
	Name        string
	Description string
	Target      string
	Type        string
}

// DB is what the service needs from persistence.
//
// An image is stored once (one record, one set of files) and held by
// projects; aliases belong to one project each.
//
// Contract: GetImage takes a full fingerprint or a prefix of one (lower-case
// hex) and returns an error of kind errdefs.ErrNotFound when no image the
// project holds matches (project "": any project; any error when several
// match); GetAlias likewise for a missing alias. ListImages and ListAliases
// take "" for all projects. CreateImage (which makes project hold the new
// image), AddImageProject and CreateAlias return errdefs.ErrConflict for an
// existing key, RenameAlias for an existing new name. UpdateImage,
// UpdateAlias, RenameAlias, RemoveImageProject, DeleteImage and
// DeleteAlias return errdefs.ErrNotFound for a missing key.
// RemoveImageProject removes the project's aliases of the image with it;
// DeleteImage removes the image from every project, with all its aliases.
type DB interface {
	CreateImage(ctx context.Context, rec Record, project string) error
	AddImageProject(ctx context.Context, fp, project string) error
	RemoveImageProject(ctx context.Context, fp, project string) error
	GetImage(ctx context.Context, project, fpOrPrefix string) (Record, error)
	ListImages(ctx context.Context, project string) ([]Record, error)
	UpdateImage(ctx context.Context, rec Record) error
	DeleteImage(ctx context.Context, fp string) error

	CreateAlias(ctx context.Context, rec AliasRecord) error
	GetAlias(ctx context.Context, project, name string) (AliasRecord, error)
	ListAliases(ctx context.Context, project string) ([]AliasRecord, error)
	UpdateAlias(ctx context.Context, rec AliasRecord) error
	RenameAlias(ctx context.Context, project, oldName, newName string) error
	DeleteAlias(ctx context.Context, project, name string) error
}

// Emitter receives lifecycle events.
type Emitter interface {
	Lifecycle(ctx context.Context, action string, e event.Entity, meta map[string]any)
}

// Lifecycle actions emitted by the service.
const (
	EventImageCreated      = "image-created"
	EventImageDeleted      = "image-deleted"
	EventImageUpdated      = "image-updated"
	EventImageAliasCreated = "image-alias-created"
	EventImageAliasDeleted = "image-alias-deleted"
	EventImageAliasRenamed = "image-alias-renamed"
	EventImageAliasUpdated = "image-alias-updated"
)

// ImportMeta is what the client says about an upload.
type ImportMeta struct {
	// Alias, when set, is created for the image.
	Alias        string
	OS           string
	Release      string
	Architecture string // LXD name or a common alias (amd64); "" is the host's
	Description  string
	Properties   map[string]string
	Public       bool
	// Filename is the upload's file name as the client gave it, if any.
	Filename string
	// Fingerprint, when set, is the fingerprint the client expects
	// (X-LXD-fingerprint); an upload that hashes otherwise is refused.
	Fingerprint string
	// Rootfs, when set, makes the upload a split LXD image: the reader
	// given to Import is its metadata tarball, read to its end before
	// Rootfs is called for the root filesystem (tarball or squashfs).
	Rootfs func() (io.Reader, error)
}

const (
	typeContainer = "container"
	sourceFile    = "file"
)

// Service manages the image store. Its methods are safe for concurrent use.
type Service struct {
	dir       string
	blobDir   string
	rootfsDir string
	db        DB
	em        Emitter
	log       *slog.Logger
	now       func() time.Time

	// commitMu serialises what makes an image appear or disappear: an
	// import's existence check, renames and records, and a delete.
	commitMu sync.Mutex
	// treeMu is held shared while a tree is unpacked from a blob
	// (UnpackTree, RootFS's rebuild) and exclusively by Delete, which so
	// never races an unpack.
	treeMu sync.RWMutex
	// rebuilds are RootFS's rebuilds of missing trees, by fingerprint.
	rebuilds callGroup

	oci ociState // pulls and blob downloads in progress (oci.go)

	// maxUnpacked returns images.max_unpacked_size (SetMaxUnpackedSize).
	maxUnpacked atomic.Pointer[func() int64]

	authz Authorizer // nil: everything allowed (authz.go)
}

// New opens the image store in dir, creating it if needed, and removes what
// interrupted work left there.
func New(dir string, db DB, em Emitter, log *slog.Logger) (*Service, error) {
	if db == nil {
		return nil, errors.New("image: nil DB")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if em == nil {
		em = nopEmitter{}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	s := &Service{
		dir:       abs,
		blobDir:   filepath.Join(abs, "blobs", "sha256"),
		rootfsDir: filepath.Join(abs, "rootfs"),
		db:        db,
		em:        em,
		log:       log,
		now:       func() time.Time { return time.Now().UTC() },
	}
	for _, d := range []string{s.dir, filepath.Join(s.dir, "blobs"), s.blobDir, s.rootfsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
	}
	// The unpacker confines paths with openat2 (Linux 5.6).
	if err := probeOpenat2(s.rootfsDir); err != nil {
		return nil, fmt.Errorf("image: openat2 (Linux 5.6 or later) is required: %w", err)
	}

	for _, d := range []string{s.blobDir, s.rootfsDir} {
		entries, err := os.ReadDir(d)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".trash-") {
				p := filepath.Join(d, e.Name())
				log.Info("removing leftover of interrupted image work", "path", p)
				if err := os.RemoveAll(p); err != nil {
					return nil, fmt.Errorf("image: %w", err)
				}
			}
		}
	}
	return s, nil
}

func probeOpenat2(dir string) error {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
	fd, err := unix.Openat2(dfd, ".", &how)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

type nopEmitter struct{}

func (nopEmitter) Lifecycle(context.Context, string, event.Entity, map[string]any) {}

func (s *Service) blobPath(fp string) string { return filepath.Join(s.blobDir, fp) }

// Import stores an uploaded root filesystem tarball as a new image, or the
// image of an OCI archive or docker-archive (see importArchive). The
// upload is written to a temporary blob while it is hashed and unpacked in
// one pass; only a valid archive is renamed into place and recorded.
//
// An upload whose fingerprint is already an image is a conflict ("image
// already exists"), even when meta.Alias is new: aliases are added with
// CreateAlias.
func (s *Service) Import(ctx context.Context, r io.Reader, meta ImportMeta) (api.Image, error) {
	if err := s.allowCreate(ctx); err != nil {
		return api.Image{}, err
	}
	arch, err := normalizeArchitecture(meta.Architecture)
	if err != nil {
		return api.Image{}, err
	}
	if meta.Alias != "" {
		if err := validAliasName(meta.Alias); err != nil {
			return api.Image{}, err
		}
		if err := s.aliasFree(ctx, meta.Alias); err != nil {
			return api.Image{}, err
		}
	}

	if meta.Rootfs == nil {
		// A disk image (qcow2, or raw with a partition table) is told
		// apart by its first bytes and stored as is (disk.go).
		br, claimed := peekDisk(r)
		r = br
		if claimed != "" {
			rec, aliases, err := s.importDisk(ctx, br, claimed, arch, meta)
			if err != nil {
				return api.Image{}, err
			}
			return toAPI(ctx, rec, aliases), nil
		}
	}

	var up *upload
	if meta.Rootfs != nil {
		up, err = s.receiveSplit(ctx, r, meta.Rootfs)
	} else {
		up, err = s.receive(ctx, r)
	}
	if err != nil {
		return api.Image{}, err
	}
	defer up.discard()
	if meta.Fingerprint != "" && !strings.EqualFold(meta.Fingerprint, up.fp) {
		return api.Image{}, errdefs.Invalid("fingerprint mismatch: the upload's is %s, the client expected %s", up.fp, meta.Fingerprint)
	}
	// An OCI layout or docker-archive unpacks as a directory of blobs:
	// stored as an OCI image instead (archive.go).
	if up.format == formatRootfsTarball {
		if kind := archiveKind(up.root); kind != "" {
			return s.importArchive(ctx, up.root, kind, meta)
		}
	}

	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if rec, ok, err := s.existing(ctx, up.fp); err != nil {
		return api.Image{}, err
	} else if ok {
		// Stored for another project: this one holds it too, and the
		// upload is dropped (the deferred discard).
		rec, aliases, err := s.holdLocked(ctx, rec, meta.Alias)
		if err != nil {
			return api.Image{}, err
		}
		return toAPI(ctx, rec, aliases), nil
	}
	// Files without a record are what a crash or a failed delete left.
	if err := s.removeFiles(up.fp); err != nil {
		return api.Image{}, err
	}
	if err := os.Rename(up.blob, s.blobPath(up.fp)); err != nil {
		return api.Image{}, fmt.Errorf("store image: %w", err)
	}
	up.blob = s.blobPath(up.fp)
	if up.rootfsBlob != "" {
		if err := os.Rename(up.rootfsBlob, s.splitRootfsPath(up.fp)); err != nil {
			return api.Image{}, fmt.Errorf("store image: %w", err)
		}
		up.rootfsBlob = s.splitRootfsPath(up.fp)
	}
	if up.root != "" { // A disk image has no tree.
		if err := os.Rename(up.root, s.treePath(up.fp)); err != nil {
			return api.Image{}, fmt.Errorf("store image: %w", err)
		}
		up.root = s.treePath(up.fp)
	}
	if err := syncDir(s.blobDir); err != nil {
		return api.Image{}, err
	}
	if err := syncDir(s.rootfsDir); err != nil {
		return api.Image{}, err
	}

	props := maps.Clone(meta.Properties)
	if props == nil {
		props = map[string]string{}
	}
	for k, v := range map[string]string{"os": meta.OS, "release": meta.Release, "description": meta.Description} {
		if v != "" {
			props[k] = v
		}
	}
	props["architecture"] = arch
	now := s.now()
	typ := typeContainer
	if isDiskFormat(up.format) {
		typ = typeVM
	}
	rec := Record{
		Fingerprint:  up.fp,
		Filename:     meta.Filename,
		Size:         up.size,
		Architecture: arch,
		Type:         typ,
		Properties:   props,
		Public:       meta.Public,
		CreatedAt:    now,
		UploadedAt:   now,
		Source:       sourceFile,
		Format:       up.format,
	}
	if up.lxd != nil {
		up.lxd.apply(&rec, meta)
		arch = rec.Architecture
	}
	fillProperties(&rec, up.root)
	if err := s.db.CreateImage(ctx, rec, scope(ctx)); err != nil {
		return api.Image{}, fmt.Errorf("record image: %w", err)
	}
	rec.Projects = []string{scope(ctx)}
	var aliases []AliasRecord
	if meta.Alias != "" {
		a := AliasRecord{Project: scope(ctx), Name: meta.Alias, Target: up.fp, Type: typ}
		if err := s.db.CreateAlias(ctx, a); err != nil {
			if derr := s.db.DeleteImage(context.WithoutCancel(ctx), up.fp); derr != nil {
				s.log.Error("cannot undo image record", "fingerprint", up.fp, "error", derr)
			}
			return api.Image{}, fmt.Errorf("create alias %q: %w", meta.Alias, err)
		}
		aliases = append(aliases, a)
	}
	up.blob, up.rootfsBlob, up.root = "", "", "" // Committed.

	s.log.Info("image imported", "fingerprint", up.fp, "size", up.size, "architecture", arch, "format", up.format)
	s.em.Lifecycle(ctx, EventImageCreated, imageSource(ctx, up.fp), map[string]any{"type": typ})
	if meta.Alias != "" {
		s.em.Lifecycle(ctx, EventImageAliasCreated, aliasSource(ctx, meta.Alias), map[string]any{"target": up.fp})
	}
	return toAPI(ctx, rec, aliases), nil
}

// upload is a received upload not yet committed: temporary files that
// discard removes.
type upload struct {
	fp   string
	size int64
	blob string
	root string

	// rootfsBlob is a split image's root filesystem, beside blob (its
	// metadata tarball).
	rootfsBlob string
	format     string
	lxd        *lxdMetadata // an LXD image's metadata.yaml
}

func (u *upload) discard() {
	if u.blob != "" {
		os.Remove(u.blob)
	}
	if u.rootfsBlob != "" {
		os.Remove(u.rootfsBlob)
	}
	if u.root != "" {
		os.RemoveAll(u.root)
	}
}

// receive streams r into a temporary blob, hashing it, and unpacks it into
// a temporary tree on the way. Both are synced before it returns.
func (s *Service) receive(ctx context.Context, r io.Reader) (_ *upload, err error) {
	up := &upload{}
	defer func() {
		if err != nil {
			up.discard()
		}
	}()
	f, err := os.CreateTemp(s.blobDir, ".tmp-upload-*")
	if err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	up.blob = f.Name()
	defer f.Close()
	if up.root, err = os.MkdirTemp(s.rootfsDir, ".tmp-import-*"); err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}

	size, err := s.newCap()
	if err != nil {
		return nil, err
	}
	hr := &hashingReader{ctx: ctx, r: r, w: f, h: sha256.New(), size: size}
	src := &imageTarball{}
	err = src.extract(ctx, hr, up.root, unpackOptions{log: s.log, size: size})
	if errors.Is(err, errUnifiedLate) {
		err = nil // Unpacked again below, from the stored copy.
	}
	if err == nil {
		_, err = io.Copy(io.Discard, hr) // Anything after the archive is fingerprinted too.
	}
	// What went wrong upstream of the unpacker comes first: it is why the
	// archive looked corrupt.
	switch {
	case ctx.Err() != nil:
		return nil, cancelled(ctx.Err())
	case hr.rerr != nil:
		return nil, fmt.Errorf("read upload: %w", hr.rerr)
	case hr.werr != nil:
		return nil, fmt.Errorf("store upload: %w", hr.werr)
	case hr.over != nil:
		return nil, hr.over
	case err != nil:
		return nil, err
	}

	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	if src.format == "" { // errUnifiedLate
		if src, err = s.unpackUnifiedAgain(ctx, up, size.again()); err != nil {
			return nil, err
		}
	}
	up.format = src.format
	if src.format == formatLXDUnified {
		up.lxd = &src.meta
	}
	if err := syncFS(up.root); err != nil {
		return nil, err
	}
	up.fp = hex.EncodeToString(hr.h.Sum(nil))
	up.size = hr.n
	return up, nil
}

// hashingReader reads the upload, writing and hashing every byte, and
// keeps the errors of both sides apart from the unpacker's. The bytes
// count against size (nil: no cap), so that no upload is stored beyond the
// cap whatever follows its archive.
type hashingReader struct {
	ctx  context.Context
	r    io.Reader
	w    io.Writer
	h    hash.Hash
	n    int64
	size *sizeCap
	rerr error
	werr error
	over error // the cap's error
}

func (h *hashingReader) Read(p []byte) (int, error) {
	if err := h.ctx.Err(); err != nil {
		return 0, err
	}
	if h.werr != nil {
		return 0, h.werr
	}
	if h.over != nil {
		return 0, h.over
	}
	n, err := h.r.Read(p)
	if cerr := h.size.addRaw(n); cerr != nil {
		h.over = cerr
		return 0, cerr
	}
	if n > 0 {
		h.h.Write(p[:n])
		if _, werr := h.w.Write(p[:n]); werr != nil {
			h.werr = werr
			return 0, werr
		}
		h.n += int64(n)
	}
	if err != nil && err != io.EOF {
		h.rerr = err
	}
	return n, err
}

// Get returns an image of the scope project by fingerprint or unique
// fingerprint prefix; one only other projects hold is not found.
func (s *Service) Get(ctx context.Context, fpOrPrefix string) (api.Image, error) {
	rec, err := s.checked(ctx, fpOrPrefix, auth.CanView)
	if err != nil {
		return api.Image{}, err
	}
	aliases, err := s.db.ListAliases(ctx, scope(ctx))
	if err != nil {
		return api.Image{}, err
	}
	return toAPI(ctx, rec, aliasesOf(aliases, rec.Fingerprint)), nil
}

// List returns the scope project's images, by fingerprint.
func (s *Service) List(ctx context.Context) ([]api.Image, error) {
	recs, err := s.db.ListImages(ctx, scope(ctx))
	if err != nil {
		return nil, err
	}
	aliases, err := s.db.ListAliases(ctx, scope(ctx))
	if err != nil {
		return nil, err
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Fingerprint < recs[j].Fingerprint })
	out := make([]api.Image, 0, len(recs))
	for _, rec := range recs {
		if s.canView(ctx, rec) {
			out = append(out, toAPI(ctx, rec, aliasesOf(aliases, rec.Fingerprint)))
		}
	}
	return out, nil
}

// Update replaces an image's writable fields. Profiles are not kept: the
// record has no place for them yet. The fields are the image's, not the
// project's: every project holding it sees the change (public,
// auto_update, properties and expiry are per image, as its files).
func (s *Service) Update(ctx context.Context, fp string, put api.ImagePut) error {
	rec, err := s.checked(ctx, fp, auth.CanEdit)
	if err != nil {
		return err
	}
	rec.AutoUpdate = put.AutoUpdate
	rec.Public = put.Public
	rec.ExpiresAt = put.ExpiresAt
	rec.Properties = maps.Clone(put.Properties)
	if rec.Properties == nil {
		rec.Properties = map[string]string{}
	}
	if err := s.db.UpdateImage(ctx, rec); err != nil {
		return err
	}
	s.em.Lifecycle(ctx, EventImageUpdated, imageSource(ctx, rec.Fingerprint), nil)
	return nil
}

// MarkUsed sets an image's last use to now, whichever project uses it (the
// date is the image's: it keeps a cached image from expiring).
func (s *Service) MarkUsed(ctx context.Context, fp string) error {
	rec, err := s.stored(ctx, fp)
	if err != nil {
		return err
	}
	rec.LastUsedAt = s.now()
	return s.db.UpdateImage(ctx, rec)
}

// Delete removes an image from the scope project, with the project's
// aliases of it. The image itself (its record, blob and trees:
// removeFiles) goes only with the last project holding it. inUseBy names
// the instances, of every project, created from it; any makes it a
// conflict.
func (s *Service) Delete(ctx context.Context, fp string, inUseBy []string) error {
	rec, err := s.checked(ctx, fp, auth.CanDelete)
	if err != nil {
		return err
	}
	if len(inUseBy) > 0 {
		return errdefs.Conflict("image is used by instances: %s", strings.Join(inUseBy, ", "))
	}
	fp = rec.Fingerprint

	s.treeMu.Lock()
	defer s.treeMu.Unlock()
	s.commitMu.Lock()
	defer s.commitMu.Unlock()

	// Read again under commitMu: an import may have added a project.
	if rec, err = s.record(ctx, fp); err != nil {
		return err
	}
	if len(rec.Projects) > 1 {
		if err := s.db.RemoveImageProject(ctx, fp, scope(ctx)); err != nil {
			return err
		}
		s.em.Lifecycle(ctx, EventImageDeleted, imageSource(ctx, fp), nil)
		s.log.Info("image removed from a project", "fingerprint", fp, "project", scope(ctx), "still_in", len(rec.Projects)-1)
		return nil
	}
	return s.purgeLocked(ctx, rec)
}

// purgeLocked deletes an image from every project, with its files. The
// caller holds treeMu and commitMu.
func (s *Service) purgeLocked(ctx context.Context, rec Record) error {
	fp := rec.Fingerprint
	var ociBlobs []string // Read before the manifest goes with the image's blob.
	if rec.Format == formatOCI {
		ociBlobs = s.ociBlobsOf(fp)
	}
	if err := s.db.DeleteImage(ctx, fp); err != nil {
		return err
	}
	s.em.Lifecycle(ctx, EventImageDeleted, imageSource(ctx, fp), nil)
	defer s.collectBlobsLocked(context.WithoutCancel(ctx), ociBlobs)
	if err := s.removeFiles(fp); err != nil {
		// The image is gone; its files are left for the next import of
		// the same bytes to replace.
		return fmt.Errorf("image %s deleted, but not all of its files: %w", fp, err)
	}
	s.log.Info("image deleted", "fingerprint", fp)
	return nil
}

// Resolve returns the fingerprint an alias of the scope project points to,
// or the image of the scope project a fingerprint prefix names, in that
// order.
func (s *Service) Resolve(ctx context.Context, aliasOrFingerprint string) (string, error) {
	if aliasOrFingerprint == "" {
		return "", errdefs.NotFound("image %q not found", aliasOrFingerprint)
	}
	a, err := s.db.GetAlias(ctx, scope(ctx), aliasOrFingerprint)
	if err == nil {
		return a.Target, nil
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		return "", err
	}
	rec, err := s.record(ctx, aliasOrFingerprint)
	if err != nil {
		return "", err
	}
	return rec.Fingerprint, nil
}

// record reads an image of the scope project by fingerprint or prefix;
// case does not matter.
func (s *Service) record(ctx context.Context, fpOrPrefix string) (Record, error) {
	return s.lookup(ctx, scope(ctx), fpOrPrefix)
}

// lookup reads an image project holds ("" any) by fingerprint or prefix.
func (s *Service) lookup(ctx context.Context, project, fpOrPrefix string) (Record, error) {
	p := strings.ToLower(fpOrPrefix)
	if !isHexPrefix(p) {
		return Record{}, errdefs.NotFound("image %q not found", fpOrPrefix)
	}
	rec, err := s.db.GetImage(ctx, project, p)
	if errors.Is(err, errdefs.ErrNotFound) {
		return Record{}, errdefs.NotFound("image %q not found", fpOrPrefix)
	}
	return rec, err
}

func isHexPrefix(s string) bool {
	if s == "" || len(s) > sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// removeFiles removes an image's blob and trees. Trees are first renamed
// aside, so none is ever seen half-removed.
func (s *Service) removeFiles(fp string) error {
	var errs []error
	for _, p := range []string{s.blobPath(fp), s.splitRootfsPath(fp)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	entries, err := os.ReadDir(s.rootfsDir)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		// <fp>@<hostid>-<size> are trees shifted for an id map, which
		// versions before storage pools cached here; data directories
		// made by them still hold some, which go with their image.
		if e.Name() != fp && !strings.HasPrefix(e.Name(), fp+"@") {
			continue
		}
		s.log.Debug("removing image tree", "name", e.Name())
		trash := filepath.Join(s.rootfsDir, ".trash-"+randomSuffix())
		if err := os.Rename(filepath.Join(s.rootfsDir, e.Name()), trash); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.RemoveAll(trash); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func randomSuffix() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// syncFS flushes the filesystem holding dir: a tree must be on disk before
// it is renamed into place, or a crash could leave a complete-looking tree
// of empty files.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// toAPI is an image as the scope project of ctx sees it.
func toAPI(ctx context.Context, rec Record, aliases []AliasRecord) api.Image {
	props := maps.Clone(rec.Properties)
	if props == nil {
		props = map[string]string{}
	}
	img := api.Image{
		ImagePut: api.ImagePut{
			AutoUpdate: rec.AutoUpdate,
			Properties: props,
			Public:     rec.Public,
			ExpiresAt:  rec.ExpiresAt,
			Profiles:   []string{},
		},
		Aliases:      []api.ImageAlias{},
		Architecture: rec.Architecture,
		Cached:       rec.Cached,
		Filename:     rec.Filename,
		Fingerprint:  rec.Fingerprint,
		Size:         rec.Size,
		Type:         rec.Type,
		CreatedAt:    rec.CreatedAt,
		LastUsedAt:   rec.LastUsedAt,
		UploadedAt:   rec.UploadedAt,
		Project:      scope(ctx),
	}
	sort.Slice(aliases, func(i, j int) bool { return aliases[i].Name < aliases[j].Name })
	for _, a := range aliases {
		img.Aliases = append(img.Aliases, api.ImageAlias{Name: a.Name, Description: a.Description})
	}
	return img
}

func aliasesOf(all []AliasRecord, fp string) []AliasRecord {
	var out []AliasRecord
	for _, a := range all {
		if a.Target == fp {
			out = append(out, a)
		}
	}
	return out
}
