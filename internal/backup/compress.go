package backup

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Compression algorithms, as LXD's compression_algorithm names them.
const (
	CompressionNone  = "none"
	CompressionGzip  = "gzip"
	CompressionXz    = "xz"
	CompressionZstd  = "zstd"
	CompressionLzma  = "lzma"
	CompressionBzip2 = "bzip2" // read only: no encoder here
)

// newCompressor wraps w in the named compressor; its Close flushes the
// compressed stream but leaves w open.
func newCompressor(w io.Writer, algo string) (io.WriteCloser, error) {
	switch algo {
	case CompressionNone, "":
		return nopWriteCloser{w}, nil
	case CompressionGzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case CompressionZstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	case CompressionXz:
		return xz.NewWriter(w)
	case CompressionLzma:
		return lzma.NewWriter(w)
	case CompressionBzip2:
		return nil, errdefs.Invalid("backup: compression %q can be read but not written here; use gzip, xz, zstd, lzma or none", algo)
	}
	return nil, errdefs.Invalid("backup: unknown compression algorithm %q", algo)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// Magic bytes, as LXD's DetectCompressionFile tells formats apart.
var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	magicLzma  = []byte{0x5d, 0x00, 0x00} // lc/lp/pb 3/0/2, the only properties lzma(1) writes
	magicUstar = []byte("ustar")          // at offset 257 of a tar header
)

// detectCompression names the compression of a stream from its first
// bytes; a plain tar is recognised by its header, anything else is an
// error.
func detectCompression(head []byte) (string, error) {
	if len(head) >= 262 && bytes.Equal(head[257:262], magicUstar) {
		return CompressionNone, nil
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return CompressionGzip, nil
	case bytes.HasPrefix(head, magicXz):
		return CompressionXz, nil
	case bytes.HasPrefix(head, magicZstd):
		return CompressionZstd, nil
	case bytes.HasPrefix(head, magicBzip2):
		return CompressionBzip2, nil
	case bytes.HasPrefix(head, magicLzma):
		return CompressionLzma, nil
	}
	if len(head) < 512 {
		return "", errdefs.Invalid("backup: truncated archive (%d bytes)", len(head))
	}
	return "", errdefs.Invalid("backup: not a tarball in a known compression (gzip, xz, zstd, bzip2, lzma or none)")
}

// decompress returns the decompressed stream of r and a function that
// releases the decompressor.
func decompress(r io.Reader) (io.Reader, func(), string, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	head, _ := br.Peek(512) // A short stream gives what it has.
	algo, err := detectCompression(head)
	nop := func() {}
	if err != nil {
		return nil, nop, "", err
	}
	corrupt := func(err error) error {
		if isTruncation(err) {
			return truncated(err)
		}
		return errdefs.Invalid("backup: corrupt %s data: %v", algo, err)
	}
	switch algo {
	case CompressionGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nop, algo, corrupt(err)
		}
		zr.Multistream(true)
		return zr, func() { zr.Close() }, algo, nil
	case CompressionXz:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, nop, algo, corrupt(err)
		}
		return xr, nop, algo, nil
	case CompressionZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return nil, nop, algo, corrupt(err)
		}
		return zr, zr.Close, algo, nil
	case CompressionBzip2:
		return bzip2.NewReader(br), nop, algo, nil
	case CompressionLzma:
		lr, err := lzma.NewReader(br)
		if err != nil {
			return nil, nop, algo, corrupt(err)
		}
		return lr, nop, algo, nil
	}
	return br, nop, algo, nil
}
