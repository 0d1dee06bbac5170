package qemu

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// A saved VM state may be compressed (driver.Compression): QEMU writes
// its migration stream into a pipe, and a goroutine compresses what it
// reads into the file; a restore decompresses the file into a pipe that
// QEMU reads as -incoming. Neither direction goes through a temporary
// file. The format is told by the stream's own magic, so a reader needs
// no header for it: QEMU's stream opens with "QEVM", a zstd frame with
// 28 b5 2f fd, an LZ4 frame with 04 22 4d 18.

var (
	magicQEMU = []byte("QEVM")
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicLZ4  = []byte{0x04, 0x22, 0x4d, 0x18}
)

// sockBuf is the socket buffer asked for each way.
const sockBuf = 4 << 20

// codecBuf is the copy buffer between the socket and the (de)compressor.
const codecBuf = 1 << 20

// newPipe is a one-way byte stream between QEMU and the daemon: a unix
// socket pair (QEMU takes an fd: migration on a socket as its socket
// channel, its usual migration path), with bigger buffers than a pipe's
// 64 KiB.
func newPipe() (r, w *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	for _, fd := range fds {
		// Best effort: the defaults work, only slower.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sockBuf)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, sockBuf)
	}
	// Non-blocking, so that Go's poller serves the daemon's end and a
	// Close stops a read or write in progress; QEMU sets its own end's
	// mode.
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return nil, nil, err
		}
	}
	_ = unix.Shutdown(fds[0], unix.SHUT_WR)
	_ = unix.Shutdown(fds[1], unix.SHUT_RD)
	return os.NewFile(uintptr(fds[0]), "state-r"), os.NewFile(uintptr(fds[1]), "state-w"), nil
}

// compressor wraps w in c's encoder.
func compressor(w io.Writer, c driver.Compression) (io.WriteCloser, error) {
	switch c.Algorithm {
	case driver.CompressZstd:
		// klauspost's encoder has four speeds; EncoderLevelFromZstd maps
		// the 1-19 scale onto them.
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.Level)),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithLowerEncoderMem(false))
	case driver.CompressLZ4:
		zw := lz4.NewWriter(w)
		level := lz4.Fast
		if c.Level > 0 {
			level = lz4.CompressionLevel(1 << (8 + c.Level - 1))
		}
		if err := zw.Apply(lz4.CompressionLevelOption(level), lz4.BlockSizeOption(lz4.Block4Mb),
			lz4.ConcurrencyOption(runtime.GOMAXPROCS(0))); err != nil {
			return nil, err
		}
		return zw, nil
	}
	return nil, errdefs.Invalid("compression %q: unknown algorithm", c.Algorithm)
}

// stateSink is where QEMU writes a state into f (at f's offset): f itself
// when c is none, else a pipe whose reader compresses into f. The caller
// hands qemuEnd to QEMU (getfd), closes its own copy with closeOurs once
// QEMU has it, and calls wait when the migration is over (ok: it
// completed) for the compressor's result; wait(false) stops it.
type stateSink struct {
	qemuEnd *os.File
	pr      *os.File
	done    chan error
}

func newStateSink(f *os.File, c driver.Compression) (*stateSink, error) {
	if c.IsZero() {
		return &stateSink{qemuEnd: f}, nil
	}
	pr, pw, err := newPipe()
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(f, codecBuf)
	enc, err := compressor(bw, c)
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	s := &stateSink{qemuEnd: pw, pr: pr, done: make(chan error, 1)}
	go func() {
		_, err := io.CopyBuffer(enc, pr, make([]byte, codecBuf))
		if cerr := enc.Close(); err == nil {
			err = cerr
		}
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		s.done <- err
	}()
	return s, nil
}

// closeOurs closes the daemon's copy of QEMU's end: the compressor sees
// the stream's end when QEMU closes its own.
func (s *stateSink) closeOurs() {
	if s.pr != nil {
		s.qemuEnd.Close()
	}
}

// wait waits for the compressor to have written all of the stream (ok)
// or stops it.
func (s *stateSink) wait(ok bool) error {
	if s.pr == nil {
		return nil
	}
	if !ok {
		// QEMU may keep its end until closefd: stop the reader.
		s.pr.Close()
		<-s.done
		return nil
	}
	err := <-s.done
	s.pr.Close()
	if err != nil {
		return fmt.Errorf("compress the state: %w", err)
	}
	return nil
}

// stateSource is what QEMU reads a state from: f itself (at its offset)
// for an uncompressed stream, else the reading end of a pipe a goroutine
// decompresses f into. close ends the goroutine (once QEMU has loaded the
// state or failed to) and returns its error, if any.
type stateSource struct {
	qemuEnd *os.File
	pw      *os.File
	done    chan error
}

// sniffState reads the 4 bytes at f's offset, leaving the offset alone.
func sniffState(f *os.File) ([]byte, int64, error) {
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, err
	}
	b := make([]byte, 4)
	if _, err := f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, errdefs.Invalid("state file %s is truncated", f.Name())
		}
		return nil, 0, err
	}
	return b, off, nil
}

// stateCompression says how the stream at f's offset is compressed.
func stateCompression(f *os.File) (string, error) {
	b, _, err := sniffState(f)
	if err != nil {
		return "", err
	}
	switch {
	case string(b) == string(magicQEMU):
		return driver.CompressNone, nil
	case string(b) == string(magicZstd):
		return driver.CompressZstd, nil
	case string(b) == string(magicLZ4):
		return driver.CompressLZ4, nil
	}
	return "", errdefs.Invalid("state file %s: not a QEMU migration stream, nor a zstd or LZ4 one (starts % x)", f.Name(), b)
}

func newStateSource(f *os.File) (*stateSource, error) {
	alg, err := stateCompression(f)
	if err != nil {
		return nil, err
	}
	if alg == driver.CompressNone {
		return &stateSource{qemuEnd: f}, nil
	}
	var dec io.Reader
	br := bufio.NewReaderSize(f, codecBuf)
	var closeDec func()
	switch alg {
	case driver.CompressZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, err
		}
		dec, closeDec = zr, zr.Close
	case driver.CompressLZ4:
		zr := lz4.NewReader(br)
		if err := zr.Apply(lz4.ConcurrencyOption(-1)); err != nil {
			return nil, err
		}
		dec, closeDec = zr, func() {}
	}
	pr, pw, err := newPipe()
	if err != nil {
		closeDec()
		return nil, err
	}
	s := &stateSource{qemuEnd: pr, pw: pw, done: make(chan error, 1)}
	go func() {
		defer closeDec()
		_, err := io.CopyBuffer(pw, dec, make([]byte, codecBuf))
		// The end of the stream is QEMU's EOF.
		pw.Close()
		s.done <- err
	}()
	return s, nil
}

// closeOurs closes the daemon's copy of QEMU's end once QEMU has its own:
// should QEMU die, the decompressor's writes then fail instead of
// filling a pipe nobody reads.
func (s *stateSource) closeOurs() {
	if s.pw != nil {
		s.qemuEnd.Close()
	}
}

// close ends the decompressor, which is done by the time QEMU has loaded
// the state (QEMU reads to the stream's end), and returns its error.
func (s *stateSource) close() error {
	if s.pw == nil {
		return nil
	}
	s.pw.Close()
	err := <-s.done
	if err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, unix.EPIPE) {
		return fmt.Errorf("decompress the state: %w", err)
	}
	return nil
}
