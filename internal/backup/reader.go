package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// PartKind says what an entry of a backup belongs to.
type PartKind int

const (
	// PartVolume is a file of a volume's tree: the instance's (Snapshot
	// "") or a snapshot's, Path its path in the volume.
	PartVolume PartKind = iota + 1
	// PartDisk is a VM's raw disk image (a snapshot's when Snapshot is set).
	PartDisk
	// PartOptimized is a send stream of a volume's Subvolume.
	PartOptimized
	// PartOptimizedHeader is backup/optimized_header.yaml.
	PartOptimizedHeader
)

func (k PartKind) String() string {
	switch k {
	case PartVolume:
		return "volume"
	case PartDisk:
		return "disk"
	case PartOptimized:
		return "optimized"
	case PartOptimizedHeader:
		return "optimized-header"
	}
	return fmt.Sprintf("PartKind(%d)", int(k))
}

// Part is where an entry goes.
type Part struct {
	Kind PartKind
	// Snapshot is the snapshot the entry belongs to; "" for the instance.
	Snapshot string
	// Path is, for PartVolume, the entry's path inside the volume ("" for
	// the volume's own root directory), cleaned and relative.
	Path string
	// Link is, for a hard link, its target's path inside the same volume.
	Link string
	// Subvolume is, for PartOptimized, the subvolume's path in the volume
	// ("/" for the volume itself).
	Subvolume string
}

// Entry is one entry of a backup: its tar header (Name as in the archive)
// and its part. Its content is read from the Reader.
type Entry struct {
	Header *tar.Header
	Part   Part
}

// Reader reads a backup tarball front to back (doc.go).
type Reader struct {
	// Index is the validated backup/index.yaml.
	Index *Index
	// Compression is the archive's compression, detected from its bytes.
	Compression string

	decomp  io.Reader
	cr      *countReader
	tr      *tar.Reader
	release func()
	err     error
	seen    map[Part]bool // kinds and snapshots seen (Path empty), for the final check
}

// countReader counts the bytes the tar reader takes, to tell a real end
// of archive (two zero blocks) from a stream cut between two entries,
// which archive/tar also reports as io.EOF.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Open starts reading a backup: it detects the compression, reads the
// first entry, which must be backup/index.yaml, and validates it. Close
// releases the decompressor.
func Open(r io.Reader) (*Reader, error) {
	d, release, algo, err := decompress(r)
	if err != nil {
		return nil, err
	}
	br := &Reader{Compression: algo, decomp: d, cr: &countReader{r: d}, release: release, seen: map[Part]bool{}}
	br.tr = tar.NewReader(br.cr)
	if err := br.readIndex(); err != nil {
		release()
		return nil, err
	}
	return br, nil
}

// Close releases the decompressor. It does not close the stream.
func (r *Reader) Close() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
	if r.err == nil {
		r.err = errors.New("backup: reader closed")
	}
}

func (r *Reader) readIndex() error {
	for {
		hdr, err := r.tr.Next()
		if err != nil {
			if err == io.EOF {
				return errdefs.Invalid("backup: empty archive, no %s", IndexName)
			}
			return readError(err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if name == "backup" && hdr.Typeflag == tar.TypeDir {
			continue
		}
		if name != IndexName {
			return errdefs.Invalid("backup: %s must be the first entry, found %q", IndexName, hdr.Name)
		}
		if !isRegular(hdr.Typeflag) {
			return errdefs.Invalid("backup: %s is not a regular file", IndexName)
		}
		if hdr.Size > maxIndexSize {
			return errdefs.Invalid("backup: %s is larger than %d bytes", IndexName, maxIndexSize)
		}
		b, err := io.ReadAll(r.tr)
		if err != nil {
			return readError(err)
		}
		if r.Index, err = ParseIndex(b); err != nil {
			return err
		}
		return nil
	}
}

// isTruncation tells whether a read error means the stream ended early.
func isTruncation(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "unexpected EOF")
}

func truncated(err error) error {
	return errdefs.Invalid("backup: truncated archive: %v", err)
}

// readError classifies an error reading the archive: every one is the
// archive's fault (the stream's own I/O errors included: the upload is
// what broke).
func readError(err error) error {
	if errors.Is(err, errdefs.ErrInvalidArgument) {
		return err
	}
	if isTruncation(err) {
		return truncated(err)
	}
	return errdefs.Invalid("backup: corrupt archive: %v", err)
}

func isRegular(t byte) bool {
	return t == tar.TypeReg || t == '\x00' || t == tar.TypeGNUSparse
}

// Read reads the current entry's content.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.tr.Read(p)
	if err != nil && err != io.EOF {
		r.err = readError(err)
		return n, r.err
	}
	return n, err
}

// Next advances to the next entry, skipping what is left of the current
// one. It returns io.EOF only at a verified end: tar trailer, compressed
// stream's end and checksum, every part the index promises present.
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	e, err := r.next()
	if err != nil {
		r.err = err
	}
	return e, err
}

func (r *Reader) next() (*Entry, error) {
	for {
		// Finish the current entry ourselves, so that the count below
		// starts where its content ends.
		if _, err := io.Copy(io.Discard, r.tr); err != nil {
			return nil, readError(err)
		}
		start := r.cr.n
		hdr, err := r.tr.Next()
		if err == io.EOF {
			// Padding of the last entry (< 512 bytes), then two zero
			// blocks: anything less is a stream cut between entries.
			if r.cr.n-start < 2*512 {
				return nil, errdefs.Invalid("backup: truncated archive: no end-of-archive marker")
			}
			if _, err := io.Copy(io.Discard, r.decomp); err != nil {
				return nil, readError(err)
			}
			if err := r.complete(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, readError(err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		part, skip, err := r.classify(hdr)
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		r.seen[Part{Kind: part.Kind, Snapshot: part.Snapshot, Subvolume: part.Subvolume}] = true
		return &Entry{Header: hdr, Part: part}, nil
	}
}

// complete checks that every part the index promises was seen.
func (r *Reader) complete() error {
	idx := r.Index
	vols := append([]string{""}, idx.Snapshots...)
	for _, s := range vols {
		what := "the instance"
		if s != "" {
			what = fmt.Sprintf("snapshot %q", s)
		}
		var need []Part
		switch {
		case idx.Optimized:
			need = []Part{{Kind: PartOptimized, Snapshot: s, Subvolume: "/"}}
		case idx.Type == TypeVM:
			need = []Part{{Kind: PartVolume, Snapshot: s}, {Kind: PartDisk, Snapshot: s}}
		default:
			need = []Part{{Kind: PartVolume, Snapshot: s}}
		}
		for _, p := range need {
			if !r.seen[p] {
				return errdefs.Invalid("backup: truncated or incomplete archive: no %s data for %s", p.Kind, what)
			}
		}
	}
	if idx.OptimizedHeader && !r.seen[Part{Kind: PartOptimizedHeader}] {
		return errdefs.Invalid("backup: incomplete archive: no %s", OptimizedHeaderName)
	}
	return nil
}

// cleanName checks an archive name and returns it without the trailing
// slash of a directory. Names are taken as LXD writes them: relative,
// under backup/, every component a plain name.
func cleanName(name string) (string, error) {
	n := strings.TrimSuffix(name, "/")
	if n == "" || strings.HasPrefix(n, "/") {
		return "", errdefs.Invalid("backup: entry %q: absolute path", name)
	}
	if strings.IndexByte(n, 0) >= 0 {
		return "", errdefs.Invalid("backup: entry %q: NUL in path", name)
	}
	for _, c := range strings.Split(n, "/") {
		switch c {
		case "..":
			return "", errdefs.Invalid("backup: entry %q: path climbs with ..", name)
		case "", ".":
			return "", errdefs.Invalid("backup: entry %q: path is not clean", name)
		}
	}
	return n, nil
}

// classify tells which part an entry belongs to; skip is set for the
// directories of the layout itself (backup/, backup/snapshots/...).
func (r *Reader) classify(hdr *tar.Header) (Part, bool, error) {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return Part{}, false, err
	}
	p, ok := r.locate(name)
	if !ok {
		if hdr.Typeflag == tar.TypeDir && (name == "backup" || name == "backup/snapshots" || name == "backup/virtual-machine-snapshots") {
			return Part{}, true, nil
		}
		if name == IndexName {
			return Part{}, false, errdefs.Invalid("backup: %s appears twice", IndexName)
		}
		return Part{}, false, errdefs.Invalid("backup: unexpected entry %q in a %s backup (optimized: %t)", hdr.Name, r.Index.Type, r.Index.Optimized)
	}
	switch p.Kind {
	case PartVolume:
		switch hdr.Typeflag {
		case tar.TypeDir, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		case tar.TypeLink:
			target, err := cleanName(hdr.Linkname)
			if err != nil {
				return Part{}, false, errdefs.Invalid("backup: hard link %q: target: %v", hdr.Name, err)
			}
			tp, ok := r.locate(target)
			if !ok || tp.Kind != PartVolume || tp.Snapshot != p.Snapshot || tp.Path == "" {
				return Part{}, false, errdefs.Invalid("backup: hard link %q points outside its volume (%q)", hdr.Name, hdr.Linkname)
			}
			p.Link = tp.Path
		default:
			if !isRegular(hdr.Typeflag) {
				return Part{}, false, errdefs.Invalid("backup: entry %q has unsupported type %q", hdr.Name, string(hdr.Typeflag))
			}
		}
		if p.Path == "" && hdr.Typeflag != tar.TypeDir {
			return Part{}, false, errdefs.Invalid("backup: %q must be a directory", hdr.Name)
		}
	default:
		if !isRegular(hdr.Typeflag) {
			return Part{}, false, errdefs.Invalid("backup: %q must be a regular file", hdr.Name)
		}
	}
	if hdr.Size < 0 || hdr.Uid < 0 || hdr.Gid < 0 {
		return Part{}, false, errdefs.Invalid("backup: entry %q: negative size or owner", hdr.Name)
	}
	return p, false, nil
}

// locate maps a clean archive name to its part, for the index's type and
// snapshots; ok is false for a name the layout has no place for.
func (r *Reader) locate(name string) (Part, bool) {
	idx := r.Index
	rest, ok := strings.CutPrefix(name, "backup/")
	if !ok {
		return Part{}, false
	}
	vm := idx.Type == TypeVM
	main, snapDir := "container", "snapshots"
	if vm {
		main, snapDir = "virtual-machine", "virtual-machine-snapshots"
	}
	if idx.Optimized {
		if rest == "optimized_header.yaml" {
			return Part{Kind: PartOptimizedHeader}, idx.OptimizedHeader
		}
		base, ok := strings.CutSuffix(rest, ".bin")
		if !ok {
			return Part{}, false
		}
		if s, ok := strings.CutPrefix(base, snapDir+"/"); ok {
			return r.optimizedPart(s, true)
		}
		return r.optimizedPart(base, false)
	}
	// Trees: the instance's volume, or a snapshot's.
	if rest == main {
		return Part{Kind: PartVolume}, true
	}
	if p, ok := strings.CutPrefix(rest, main+"/"); ok {
		return Part{Kind: PartVolume, Path: p}, true
	}
	if vm && rest == "virtual-machine.img" {
		return Part{Kind: PartDisk}, true
	}
	s, ok := strings.CutPrefix(rest, snapDir+"/")
	if !ok {
		return Part{}, false
	}
	snap, path, _ := strings.Cut(s, "/")
	if r.isSnapshot(snap) {
		return Part{Kind: PartVolume, Snapshot: snap, Path: path}, true
	}
	if vm && path == "" {
		if d, ok := strings.CutSuffix(snap, ".img"); ok && r.isSnapshot(d) {
			return Part{Kind: PartDisk, Snapshot: d}, true
		}
	}
	return Part{}, false
}

// optimizedPart parses NAME or NAME_ENC of an optimized stream, NAME the
// volume (a snapshot's when snap is set).
func (r *Reader) optimizedPart(base string, snap bool) (Part, bool) {
	if !snap {
		main := "container"
		if r.Index.Type == TypeVM {
			main = "virtual-machine"
		}
		if base == main {
			return Part{Kind: PartOptimized, Subvolume: "/"}, true
		}
		if enc, ok := strings.CutPrefix(base, main+"_"); ok {
			return subvolumePart("", enc)
		}
		return Part{}, false
	}
	if r.isSnapshot(base) {
		return Part{Kind: PartOptimized, Snapshot: base, Subvolume: "/"}, true
	}
	// The longest snapshot name followed by "_": names may hold "_".
	best := ""
	for _, s := range r.Index.Snapshots {
		if strings.HasPrefix(base, s+"_") && len(base) > len(s)+1 && len(s) > len(best) {
			best = s
		}
	}
	if best == "" {
		return Part{}, false
	}
	return subvolumePart(best, base[len(best)+1:])
}

// subvolumePart decodes a nested subvolume's name, which must be a clean
// relative path.
func subvolumePart(snap, enc string) (Part, bool) {
	sub := decodeSubvolume(enc)
	if sub == "" || strings.HasPrefix(sub, "/") || strings.HasSuffix(sub, "/") {
		return Part{}, false
	}
	for _, c := range strings.Split(sub, "/") {
		if c == "" || c == "." || c == ".." {
			return Part{}, false
		}
	}
	return Part{Kind: PartOptimized, Snapshot: snap, Subvolume: "/" + sub}, true
}

func (r *Reader) isSnapshot(name string) bool {
	for _, s := range r.Index.Snapshots {
		if s == name {
			return true
		}
	}
	return false
}
