package image

import (
	"errors"
	"fmt"
	"io"
	"math"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Size caps: what keeps a tar bomb (a 1 MiB gzip of zeros declaring 1 GiB,
// a 2.5 KiB GNU sparse tar declaring a 1 TiB file, a squashfs whose files
// all share one huge block) from filling the images filesystem.
//
// Every unpack of one image (an upload, a shifted tree built later, an
// OCI image's layers together, a squashfs) gets one sizeCap, whose limit
// is images.max_unpacked_size when the server sets it, else the smaller
// of defaultUnpackedCeiling and half the space free on the images
// filesystem at the start of that unpack: enough for any real image on a
// host that can hold it, and a bomb stops with half the free space left
// for instances and the database. The cap is checked three ways, each
// against the full limit:
//
//   - files: the apparent size of every regular file, as its header
//     declares it, counted before the file is created. A sparse file
//     counts its apparent size, not the blocks it takes: the declared size
//     is known before anything is written (so a 1 TiB sparse entry fails
//     at its header), is the same on every filesystem, and is what a copy
//     of the tree (an export, a VM's ext4 disk, a backup) writes.
//     Hardlinks share their target's inode and count nothing; a file that
//     a later entry or OCI layer replaces still counts.
//   - stream: the decompressed bytes of every archive read (a gzip bomb
//     stops after N bytes of output, not at disk full, even when its tar
//     holds no file: end-of-archive padding, headers).
//   - raw: the upload's own bytes, for tarball uploads (not disk images,
//     which are stored as they are).
//
// A squashfs is listed (unsquashfs -lln) and the sizes of its files summed
// before it is unpacked (it is unpacked into a scratch tree, then streamed
// through the unpacker: for a moment it takes up to twice the cap). An
// OCI pull whose layers' compressed sizes alone pass the cap is refused
// before anything is fetched. Backups, when they come, unpack through the same
// unpacker and take a sizeCap from Service.newCap like every import.
//
// Exceeding the cap is an invalid-argument error, "image expands beyond
// N", so the edge answers 400 (a pull's operation fails with it), and the
// import's usual cleanup leaves nothing behind.

// defaultUnpackedCeiling is the default cap's fixed part: larger than any
// real container image (CUDA images are ~20 GiB unpacked).
const defaultUnpackedCeiling = 64 << 30

// sizeCap bounds what one image may expand to. A nil cap bounds nothing.
// It is not safe for concurrent use: one unpack owns it.
type sizeCap struct {
	limit int64
	why   string // where the limit comes from, for the error

	files  int64 // apparent bytes of regular files created
	stream int64 // decompressed archive bytes read
	raw    int64 // upload bytes received
}

// tooLargeError is the cap's error. It is of kind invalid argument, and is
// told apart from other read errors so that it is never reported as a
// corrupt archive.
type tooLargeError struct {
	limit int64
	why   string
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("image expands beyond %s (%s)", formatSize(e.limit), e.why)
}

func (e *tooLargeError) Is(target error) bool { return target == errdefs.ErrInvalidArgument }

func (c *sizeCap) exceeded() error { return &tooLargeError{limit: c.limit, why: c.why} }

// asTooLarge returns the cap's error if err carries one, else nil.
func asTooLarge(err error) error {
	var tl *tooLargeError
	if errors.As(err, &tl) {
		return tl
	}
	return nil
}

// again returns a cap of the same limit with nothing counted, for an
// unpack that starts over into a new tree (the first one removed).
func (c *sizeCap) again() *sizeCap {
	if c == nil {
		return nil
	}
	return &sizeCap{limit: c.limit, why: c.why}
}

// addFile counts a regular file's apparent size, before it is created.
func (c *sizeCap) addFile(n int64) error {
	if c == nil {
		return nil
	}
	if n < 0 || n > c.limit-c.files {
		return c.exceeded()
	}
	c.files += n
	return nil
}

// fits checks, without counting it, that n more bytes of files would fit
// (a squashfs's listing, before unsquashfs writes them).
func (c *sizeCap) fits(n int64) error {
	if c == nil {
		return nil
	}
	if n < 0 || n > c.limit-c.files {
		return c.exceeded()
	}
	return nil
}

// reader counts the decompressed bytes read through r, failing once they
// pass the limit.
func (c *sizeCap) reader(r io.Reader) io.Reader {
	if c == nil {
		return r
	}
	return &cappedReader{r: r, n: &c.stream, c: c}
}

type cappedReader struct {
	r io.Reader
	n *int64
	c *sizeCap
}

func (cr *cappedReader) Read(p []byte) (int, error) {
	n, err := cr.r.Read(p)
	*cr.n += int64(n)
	if *cr.n > cr.c.limit {
		return 0, cr.c.exceeded()
	}
	return n, err
}

// addRaw counts upload bytes.
func (c *sizeCap) addRaw(n int) error {
	if c == nil {
		return nil
	}
	c.raw += int64(n)
	if c.raw > c.limit {
		return c.exceeded()
	}
	return nil
}

// SetMaxUnpackedSize gives the service the server's images.max_unpacked_size:
// f returns it in bytes, or 0 when it is not set (the default applies). It
// is read at the start of every unpack, so a change applies to the next.
func (s *Service) SetMaxUnpackedSize(f func() int64) {
	s.maxUnpacked.Store(&f)
}

// newCap returns the cap for one unpack starting now.
func (s *Service) newCap() (*sizeCap, error) {
	if f := s.maxUnpacked.Load(); f != nil {
		if n := (*f)(); n > 0 {
			return &sizeCap{limit: n, why: "the server's images.max_unpacked_size"}, nil
		}
	}
	var st unix.Statfs_t
	if err := unix.Statfs(s.rootfsDir, &st); err != nil {
		return nil, fmt.Errorf("free space of %s: %w", s.rootfsDir, err)
	}
	free := int64(math.MaxInt64)
	if bs := uint64(max(st.Bsize, 1)); st.Bavail < math.MaxInt64/bs {
		free = int64(st.Bavail * bs)
	}
	limit := min(int64(defaultUnpackedCeiling), free/2)
	return &sizeCap{
		limit: limit,
		why:   fmt.Sprintf("images.max_unpacked_size is not set: the smaller of %s and half the %s free on the images filesystem", formatSize(defaultUnpackedCeiling), formatSize(free)),
	}, nil
}

// formatSize writes a size with the largest binary unit that divides it
// ("10GiB"), else with two decimals ("1.50GiB").
func formatSize(n int64) string {
	units := []string{"EiB", "PiB", "TiB", "GiB", "MiB", "KiB"}
	for i, u := range units {
		div := int64(1) << (10 * (len(units) - i))
		if n >= div && n%div == 0 {
			return fmt.Sprintf("%d%s", n/div, u)
		}
	}
	for i, u := range units {
		div := int64(1) << (10 * (len(units) - i))
		if n >= div {
			return fmt.Sprintf("%.2f%s", float64(n)/float64(div), u)
		}
	}
	return fmt.Sprintf("%dB", n)
}
