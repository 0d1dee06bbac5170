package logtail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Streaming a log by lines (Stream): the last N lines, found by reading
// the file backwards from its end in blocks (a big log is never read
// whole), then, when following, whatever is appended, until the caller's
// context ends.
//
// Following waits on inotify, not on a timer: a watch on the file
// (modified, attributes changed, moved, deleted) and one on its directory
// (a file created or moved in under the name: the writer rotated it; the
// directory itself removed: the log is gone for good). Every wake-up
// re-reads what the file holds beyond the offset, so events that inotify
// merges or that are not about this file cost a stat and nothing else.
//
//   - Truncation (the file is shorter than the offset: cleared, or rotated
//     by copy and truncate) is followed from the new start. A file
//     truncated and written past the offset again between two looks is
//     told by the last 64 bytes read no longer being before the offset.
//   - Rotation by rename (the name now opens another file) drains the old
//     file to its end, then follows the new one from its start, so nothing
//     the writer put in either is lost.
//   - A missing file is waited for (an instance whose log is not made yet),
//     in a missing directory too (its parent is watched until it comes).
//   - A partial last line is held until its newline comes, and emitted as
//     it is when the stream ends (end of file without follow, truncation,
//     rotation, cancellation).
//
// Lines go to emit in batches, as many as one read brought (reads are of
// up to readSize bytes), without their "\n" (or "\r\n": a serial console's
// line discipline ends lines so). A line longer than MaxLine is emitted in
// pieces of MaxLine bytes. The slices are only valid during the call: emit
// must copy what it keeps.

// MaxLine is the longest line Stream emits whole.
const MaxLine = 1 << 20

// readSize is how much one read asks for: big reads keep the syscall and
// emit counts low at tens of MB/s.
const readSize = 256 << 10

// ErrGone is the error of a followed log whose directory was removed (its
// instance was deleted), or whose directory's parent is not there.
var ErrGone = errors.New("the log was removed")

// LastLines returns the offset where the last n lines of the first size
// bytes of r begin (0 when there are fewer; n < 0: 0; n == 0: size). An
// unterminated last line counts as a line. It reads backwards in blocks,
// so the cost is that of the lines asked for, not of the file.
func LastLines(r io.ReaderAt, size int64, n int) (int64, error) {
	if n < 0 || size <= 0 {
		return 0, nil
	}
	if n == 0 {
		return size, nil
	}
	const block = 64 << 10
	buf := make([]byte, block)
	end := size
	// The newline that ends the last line starts no new line.
	var last [1]byte
	if _, err := r.ReadAt(last[:], size-1); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	if last[0] == '\n' {
		end--
	}
	seen := 0
	for end > 0 {
		start := max(end-block, 0)
		b := buf[:end-start]
		if _, err := r.ReadAt(b, start); err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			seen++
			if seen == n {
				return start + int64(i) + 1, nil
			}
		}
		end = start
	}
	return 0, nil
}

// Stream emits the last tail lines of the log at path (tail < 0: all of
// it), then with follow every line appended after, until ctx ends (then it
// returns nil) or the log's directory is removed (ErrGone). Without follow
// a missing file is an empty log. With follow, emit is called once the
// tail is out even when it had no line (with none): the caller then knows
// the stream is set up and can answer its client before the next line,
// which may be long in coming. An error from emit ends the stream and is
// returned.
func Stream(ctx context.Context, path string, tail int, follow bool, emit func(lines [][]byte) error) error {
	s := &stream{path: path, emit: emit, buf: make([]byte, MaxLine+readSize)}
	if follow {
		w, err := newWatcher(ctx, path)
		if err != nil {
			return err
		}
		defer w.close()
		s.w = w
	}
	defer s.closeFile()
	if err := s.open(); err != nil {
		return err
	}
	if s.f != nil {
		st, err := s.f.Stat()
		if err != nil {
			return fmt.Errorf("stream %s: %w", path, err)
		}
		if s.off, err = LastLines(s.f, st.Size(), tail); err != nil {
			return fmt.Errorf("stream %s: %w", path, err)
		}
	}
	if err := s.drain(); err != nil {
		return err
	}
	if !follow {
		return s.flush()
	}
	if !s.emitted {
		if err := s.emit(nil); err != nil {
			return err
		}
	}
	for {
		switch err := s.w.wait(); {
		case errors.Is(err, errCanceled):
			if err := s.drain(); err != nil {
				return err
			}
			return s.flush()
		case err != nil:
			return err
		}
		if err := s.check(); err != nil {
			return err
		}
		if err := s.drain(); err != nil {
			return err
		}
	}
}

type stream struct {
	path    string
	emit    func([][]byte) error
	emitted bool // emit was called
	w       *watcher

	f     *os.File // nil: no file yet
	ino   uint64
	off   int64  // next byte of f to read
	buf   []byte // pending partial line, then room for a read
	pend  int    // bytes of a partial line at the start of buf
	lines [][]byte
	// mark is the last bytes read, those before off: a file truncated
	// and written past off again between two looks is told from one
	// that grew by them no longer being there.
	mark    [64]byte
	markLen int
}

// open opens the file at path, if there is one.
func (s *stream) open() error {
	f, err := os.Open(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("stream %s: %w", s.path, err)
	}
	s.f, s.ino, s.off, s.markLen = f, inode(st), 0, 0
	return nil
}

func (s *stream) closeFile() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// drain reads f from the offset to its end, emitting its complete lines.
func (s *stream) drain() error {
	if s.f == nil {
		return nil
	}
	for {
		n, err := s.f.ReadAt(s.buf[s.pend:s.pend+readSize], s.off)
		if n > 0 {
			s.off += int64(n)
			s.markLen = copy(s.mark[:], s.buf[max(0, s.pend+n-len(s.mark)):s.pend+n])
			if err := s.split(s.pend + n); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", s.path, err)
		}
	}
}

// split emits the complete lines of buf[:n] and keeps the rest pending.
func (s *stream) split(n int) error {
	b := s.buf[:n]
	s.lines = s.lines[:0]
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		s.lines = appendPieces(s.lines, trimCR(b[:i]))
		b = b[i+1:]
	}
	for len(b) >= MaxLine {
		// No newline in MaxLine bytes: the line goes out in pieces.
		s.lines = append(s.lines, b[:MaxLine])
		b = b[MaxLine:]
	}
	if len(s.lines) > 0 {
		s.emitted = true
		if err := s.emit(s.lines); err != nil {
			return err
		}
	}
	s.pend = copy(s.buf, b)
	return nil
}

// flush emits the pending partial line, if any.
func (s *stream) flush() error {
	if s.pend == 0 {
		return nil
	}
	s.lines = appendPieces(s.lines[:0], trimCR(s.buf[:s.pend]))
	s.pend = 0
	return s.emit(s.lines)
}

// appendPieces appends line, in pieces of MaxLine bytes if it is longer.
func appendPieces(lines [][]byte, line []byte) [][]byte {
	for len(line) > MaxLine {
		lines = append(lines, line[:MaxLine])
		line = line[MaxLine:]
	}
	return append(lines, line)
}

// check notices the file's creation, a rotation or a truncation, and
// moves the offset to what is to be read next.
func (s *stream) check() error {
	hadDir := s.w.dirWD >= 0
	if err := s.w.watchDir(); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	st, err := os.Stat(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if _, derr := os.Stat(filepath.Dir(s.path)); errors.Is(derr, os.ErrNotExist) && hadDir {
			return fmt.Errorf("stream %s: %w", s.path, ErrGone)
		}
		return nil // not there (yet, or again): wait for it
	case err != nil:
		return fmt.Errorf("stream %s: %w", s.path, err)
	}
	if s.f == nil || inode(st) != s.ino {
		// Created, or rotated: what the writer put in the old file
		// before it moved to the new one is read first.
		if err := s.drain(); err != nil {
			return err
		}
		if err := s.flush(); err != nil {
			return err
		}
		s.closeFile()
		if err := s.open(); err != nil {
			return err
		}
		return s.w.rewatch()
	}
	fst, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("stream %s: %w", s.path, err)
	}
	truncated := fst.Size() < s.off
	if !truncated && s.markLen > 0 {
		var b [len(s.mark)]byte
		n, err := s.f.ReadAt(b[:s.markLen], s.off-int64(s.markLen))
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("stream %s: %w", s.path, err)
		}
		truncated = !bytes.Equal(b[:n], s.mark[:s.markLen])
	}
	if truncated {
		if err := s.flush(); err != nil {
			return err
		}
		s.off, s.markLen = 0, 0
	}
	return nil
}

func trimCR(b []byte) []byte {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		return b[:len(b)-1]
	}
	return b
}

func inode(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// errCanceled is what wait returns once the stream's context ended.
var errCanceled = errors.New("canceled")

// watcher is an inotify instance watching one file and its directory.
type watcher struct {
	ctx    context.Context
	path   string
	fd     int      // the inotify descriptor
	in     *os.File // the same, in Go's poller (never call its Fd: that makes it blocking)
	fileWD int      // -1: no file watched
	dirWD  int      // -1: the directory is not there yet (its parent is watched)
	stop   func() bool
	buf    []byte
}

const (
	fileMask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE | unix.IN_MOVE_SELF | unix.IN_DELETE_SELF
	// No IN_MODIFY here: a directory watch reports every file's writes,
	// and a VM directory has a busy neighbour (qemu.log, console.log).
	dirMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR
	// The parent's entries come and go: the directory among them.
	parentMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_ONLYDIR
)

func newWatcher(ctx context.Context, path string) (*watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("follow %s: inotify: %w", path, err)
	}
	// Non-blocking, so os.NewFile puts it in the runtime's poller: a
	// read deadline then wakes a wait when ctx ends.
	w := &watcher{ctx: ctx, path: path, fd: fd, in: os.NewFile(uintptr(fd), "inotify"), fileWD: -1, dirWD: -1, buf: make([]byte, 16<<10)}
	// The directory's parent is watched first, always: it says when the
	// directory comes (an instance never started) and when it goes. The
	// directory's own IN_DELETE_SELF is not enough: the kernel sends it
	// only once the last reference to the directory's dentry is dropped,
	// which may be long after the rmdir. Then the directory is tried, so
	// one made in between is not missed.
	parent := filepath.Dir(filepath.Dir(path))
	if _, err := unix.InotifyAddWatch(fd, parent, parentMask); err != nil {
		w.in.Close()
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("follow %s: %w", path, ErrGone)
		}
		return nil, fmt.Errorf("follow %s: watch %s: %w", path, parent, err)
	}
	if err := w.watchDir(); err != nil && !errors.Is(err, unix.ENOENT) {
		w.in.Close()
		return nil, err
	}
	w.stop = context.AfterFunc(ctx, func() { _ = w.in.SetReadDeadline(time.Now()) })
	return w, nil
}

// watchDir watches the file's directory, and the file, unless it does
// already. A missing directory is unix.ENOENT.
func (w *watcher) watchDir() error {
	if w.dirWD >= 0 {
		return nil
	}
	wd, err := unix.InotifyAddWatch(w.fd, filepath.Dir(w.path), dirMask)
	if errors.Is(err, unix.ENOENT) {
		return err
	}
	if err != nil {
		return fmt.Errorf("follow %s: watch directory: %w", w.path, err)
	}
	w.dirWD = wd
	return w.rewatch()
}

// rewatch watches the file the path names now (after a rotation the old
// watch follows the old file).
func (w *watcher) rewatch() error {
	if w.fileWD >= 0 {
		_, _ = unix.InotifyRmWatch(w.fd, uint32(w.fileWD))
		w.fileWD = -1
	}
	wd, err := unix.InotifyAddWatch(w.fd, w.path, fileMask)
	if errors.Is(err, unix.ENOENT) {
		return nil // not there yet: the directory watch says when it is
	}
	if err != nil {
		return fmt.Errorf("follow %s: watch: %w", w.path, err)
	}
	w.fileWD = wd
	return nil
}

// wait blocks until inotify has something (what does not matter: the
// caller looks at the file again) or ctx ends.
func (w *watcher) wait() error {
	if w.ctx.Err() != nil {
		return errCanceled
	}
	_, err := w.in.Read(w.buf)
	if w.ctx.Err() != nil {
		return errCanceled
	}
	if err != nil {
		return fmt.Errorf("follow %s: read inotify: %w", w.path, err)
	}
	return nil
}

func (w *watcher) close() {
	w.stop()
	w.in.Close()
}
