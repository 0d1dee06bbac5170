package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/driver/logtail"
)

// A container's console is PID 1's standard streams, with no helper
// process and no terminal (a terminal's master side would have to be held
// by someone, and would die with the daemon):
//
//   - output: PID 1's stdout and stderr go to console.log (console.go);
//     attaching follows the log from its current end;
//   - input: PID 1's stdin is a FIFO, console.in in the instance directory,
//     which PID 1 itself holds open for reading and writing, so it never
//     sees EOF and never blocks a writer that comes and goes. Attaching
//     opens it for writing.
//
// Both survive a daemon restart: the log and the FIFO are files, and PID 1
// holds its ends itself.

// consoleFollowInterval is how often an attached console looks for new
// output.
const consoleFollowInterval = 50 * time.Millisecond

func (d *Driver) consoleInPath(id string) string { return filepath.Join(d.dir, id, "console.in") }

// openConsoleInput makes console.in afresh and opens it read-write for PID 1.
func (d *Driver) openConsoleInput(id string) (*os.File, error) {
	p := d.consoleInPath(id)
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := unix.Mkfifo(p, 0o600); err != nil {
		return nil, fmt.Errorf("make console input: %w", err)
	}
	// O_RDWR: open does not wait for a writer, and PID 1, holding a write
	// end itself, never reads EOF when an attached client goes.
	return os.OpenFile(p, os.O_RDWR, 0)
}

// AttachConsole attaches to a running container's console.
func (d *Driver) AttachConsole(ctx context.Context, id string) (io.ReadWriteCloser, error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("attach console %s: %w", id, err)
	}
	if d.lookup(id) == nil {
		return nil, fmt.Errorf("attach console %s: %w", id, driver.ErrNotRunning)
	}
	c := &attachedConsole{d: d, id: id, done: make(chan struct{})}
	// The FIFO's reader is PID 1, so this open does not block. A
	// container started before consoles had input has no FIFO: it is then
	// output only.
	// Opened non-blocking, the FIFO is served by the runtime's poller: a
	// write into a full pipe waits (input is held back, not dropped, as
	// on a terminal) and Close still ends it.
	if in, err := os.OpenFile(d.consoleInPath(id), os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
		c.in = in
	}
	// The rotation (console.go) truncates the log under consoleMu.
	c.tail = logtail.New(d.consolePath(id), &d.consoleMu)
	return c, nil
}

type attachedConsole struct {
	d    *Driver
	id   string
	in   *os.File
	tail *logtail.Tail

	closeOnce sync.Once
	done      chan struct{}
}

// Read waits for new console output.
func (c *attachedConsole) Read(p []byte) (int, error) {
	t := time.NewTicker(consoleFollowInterval)
	defer t.Stop()
	for {
		n, err := c.tail.ReadNew(p)
		if n > 0 || err != nil {
			return n, err
		}
		select {
		case <-c.done:
			return 0, io.EOF
		case <-t.C:
		}
	}
}

// Write sends input to PID 1's stdin.
func (c *attachedConsole) Write(p []byte) (int, error) {
	if c.in == nil {
		return 0, errors.New("this container's console takes no input (started before console input existed; restart it)")
	}
	return c.in.Write(p)
}

func (c *attachedConsole) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		if c.in != nil {
			c.in.Close()
		}
	})
	return nil
}
