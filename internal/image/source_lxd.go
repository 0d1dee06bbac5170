package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Formats of LXD images, as Record.Format names them.
const (
	// formatLXDUnified is one tarball holding metadata.yaml, templates/ and
	// the root filesystem under rootfs/. The blob is that tarball.
	formatLXDUnified = "lxd-unified"
	// formatLXDSplit is a metadata tarball (metadata.yaml, templates/)
	// and a root filesystem (tarball or squashfs) uploaded together. The
	// blob is the metadata tarball and <blob>.rootfs the root filesystem;
	// the fingerprint is the SHA-256 of the two, one after the other.
	formatLXDSplit = "lxd-split"
)

// errUnifiedLate says that an upload unpacked as a plain root filesystem
// turned out to be an LXD unified tarball whose metadata.yaml came after
// rootfs/ entries: it must be unpacked again, from its stored copy, with
// rootfs/ as the root.
var errUnifiedLate = errors.New("LXD image tarball with metadata.yaml after its rootfs")

// imageTarball reads one tarball that is a plain root filesystem or an LXD
// unified image, telling them apart as it unpacks: an LXD image has
// metadata.yaml at its top and its root filesystem under rootfs/. With
// unified set it is known to be an LXD image (its stored blob is read
// again to unpack a shifted tree).
//
// LXD itself writes metadata.yaml first, so an LXD image is recognised at
// its first entry and unpacked in one pass; if metadata.yaml comes later,
// extract returns errUnifiedLate once it has read the whole upload, and
// the caller unpacks the stored copy again with unified set.
type imageTarball struct {
	unified bool

	// Set by a successful extract.
	format string
	meta   lxdMetadata
}

func (t *imageTarball) extract(ctx context.Context, upload io.Reader, root string, opts unpackOptions) error {
	r, release, _, err := decompress(upload, opts.size)
	if err != nil {
		return err
	}
	defer release()
	l := &tarLayout{log: opts.log}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if t.unified {
		l.mode = layoutUnified
	}
	opts.entry = l.entry
	n, err := unpack(ctx, r, root, opts)
	if err != nil {
		return err
	}
	if err := drain(ctx, r); err != nil {
		return err
	}
	switch {
	case l.mode == layoutUnified && !l.sawMeta:
		return errdefs.Invalid("LXD image tarball has no %s", lxdMetadataName)
	case l.mode == layoutUnified && !l.sawRootfs:
		return errdefs.Invalid("LXD image tarball has %s but no rootfs/ directory (a split image's metadata tarball is uploaded together with its rootfs)", lxdMetadataName)
	case l.mode == layoutUnified:
		t.format, t.meta = formatLXDUnified, *l.meta
		return nil
	case l.sawMeta && l.sawRootfs:
		return errUnifiedLate
	case l.sawRootfs && !l.other:
		return errdefs.Invalid("the archive is laid out as an LXD image (rootfs/ at its top) but has no %s", lxdMetadataName)
	case l.sawMeta && !l.other:
		return errdefs.Invalid("the archive holds LXD image metadata but no rootfs/ directory (a split image's metadata tarball is uploaded together with its rootfs)")
	case n == 0:
		return errdefs.Invalid("not a root filesystem tarball: the archive holds no files")
	}
	t.format = formatRootfsTarball
	return nil
}

// drain reads a decompressed upload to its end: a compressed stream's
// checksum follows the tar's end-of-archive blocks, and all of the upload
// is fingerprinted.
func drain(ctx context.Context, r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cancelled(cerr)
		}
		if tl := asTooLarge(err); tl != nil {
			return tl
		}
		return errdefs.Invalid("corrupt archive: %v", err)
	}
	return nil
}

const (
	layoutUndecided = iota
	layoutPlain
	layoutUnified
)

// tarLayout watches an archive's entries as they are unpacked (the
// unpacker's entry hook) to tell a plain root filesystem from an LXD
// unified image, and in an LXD image takes rootfs/ as the root, reads
// metadata.yaml and leaves out the rest.
type tarLayout struct {
	mode int
	log  *slog.Logger

	meta      *lxdMetadata
	sawMeta   bool // a top-level metadata.yaml
	sawRootfs bool // a top-level rootfs/
	other     bool // top-level entries besides metadata.yaml, rootfs/, templates/
}

func (l *tarLayout) entry(hdr *tar.Header, r io.Reader) (bool, error) {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
		return false, nil
	}
	name, err := cleanPath(hdr.Name)
	if err != nil || name == "" {
		// The unpacker refuses a bad path with the entry's name; the
		// archive's root directory is the tree's root either way (an LXD
		// image's rootfs/ entry, later, overrides it).
		return false, nil
	}
	top, rest, _ := strings.Cut(name, "/")
	if l.mode == layoutUndecided {
		l.mode = layoutPlain
		if name == lxdMetadataName {
			l.mode = layoutUnified
		}
	}
	if l.mode == layoutPlain {
		switch {
		case name == lxdMetadataName && isRegular(hdr):
			l.sawMeta = true
		case top == "rootfs":
			l.sawRootfs = true
		case top == "templates":
		default:
			l.other = true
		}
		return false, nil
	}

	switch {
	case name == lxdMetadataName:
		if !isRegular(hdr) {
			return true, errdefs.Invalid("%s in the archive is not a regular file", lxdMetadataName)
		}
		if l.sawMeta {
			return true, errdefs.Invalid("the archive holds %s twice", lxdMetadataName)
		}
		meta, err := readLXDMetadata(r)
		if err != nil {
			return true, err
		}
		l.meta, l.sawMeta = &meta, true
		return true, nil
	case top == "rootfs":
		l.sawRootfs = true
		hdr.Name = rest
		if rest == "" {
			hdr.Name = "." // rootfs/ itself: the tree's root.
		}
		if hdr.Typeflag == tar.TypeLink {
			target, err := cleanPath(hdr.Linkname)
			if err != nil {
				return true, errdefs.Invalid("entry %q: hardlink target %q: %v", name, hdr.Linkname, err)
			}
			t, ok := strings.CutPrefix(target, "rootfs/")
			if !ok {
				return true, errdefs.Invalid("entry %q: hardlink target %q is outside rootfs/", name, hdr.Linkname)
			}
			hdr.Linkname = t
		}
		return false, nil
	case name == "rootfs.img":
		return true, errdefs.Invalid("unified virtual-machine images (one tarball holding rootfs.img) are not supported by hangard: import the metadata tarball and rootfs.img as a split image, or the disk alone")
	case top == "templates":
		return true, nil // Kept in the blob, not applied.
	}
	l.log.Debug("skipping LXD image entry outside rootfs/", "name", hdr.Name)
	return true, nil
}

func isRegular(hdr *tar.Header) bool {
	return hdr.Typeflag == tar.TypeReg || hdr.Typeflag == '\x00'
}

// lxdSplitMetadata reads the metadata tarball of a split image: it must
// hold metadata.yaml at its top. Nothing is unpacked.
func lxdSplitMetadata(ctx context.Context, r io.Reader, size *sizeCap) (lxdMetadata, error) {
	dr, release, _, err := decompress(r, size)
	if err != nil {
		return lxdMetadata{}, fmt.Errorf("metadata tarball: %w", err)
	}
	defer release()
	tr := tar.NewReader(dr)
	var meta *lxdMetadata
	for {
		if err := ctx.Err(); err != nil {
			return lxdMetadata{}, cancelled(err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if tl := asTooLarge(err); tl != nil {
			return lxdMetadata{}, tl
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return lxdMetadata{}, errdefs.Invalid("metadata tarball: corrupt archive: %v", err)
		}
		name, err := cleanPath(hdr.Name)
		if err != nil {
			return lxdMetadata{}, errdefs.Invalid("metadata tarball: entry %q: %v", hdr.Name, err)
		}
		switch {
		case name == "rootfs.img":
			return lxdMetadata{}, errdefs.Invalid("unified virtual-machine images (one tarball holding rootfs.img) are not supported by hangard: import the metadata tarball and rootfs.img as a split image, or the disk alone")
		case name != lxdMetadataName:
			continue
		case !isRegular(hdr):
			return lxdMetadata{}, errdefs.Invalid("metadata tarball: %s is not a regular file", lxdMetadataName)
		case meta != nil:
			return lxdMetadata{}, errdefs.Invalid("metadata tarball holds %s twice", lxdMetadataName)
		}
		m, err := readLXDMetadata(tr)
		if err != nil {
			return lxdMetadata{}, fmt.Errorf("metadata tarball: %w", err)
		}
		meta = &m
	}
	if err := drain(ctx, dr); err != nil {
		return lxdMetadata{}, fmt.Errorf("metadata tarball: %w", err)
	}
	if meta == nil {
		return lxdMetadata{}, errdefs.Invalid("metadata tarball has no %s at its top", lxdMetadataName)
	}
	return *meta, nil
}

// magicSquashfs starts a squashfs image ("hsqs", little-endian).
var magicSquashfs = []byte("hsqs")

// splitRootfs reads the root filesystem of a split LXD image: a rootfs
// tarball, compressed or not, or a squashfs image (unpacked with
// unsquashfs, when installed). A squashfs image must be read from a file.
type splitRootfs struct{}

func (s splitRootfs) extract(ctx context.Context, upload io.Reader, root string, opts unpackOptions) error {
	br := bufio.NewReaderSize(upload, 64<<10)
	head, _ := br.Peek(len(magicSquashfs))
	if !bytes.Equal(head, magicSquashfs) {
		return rootfsTarball{}.extract(ctx, br, root, opts)
	}
	f, ok := upload.(*os.File)
	if !ok {
		return fmt.Errorf("squashfs rootfs: not read from a file")
	}
	// root is a temporary directory whose name the store removes at start
	// if left over; so is this one.
	return s.squashfs(ctx, f.Name(), root+"-squashfs", root, opts)
}

// squashfs unpacks a squashfs image with unsquashfs into a scratch
// directory, then streams that tree as a tar (GNU tar, with numeric ids and
// xattrs) through the unpacker, so that a squashfs rootfs gets the same
// containment, ownership shift and capability rewriting as a tarball.
func (splitRootfs) squashfs(ctx context.Context, path, scratch, root string, opts unpackOptions) error {
	bin, err := exec.LookPath("unsquashfs")
	if err != nil {
		return errdefs.Invalid("squashfs root filesystems need unsquashfs, which is not installed on the server (apt-get install squashfs-tools)")
	}
	// The sizes its inodes declare are what unsquashfs would write: summed
	// first, so a bomb is refused before the scratch tree takes any space.
	if opts.size != nil {
		if err := squashfsFits(ctx, bin, path, opts.size); err != nil {
			return err
		}
	}
	defer os.RemoveAll(scratch)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-no-progress", "-quiet", "-processors", "1", "-dest", scratch, path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cancelled(cerr)
		}
		msg := strings.ReplaceAll(lastLine(out.String()), path, "the upload")
		return errdefs.Invalid("corrupt squashfs rootfs: unsquashfs: %v: %s", err, msg)
	}

	tarCmd := exec.CommandContext(ctx, "tar", "--create", "--file=-", "--directory="+scratch,
		"--numeric-owner", "--xattrs", "--xattrs-include=*", "--sparse", ".")
	var tarErr bytes.Buffer
	tarCmd.Stderr = &tarErr
	stdout, err := tarCmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := tarCmd.Start(); err != nil {
		return fmt.Errorf("squashfs rootfs: %w", err)
	}
	stream := opts.size.reader(stdout)
	n, uerr := unpack(ctx, stream, root, opts)
	if uerr == nil {
		uerr = drain(ctx, stream)
	}
	stdout.Close()
	werr := tarCmd.Wait()
	switch {
	case uerr != nil:
		return uerr
	case werr != nil:
		if cerr := ctx.Err(); cerr != nil {
			return cancelled(cerr)
		}
		return fmt.Errorf("squashfs rootfs: tar: %v: %s", werr, strings.TrimSpace(lastLine(tarErr.String())))
	case n <= 1:
		return errdefs.Invalid("squashfs rootfs holds no files")
	}
	return nil
}

// squashfsFits lists a squashfs image (unsquashfs -lln: ls -l lines,
// numeric owners) and checks that its regular files' sizes, summed, fit
// the cap. A hardlinked file is listed, so counted, once per name, and a
// file name holding a newline may add a line of its own: the sum can only
// be too high, never too low. The listing stops as soon as the sum passes
// the cap.
func squashfsFits(ctx context.Context, bin, path string, size *sizeCap) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-no-progress", "-lln", path)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("squashfs rootfs: %w", err)
	}
	var total int64
	var over error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// "-rw-r--r-- 0/0   1234 2024-01-01 00:00 squashfs-root/a"
		line := sc.Text()
		if !strings.HasPrefix(line, "-") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		n, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || n < 0 {
			continue
		}
		if total += n; size.fits(total) != nil || total < 0 {
			over = size.exceeded()
			cancel() // Stops unsquashfs: nothing more to learn.
			break
		}
	}
	io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	switch {
	case over != nil:
		return over
	case ctx.Err() != nil:
		return cancelled(ctx.Err())
	case werr != nil:
		msg := strings.ReplaceAll(lastLine(errOut.String()), path, "the upload")
		return errdefs.Invalid("corrupt squashfs rootfs: unsquashfs: %v: %s", werr, msg)
	}
	return nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
