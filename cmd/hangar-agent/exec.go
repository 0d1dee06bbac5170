package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// process is an exec'd command.
type process struct {
	pid    int
	master *os.File // terminal master, nil without a terminal
}

func (p *process) resize(w, h int) {
	if p.master == nil || w <= 0 || h <= 0 {
		return
	}
	_ = unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(w), Row: uint16(h)})
}

// nopCloser keeps the terminal open when the daemon closes stdin.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (a *agent) exec(s *session, ch uint32, req vmagent.Exec) {
	if len(req.Args) == 0 {
		s.replyErr(ch, fmt.Errorf("%w: no command", errInvalid))
		return
	}
	cwd := req.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if st, err := os.Stat(cwd); err != nil || !st.IsDir() {
		if !req.CwdOptional {
			s.replyErr(ch, fmt.Errorf("cwd %s: not a directory", cwd))
			return
		}
		cwd = "/"
	}
	bin, lookErr := lookPath(req.Args[0], req.Env)
	if lookErr != nil {
		// As a shell would: the message on stderr, the code as the exit.
		code := lookErr.(*lookupError).code
		s.reply(ch, vmagent.MsgStarted, vmagent.Started{})
		_ = s.write(vmagent.MsgStderr, ch, []byte(lookErr.Error()+"\n"))
		_ = s.write(vmagent.MsgStdout, ch, nil)
		_ = s.write(vmagent.MsgStderr, ch, nil)
		s.reply(ch, vmagent.MsgExit, vmagent.Exit{Code: code})
		return
	}
	sys := &syscall.SysProcAttr{
		Setsid:     true,
		Credential: &syscall.Credential{Uid: req.UID, Gid: req.GID, NoSetGroups: req.UID == 0},
	}
	var (
		childFiles []*os.File
		outputs    []*os.File // our ends, read to Stdout/Stderr frames
		stdin      io.WriteCloser
		master     *os.File
	)
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	if req.TTY {
		m, slave, err := openPTY()
		if err != nil {
			s.replyErr(ch, err)
			return
		}
		master = m
		if req.Width > 0 && req.Height > 0 {
			(&process{master: m}).resize(req.Width, req.Height)
		}
		childFiles = []*os.File{slave, slave, slave}
		outputs = []*os.File{m}
		stdin = nopCloser{m}
		sys.Setctty, sys.Ctty = true, 0
	} else {
		inR, inW, err := os.Pipe()
		if err != nil {
			s.replyErr(ch, err)
			return
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			closeAll([]*os.File{inR, inW})
			s.replyErr(ch, err)
			return
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			closeAll([]*os.File{inR, inW, outR, outW})
			s.replyErr(ch, err)
			return
		}
		childFiles = []*os.File{inR, outW, errW}
		outputs = []*os.File{outR, errR}
		stdin = inW
	}
	fds := make([]uintptr, len(childFiles))
	for i, f := range childFiles {
		fds[i] = f.Fd()
	}
	pid, err := a.reaper.start(bin, req.Args, &syscall.ProcAttr{Dir: cwd, Env: req.Env, Files: fds, Sys: sys})
	if req.TTY {
		childFiles[0].Close()
	} else {
		closeAll(childFiles)
	}
	if err != nil {
		closeAll(outputs)
		stdin.Close()
		s.replyErr(ch, fmt.Errorf("start %s: %w", req.Args[0], err))
		return
	}
	proc := &process{pid: pid, master: master}
	c := &channel{stdin: newInputQueue(stdin), proc: proc}
	s.put(ch, c)
	s.reply(ch, vmagent.MsgStarted, vmagent.Started{Pid: pid})

	var wg sync.WaitGroup
	types := []byte{vmagent.MsgStdout, vmagent.MsgStderr}
	for i, f := range outputs {
		wg.Add(1)
		go func(f *os.File, t byte) {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := f.Read(buf)
				if n > 0 {
					_ = s.write(t, ch, append([]byte(nil), buf[:n]...))
				}
				if err != nil {
					return
				}
			}
		}(f, types[i])
	}
	go func() {
		code := a.reaper.wait(pid)
		if master != nil {
			// Background processes may keep the terminal open: give the
			// output a moment to drain, then stop reading.
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(200 * time.Millisecond):
				master.SetReadDeadline(time.Now())
			}
		}
		wg.Wait()
		closeAll(outputs)
		c.stdin.close()
		_ = s.write(vmagent.MsgStdout, ch, nil)
		if master == nil {
			_ = s.write(vmagent.MsgStderr, ch, nil)
		}
		s.reply(ch, vmagent.MsgExit, vmagent.Exit{Code: code})
		s.drop(ch)
	}()
}

// openPTY opens a new terminal pair on the guest's devpts.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	sl, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open pty: %w", err)
	}
	return m, sl, nil
}
