// Package logtail follows a console log file for attached clients: what
// was appended since the last read, from where the file ended when the
// client attached. The drivers keep their consoles' logs as plain files
// that something else appends to (a container's PID 1, QEMU) and that they
// may truncate (rotation, clearing): a file found shorter than the offset
// was truncated, and is followed again from its start.
//
// It owns nothing but the read offset; it never writes the file.
package logtail

import (
	"errors"
	"io"
	"os"
	"sync"
)

// Tail follows one log file. Its methods are not safe for concurrent use.
type Tail struct {
	path   string
	lock   sync.Locker // held around each read; nil: none
	offset int64       // next byte to hand out
}

// New starts following path at its current end. lock, when not nil, is
// held while the file is read, so that whoever truncates it under the
// same lock never interleaves with a read.
func New(path string, lock sync.Locker) *Tail {
	t := &Tail{path: path, lock: lock}
	t.locked(func() {
		if fi, err := os.Stat(path); err == nil {
			t.offset = fi.Size()
		}
	})
	return t
}

func (t *Tail) locked(f func()) {
	if t.lock != nil {
		t.lock.Lock()
		defer t.lock.Unlock()
	}
	f()
}

// ReadNew reads what the file gained since the last read into p. It
// returns 0, nil when there is nothing new (or no file yet).
func (t *Tail) ReadNew(p []byte) (n int, err error) {
	t.locked(func() { n, err = t.readNew(p) })
	return n, err
}

func (t *Tail) readNew(p []byte) (int, error) {
	f, err := os.Open(t.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() < t.offset {
		t.offset = 0
	}
	if fi.Size() == t.offset {
		return 0, nil
	}
	n, err := f.ReadAt(p, t.offset)
	t.offset += int64(n)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}
