package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/driver/logtail"
)

// A VM's console is its first serial port. QEMU serves it on a unix
// socket, console.sock (server, no wait), and keeps the log itself: the
// chardev's logfile= option appends everything the guest prints to
// console.log whether or not anyone is connected. So the log is complete
// with no daemon involved (across a daemon kill -9 too), and attaching
// needs no state to recover:
//
//   - output: an attached client follows console.log from its end at
//     attach time, as a container's does;
//   - input: the daemon connects to console.sock on the first attach and
//     writes every client's input there. QEMU takes one connection at a
//     time, so the connection is shared by all clients of a VM and closed
//     with the last one. While connected QEMU also sends the output down
//     the socket; it is drained and dropped (the log has it), since an
//     undrained socket would stall the guest's serial port.
//
// A daemon killed while clients are attached loses that connection; QEMU
// then listens again and the next attach connects afresh. A VM started
// before consoles were sockets has a plain file chardev: attaching to it
// gives output only.

const fileConsoleSock = "console.sock"

// consoleChardev is the QEMU -chardev value of the serial console.
func consoleChardev(dir string) string {
	return "socket,id=console,server=on,wait=off,path=" + filepath.Join(dir, fileConsoleSock) +
		",logfile=" + filepath.Join(dir, fileConsole) + ",logappend=on"
}

// consoleFollowInterval is how often an attached console looks for new
// output in the log.
const consoleFollowInterval = 50 * time.Millisecond

// consolePort is a VM's shared connection to its console socket.
type consolePort struct {
	mu    sync.Mutex
	conn  net.Conn // nil when not connected, or when QEMU hung up
	users int
}

// acquire connects to the socket if no client holds a connection yet.
func (p *consolePort) acquire(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		c, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			return err
		}
		p.conn = c
		go p.drain(c)
	}
	p.users++
	return nil
}

// drain reads and drops what QEMU sends until the connection ends.
func (p *consolePort) drain(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
	p.mu.Lock()
	if p.conn == c {
		p.conn = nil
	}
	p.mu.Unlock()
	c.Close()
}

func (p *consolePort) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users--
	if p.users == 0 && p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
}

func (p *consolePort) write(b []byte) (int, error) {
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c == nil {
		return 0, fmt.Errorf("console input: %w", driver.ErrNotRunning)
	}
	return c.Write(b)
}

// AttachConsole attaches to a running VM's serial console.
func (d *Driver) AttachConsole(ctx context.Context, id string) (io.ReadWriteCloser, error) {
	dir, err := d.instanceDir(id)
	if err != nil {
		return nil, fmt.Errorf("attach console %s: %w", id, err)
	}
	v := d.get(id)
	if v == nil {
		return nil, fmt.Errorf("attach console %s: %w", id, driver.ErrNotRunning)
	}
	// ClearConsoleLog truncates the log; QEMU appends at the new end.
	c := &attachedConsole{tail: logtail.New(filepath.Join(dir, fileConsole), nil), vm: v, done: make(chan struct{})}
	switch err := v.console.acquire(filepath.Join(dir, fileConsoleSock)); {
	case err == nil:
		c.input = true
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED):
		// No socket (a VM started before consoles were sockets), or
		// QEMU is gone: output only; Read ends with the VM.
	default:
		return nil, fmt.Errorf("attach console %s: %w", id, err)
	}
	return c, nil
}

type attachedConsole struct {
	tail  *logtail.Tail
	vm    *vm
	input bool // holds a share of vm.console

	closeOnce sync.Once
	done      chan struct{}
}

// Read waits for new console output. Once the VM has ended it returns what
// is left in the log, then EOF.
func (c *attachedConsole) Read(p []byte) (int, error) {
	t := time.NewTicker(consoleFollowInterval)
	defer t.Stop()
	for {
		ended := false
		select {
		case <-c.vm.done:
			ended = true
		default:
		}
		n, err := c.tail.ReadNew(p)
		if n > 0 || err != nil {
			return n, err
		}
		if ended {
			return 0, io.EOF
		}
		select {
		case <-c.done:
			return 0, io.EOF
		case <-c.vm.done:
		case <-t.C:
		}
	}
}

// Write sends input to the guest's serial port.
func (c *attachedConsole) Write(p []byte) (int, error) {
	if !c.input {
		return 0, errors.New("this VM's console takes no input (started before VM consoles had input; restart it)")
	}
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	return c.vm.console.write(p)
}

func (c *attachedConsole) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		if c.input {
			c.vm.console.release()
		}
	})
	return nil
}

var _ driver.ConsoleAttacher = (*Driver)(nil)
