package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// readyAgent returns the connection to a running VM's agent once it is up.
func (d *Driver) readyAgent(ctx context.Context, id string) (*agentConn, error) {
	v := d.get(id)
	if v == nil {
		return nil, driver.ErrNotRunning
	}
	ac := v.agentConn()
	if ac == nil {
		return nil, errdefs.Invalid("this needs the guest agent, and this VM (booted from a disk image) has none")
	}
	if err := ac.waitReady(ctx); err != nil {
		return nil, fmt.Errorf("guest agent: %w", err)
	}
	return ac, nil
}

// Exec runs a process in the guest through the agent.
func (d *Driver) Exec(ctx context.Context, id string, spec driver.ExecSpec) (driver.Process, error) {
	ac, err := d.readyAgent(ctx, id)
	if err != nil {
		return nil, err
	}
	p := &process{ac: ac, done: make(chan struct{})}
	// Our own copies of the caller's files: it closes its copies once
	// Exec returns.
	dup := func(f *os.File) (*os.File, error) {
		if f == nil {
			return nil, nil
		}
		fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), f.Name()), nil
	}
	var in io.ReadCloser
	var out, errw io.WriteCloser
	if spec.TTY {
		// Non-blocking, so that Go polls them: closing our end must wake
		// the goroutine reading it, and give the caller's end EOF.
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return nil, err
		}
		p.tty = os.NewFile(uintptr(fds[0]), "vm-tty")
		peer := os.NewFile(uintptr(fds[1]), "vm-tty-peer")
		in, out = peer, peer
	} else {
		var files [3]*os.File
		for i, f := range []*os.File{spec.Stdin, spec.Stdout, spec.Stderr} {
			if files[i], err = dup(f); err != nil {
				for _, c := range files {
					if c != nil {
						c.Close()
					}
				}
				return nil, err
			}
		}
		if files[0] != nil {
			in = files[0]
		}
		if files[1] != nil {
			out = files[1]
		}
		if files[2] != nil {
			errw = files[2]
		}
	}
	closeAll := func() {
		for _, c := range []io.Closer{in, out, errw} {
			if c != nil && c != io.Closer(nil) {
				c.Close()
			}
		}
		if p.tty != nil {
			p.tty.Close()
		}
	}
	ch, q, err := ac.open()
	if err != nil {
		closeAll()
		return nil, err
	}
	p.ch = ch
	req := vmagent.Exec{
		Args: spec.Args, Env: spec.Env, Cwd: spec.Cwd, CwdOptional: spec.CwdOptional,
		UID: spec.UID, GID: spec.GID, TTY: spec.TTY, Width: spec.Width, Height: spec.Height,
	}
	if err := ac.send(vmagent.MsgExec, ch, req); err != nil {
		ac.release(ch)
		closeAll()
		return nil, err
	}
	f, err := q.pop(ctx)
	if err != nil {
		ac.release(ch)
		closeAll()
		return nil, err
	}
	switch f.Type {
	case vmagent.MsgStarted:
		var st vmagent.Started
		_ = json.Unmarshal(f.Payload, &st)
		p.pid = st.Pid
	case vmagent.MsgError:
		ac.release(ch)
		closeAll()
		return nil, agentError(f)
	default:
		ac.release(ch)
		closeAll()
		return nil, fmt.Errorf("guest agent: unexpected reply %d to exec", f.Type)
	}

	// Input: the caller's stdin (or the terminal's peer) to Stdin frames.
	if in != nil {
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := in.Read(buf)
				if n > 0 {
					if ac.send(vmagent.MsgStdin, ch, append([]byte(nil), buf[:n]...)) != nil {
						return
					}
				}
				if err != nil {
					break
				}
			}
			_ = ac.send(vmagent.MsgStdin, ch, nil)
		}()
	} else {
		_ = ac.send(vmagent.MsgStdin, ch, nil)
	}
	// Output and the exit, in order.
	go func() {
		defer close(p.done)
		defer ac.release(ch)
		var once sync.Once
		closeIn := func() {
			once.Do(func() {
				if in != nil {
					in.Close()
				}
			})
		}
		defer closeIn()
		for {
			f, err := q.pop(context.Background())
			if err != nil {
				p.err = err
				p.code = -1
				break
			}
			var w io.WriteCloser
			switch f.Type {
			case vmagent.MsgStdout:
				w = out
			case vmagent.MsgStderr:
				w = errw
			case vmagent.MsgExit:
				var e vmagent.Exit
				_ = json.Unmarshal(f.Payload, &e)
				p.code = e.Code
			}
			if f.Type == vmagent.MsgExit {
				break
			}
			if w == nil {
				continue
			}
			if len(f.Payload) == 0 {
				if !spec.TTY {
					w.Close()
					if f.Type == vmagent.MsgStdout {
						out = nil
					} else {
						errw = nil
					}
				}
				continue
			}
			_, _ = w.Write(f.Payload)
		}
		for _, w := range []io.WriteCloser{out, errw} {
			if w != nil && !spec.TTY {
				w.Close()
			}
		}
		if spec.TTY {
			// The caller reads EOF from its end once ours is closed.
			closeIn()
		}
	}()
	return p, nil
}

// process is a command running in the guest.
type process struct {
	ac   *agentConn
	ch   uint32
	pid  int
	tty  *os.File
	done chan struct{}
	code int
	err  error
}

// Pid is the process's pid in the guest (it has none on the host).
func (p *process) Pid() int { return p.pid }

func (p *process) Wait() (int, error) {
	<-p.done
	if p.err != nil {
		return -1, fmt.Errorf("exec in VM: %w", p.err)
	}
	return p.code, nil
}

func (p *process) Signal(sig syscall.Signal) error {
	return p.ac.send(vmagent.MsgSignal, p.ch, vmagent.Signal{Signal: int(sig)})
}

func (p *process) Resize(width, height int) error {
	if p.tty == nil {
		return errors.New("no terminal")
	}
	return p.ac.send(vmagent.MsgResize, p.ch, vmagent.Resize{Width: width, Height: height})
}

func (p *process) TTY() *os.File { return p.tty }
