package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// PublishSource is what an image is published from: a container's root
// tree or a virtual machine's root disk, one of the two.
type PublishSource struct {
	// Dir is a container's root tree, read and never written.
	Dir string
	// IDMap is the map the tree's ownership is shifted by: host ids in
	// [HostID, HostID+Size) are written as id-HostID. nil: a privileged
	// container, ids as they are.
	IDMap *driver.IDMap

	// Disk is a virtual machine's root disk file, of DiskFormat ("raw"
	// or "qcow2"; a qcow2 may have a backing chain, which is flattened).
	Disk       string
	DiskFormat string
}

// PublishOptions say what the published image is.
type PublishOptions struct {
	// Architecture is the instance's (LXD name or a common alias); "" is
	// the host's.
	Architecture string
	// Properties go into metadata.yaml (description, os, release, ...).
	Properties map[string]string
	Public     bool
	// Aliases are created for the image; any that exists refuses the
	// publish before anything is read.
	Aliases []string
	// Compression is gzip, xz, zstd, bzip2 or none; "" is DefaultCompression.
	Compression string
	ExpiresAt   time.Time
	Filename    string
	// Progress, when set, receives the packing's progress (stage "pack",
	// bytes of the tree's files read of an estimated total).
	Progress func(Progress)
}

// ProgressPack is the stage Publish reports while it packs a tree.
const ProgressPack = "pack"

// Publish makes an image of an instance's root, as LXD's publish does: a
// container's tree becomes a unified LXD image (metadata.yaml first, an
// empty templates/, the tree under rootfs/ with its ownership shifted
// back); a virtual machine's disk becomes a split LXD image (a metadata
// tarball and a standalone qcow2, rootfs.img), since Import takes virtual
// machine images only split (LXD writes them unified; both import alike
// in LXD). The image is written straight into Import, through a pipe, so
// the fingerprint is the SHA-256 of the stored bytes, the upload's
// validation and size cap apply, and the image's tree is unpacked as it
// is written: the image launches at once.
//
// The source must not change while it is read: the caller freezes or
// snapshots the instance. On any failure nothing is left.
func (s *Service) Publish(ctx context.Context, src PublishSource, opts PublishOptions) (api.Image, error) {
	if err := s.allowCreate(ctx); err != nil {
		return api.Image{}, err
	}
	comp, err := checkCompression(opts.Compression)
	if err != nil {
		return api.Image{}, err
	}
	arch, err := normalizeArchitecture(opts.Architecture)
	if err != nil {
		return api.Image{}, err
	}
	for k := range opts.Properties {
		if k == "" {
			return api.Image{}, errdefs.Invalid("a property has an empty name")
		}
	}
	seen := map[string]bool{}
	for _, a := range opts.Aliases {
		if err := validAliasName(a); err != nil {
			return api.Image{}, err
		}
		if seen[a] {
			return api.Image{}, errdefs.Invalid("alias %q is given twice", a)
		}
		seen[a] = true
		if err := s.aliasFree(ctx, a); err != nil {
			return api.Image{}, err
		}
	}
	meta := ImportMeta{Public: opts.Public, Filename: opts.Filename, Architecture: arch}
	if len(opts.Aliases) > 0 {
		meta.Alias = opts.Aliases[0] // Created with the record, the others after.
	}
	md := lxdMetadataFile{
		Architecture: arch,
		CreationDate: s.now().Unix(),
		Properties:   maps.Clone(opts.Properties),
		Templates:    map[string]any{},
	}
	if md.Properties == nil {
		md.Properties = map[string]string{}
	}
	if !opts.ExpiresAt.IsZero() {
		md.ExpiryDate = opts.ExpiresAt.Unix()
	}

	var img api.Image
	switch {
	case src.Dir != "" && src.Disk != "":
		return api.Image{}, errdefs.Invalid("publish: a tree or a disk, not both")
	case src.Dir != "":
		img, err = s.publishTree(ctx, src, md, comp, meta, opts.Progress)
	case src.Disk != "":
		img, err = s.publishDisk(ctx, src, md, comp, meta)
	default:
		return api.Image{}, errdefs.Invalid("publish: no root tree or disk to publish")
	}
	if err != nil {
		return api.Image{}, err
	}
	for _, a := range opts.Aliases[min(1, len(opts.Aliases)):] {
		if err := s.CreateAlias(ctx, api.ImageAliasesPost{ImageAliasesEntry: api.ImageAliasesEntry{Name: a, ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: img.Fingerprint}}}); err != nil {
			// Taken since the check: the publish fails whole.
			if derr := s.Delete(context.WithoutCancel(ctx), img.Fingerprint, nil); derr != nil {
				s.log.Error("cannot undo published image", "fingerprint", img.Fingerprint, "error", derr)
			}
			return api.Image{}, fmt.Errorf("create alias %q: %w", a, err)
		}
		img.Aliases = append(img.Aliases, api.ImageAlias{Name: a})
	}
	s.log.Info("image published", "fingerprint", img.Fingerprint, "size", img.Size, "compression", comp, "type", img.Type)
	return img, nil
}

// lxdMetadataFile is metadata.yaml as LXD writes it (api.ImageMetadata).
type lxdMetadataFile struct {
	Architecture string            `yaml:"architecture"`
	CreationDate int64             `yaml:"creation_date"`
	ExpiryDate   int64             `yaml:"expiry_date"`
	Properties   map[string]string `yaml:"properties"`
	Templates    map[string]any    `yaml:"templates"`
}

// writeMetadata writes metadata.yaml and the empty templates/ directory:
// the head of an LXD image tarball, unified or split.
func writeMetadata(tw *tar.Writer, md lxdMetadataFile) error {
	data, err := yaml.Marshal(md)
	if err != nil {
		return err
	}
	mtime := time.Unix(md.CreationDate, 0)
	if err := tw.WriteHeader(&tar.Header{Name: lxdMetadataName, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	return tw.WriteHeader(&tar.Header{Name: "templates/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
}

// publishTree packs a container's tree into a unified image, streamed
// into Import: the packer and the importer run at once on either side of
// a pipe.
func (s *Service) publishTree(ctx context.Context, src PublishSource, md lxdMetadataFile, comp string, meta ImportMeta, progress func(Progress)) (api.Image, error) {
	if st, err := os.Stat(src.Dir); err != nil || !st.IsDir() {
		return api.Image{}, fmt.Errorf("publish: root tree %s is not a directory", src.Dir)
	}
	if src.IDMap != nil {
		if err := validIDMap(*src.IDMap); err != nil {
			return api.Image{}, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var total int64
	if progress != nil {
		total = treeSize(src.Dir)
		progress(Progress{Stage: ProgressPack, Total: total})
	}
	pr, pw := io.Pipe()
	packErr := make(chan error, 1)
	go func() {
		err := s.packUnified(ctx, pw, src, md, comp, func(done int64) {
			if progress != nil {
				progress(Progress{Stage: ProgressPack, Done: done, Total: total})
			}
		})
		pw.CloseWithError(err) // nil: EOF.
		packErr <- err
	}()
	img, err := s.Import(ctx, pr, meta)
	// The importer may stop before the end (a refused archive, the size
	// cap): the packer's next write fails, and it returns.
	pr.CloseWithError(errImportEnded)
	cancel()
	perr := <-packErr
	if err != nil {
		// Why the packing failed is why the import did; a packer that
		// failed only because the import stopped says nothing more.
		if perr != nil && !errors.Is(perr, errImportEnded) && !errors.Is(perr, errdefs.ErrCancelled) {
			return api.Image{}, fmt.Errorf("publish: %w", perr)
		}
		return api.Image{}, fmt.Errorf("publish: %w", err)
	}
	return img, nil
}

var errImportEnded = errors.New("import ended")

// packUnified writes the unified image: metadata.yaml, templates/, then
// the tree as rootfs/, all through the compressor.
func (s *Service) packUnified(ctx context.Context, w io.Writer, src PublishSource, md lxdMetadataFile, comp string, progress func(int64)) error {
	zw, err := newCompressor(ctx, comp, w)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	err = writeMetadata(tw, md)
	if err == nil {
		p := &treePacker{ctx: ctx, tw: tw, prefix: "rootfs", idmap: src.IDMap, log: s.log, progress: progress}
		err = p.pack(src.Dir)
	}
	if err == nil {
		err = tw.Close()
	}
	if cerr := zw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", comp, cerr)
	}
	return err
}

// publishDisk makes a split image of a virtual machine's disk: the disk is
// converted to a standalone qcow2 (its backing chain flattened;
// compressed clusters unless the compression is none), and imported with
// a metadata tarball compressed as asked.
func (s *Service) publishDisk(ctx context.Context, src PublishSource, md lxdMetadataFile, comp string, meta ImportMeta) (api.Image, error) {
	if src.DiskFormat != "raw" && src.DiskFormat != "qcow2" {
		return api.Image{}, errdefs.Invalid("publish: disk format %q: want raw or qcow2", src.DiskFormat)
	}
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		return api.Image{}, fmt.Errorf("publish: virtual-machine images need qemu-img: %w", err)
	}
	// Under the blob directory, with the name New removes after a crash.
	tmp, err := os.MkdirTemp(s.blobDir, ".tmp-publish-")
	if err != nil {
		return api.Image{}, fmt.Errorf("publish: %w", err)
	}
	defer os.RemoveAll(tmp)
	disk := filepath.Join(tmp, "rootfs.img")
	args := []string{"convert", "-f", src.DiskFormat, "-O", "qcow2"}
	if comp != compressionNone {
		args = append(args, "-c")
	}
	args = append(args, src.Disk, disk)
	if out, err := exec.CommandContext(ctx, qemuImg, args...).CombinedOutput(); err != nil {
		if ctx.Err() != nil {
			return api.Image{}, cancelled(ctx.Err())
		}
		return api.Image{}, fmt.Errorf("publish: qemu-img convert: %w: %s", err, strings.TrimSpace(string(out)))
	}

	var buf bytes.Buffer
	zw, err := newCompressor(ctx, comp, &buf)
	if err != nil {
		return api.Image{}, err
	}
	tw := tar.NewWriter(zw)
	err = writeMetadata(tw, md)
	if err == nil {
		err = tw.Close()
	}
	if cerr := zw.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return api.Image{}, fmt.Errorf("publish: metadata tarball: %w", err)
	}

	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	meta.Rootfs = func() (io.Reader, error) {
		var err error
		f, err = os.Open(disk)
		return f, err
	}
	img, err := s.Import(ctx, &buf, meta)
	if err != nil {
		return api.Image{}, fmt.Errorf("publish: %w", err)
	}
	return img, nil
}
