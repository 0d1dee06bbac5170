package image

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Compression formats, told apart by their magic bytes, never by file name.
const (
	compressionNone  = "none"
	compressionGzip  = "gzip"
	compressionXz    = "xz"
	compressionZstd  = "zstd"
	compressionBzip2 = "bzip2"
)

var (
	magicGzip  = []byte{0x1f, 0x8b, 0x08} // and deflate, the only method
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	// After "BZh" and the block size digit: a block or the end of stream.
	bzip2Block = []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}
	bzip2End   = []byte{0x17, 0x72, 0x45, 0x38, 0x50, 0x90}
	magicUstar = []byte("ustar") // at offset 257 of a tar header
)

// detectCompression names the compression of a stream from its first bytes
// (up to 512; fewer for a short stream).
func detectCompression(head []byte) string {
	if len(head) >= 262 && bytes.Equal(head[257:262], magicUstar) {
		return compressionNone // A tar whose first name happens to look like a magic.
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return compressionGzip
	case bytes.HasPrefix(head, magicXz):
		return compressionXz
	case bytes.HasPrefix(head, magicZstd):
		return compressionZstd
	case len(head) >= 10 && bytes.HasPrefix(head, magicBzip2) && head[3] >= '1' && head[3] <= '9' &&
		(bytes.Equal(head[4:10], bzip2Block) || bytes.Equal(head[4:10], bzip2End)):
		return compressionBzip2
	}
	return compressionNone
}

// decompress returns the decompressed stream of r, whatever its compression,
// and a function releasing the decompressor. A stream with a magic but a
// corrupt header is an invalid-argument error. The decompressed bytes count
// against size (a bomb stops at the cap, not at disk full).
func decompress(r io.Reader, size *sizeCap) (io.Reader, func(), string, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512) // Short streams give what there is; errors surface on read.
	format := detectCompression(head)
	nop := func() {}
	switch format {
	case compressionGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nop, format, errdefs.Invalid("corrupt gzip data: %v", err)
		}
		return size.reader(zr), func() { zr.Close() }, format, nil
	case compressionXz:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, nop, format, errdefs.Invalid("corrupt xz data: %v", err)
		}
		return size.reader(xr), nop, format, nil
	case compressionZstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nop, format, errdefs.Invalid("corrupt zstd data: %v", err)
		}
		return size.reader(zr), zr.Close, format, nil
	case compressionBzip2:
		return size.reader(bzip2.NewReader(br)), nop, format, nil
	}
	return size.reader(br), nop, format, nil
}
