package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// port is the virtio-serial port as a blocking descriptor: a read returns
// 0 while no daemon is connected, and a write blocks until one is.
type port struct{ fd int }

func (p port) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(p.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (p port) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Write(p.fd, b[done:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// findPort returns the device of the virtio-serial port named name,
// waiting up to wait for it to show up.
func findPort(name string, wait time.Duration) (string, error) {
	deadline := time.Now().Add(wait)
	for {
		names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err == nil && strings.TrimSpace(string(b)) == name {
				return "/dev/" + filepath.Base(filepath.Dir(n)), nil
			}
		}
		if time.Now().After(deadline) {
			return "", errors.New("no virtio-serial port " + name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// session is the state of one daemon connection: its open channels. A
// Hello (a new daemon connection) ends it: from then on what it had
// running writes nothing, since the new daemon reuses channel numbers.
type session struct {
	w     *vmagent.Writer
	ended atomic.Bool
	mu    sync.Mutex
	chans map[uint32]*channel
}

// errSessionEnded is what a write of an ended session gets.
var errSessionEnded = errors.New("the daemon connection this answers ended")

// write sends a frame on one of the session's channels, unless the
// session ended. A write already under way when a Hello comes is sent:
// the daemon drops frames that come before its Ready.
func (s *session) write(t byte, ch uint32, b []byte) error {
	if s.ended.Load() {
		return errSessionEnded
	}
	return s.w.Write(t, ch, b)
}

// channel is one exec or file upload in progress.
type channel struct {
	stdin  *inputQueue
	proc   *process
	upload *os.File
	put    *vmagent.FilePut
	buf    []byte // a symlink target being received
}

func (a *agent) serve() {
	dev, err := findPort(vmagent.PortName, 30*time.Second)
	if err != nil {
		logf("%v", err)
		a.powerOff(vmagent.WorkloadExit{Code: 1})
	}
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		logf("open %s: %v", dev, err)
		a.powerOff(vmagent.WorkloadExit{Code: 1})
	}
	p := port{fd}
	a.w = vmagent.NewWriter(p)
	a.session.Store(&session{w: a.w, chans: map[uint32]*channel{}})
	if a.failed != nil {
		// The daemon learns that the agent is up (no workload runs),
		// then why the workload never ran, in this order.
		a.sendReadyWithin(2 * time.Second)
		a.powerOff(*a.failed)
	}
	a.sendReady()
	for {
		r := vmagent.NewReader(p)
		for {
			f, err := r.Read()
			if err != nil {
				break
			}
			a.handle(f)
		}
		// No daemon connected: the next one says hello.
		time.Sleep(20 * time.Millisecond)
	}
}

func (a *agent) sendReady() {
	b, _ := json.Marshal(vmagent.Ready{Version: vmagent.Version, WorkloadPid: a.workload})
	go func() { _ = a.w.Write(vmagent.MsgReady, 0, b) }()
}

// sendReadyWithin sends Ready and waits until it is written (a write
// blocks while no daemon is connected), at most d.
func (a *agent) sendReadyWithin(d time.Duration) {
	b, _ := json.Marshal(vmagent.Ready{Version: vmagent.Version, WorkloadPid: a.workload})
	done := make(chan struct{})
	go func() {
		_ = a.w.Write(vmagent.MsgReady, 0, b)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}

func (s *session) reply(ch uint32, t byte, v any) {
	b, _ := json.Marshal(v)
	_ = s.write(t, ch, b)
}

func (s *session) replyErr(ch uint32, err error) {
	e := vmagent.Error{Message: err.Error()}
	switch {
	case errors.Is(err, os.ErrNotExist):
		e.NotFound = true
	case errors.Is(err, os.ErrExist):
		e.Exists = true
	case errors.Is(err, errInvalid):
		e.Invalid = true
	case errors.Is(err, errDisabled):
		e.Disabled = true
	}
	s.reply(ch, vmagent.MsgError, e)
}

var errInvalid = errors.New("invalid request")

// errDisabled answers what an agent with SkipAgent does not serve.
var errDisabled = errors.New("the guest agent is disabled for this instance (skip_guest_agent)")

// served says whether the agent serves requests of type t: with
// SkipAgent, it serves no exec, file or stat request.
func (a *agent) served(t byte) bool {
	if !a.cfg.SkipAgent {
		return true
	}
	switch t {
	case vmagent.MsgExec, vmagent.MsgStdin, vmagent.MsgSignal, vmagent.MsgResize,
		vmagent.MsgFileGet, vmagent.MsgFilePut, vmagent.MsgData, vmagent.MsgFileDelete, vmagent.MsgStat:
		return false
	}
	return true
}

func (a *agent) handle(f vmagent.Frame) {
	s := a.session.Load()
	if !a.served(f.Type) {
		switch f.Type {
		case vmagent.MsgExec, vmagent.MsgFileGet, vmagent.MsgFilePut, vmagent.MsgFileDelete, vmagent.MsgStat:
			// Requests are answered; the frames that follow one
			// (stdin, data) are dropped.
			s.replyErr(f.Channel, errDisabled)
		}
		return
	}
	switch f.Type {
	case vmagent.MsgHello:
		// A new daemon: what the previous one had open is orphaned,
		// and must not answer on the channels the new one opens.
		a.session.Store(&session{w: a.w, chans: map[uint32]*channel{}})
		s.ended.Store(true)
		s.mu.Lock()
		for id, c := range s.chans {
			c.close()
			delete(s.chans, id)
		}
		s.mu.Unlock()
		a.sendReady()
	case vmagent.MsgShutdown:
		var req vmagent.Shutdown
		_ = json.Unmarshal(f.Payload, &req)
		go a.shutdown(req)
	case vmagent.MsgExec:
		var req vmagent.Exec
		if err := json.Unmarshal(f.Payload, &req); err != nil {
			s.replyErr(f.Channel, fmt.Errorf("%w: %v", errInvalid, err))
			return
		}
		a.exec(s, f.Channel, req)
	case vmagent.MsgStdin:
		if c := s.get(f.Channel); c != nil && c.stdin != nil {
			c.stdin.push(f.Payload)
		}
	case vmagent.MsgSignal:
		var req vmagent.Signal
		if c := s.get(f.Channel); c != nil && c.proc != nil && json.Unmarshal(f.Payload, &req) == nil {
			_ = unix.Kill(c.proc.pid, unix.Signal(req.Signal))
		}
	case vmagent.MsgResize:
		var req vmagent.Resize
		if c := s.get(f.Channel); c != nil && c.proc != nil && json.Unmarshal(f.Payload, &req) == nil {
			c.proc.resize(req.Width, req.Height)
		}
	case vmagent.MsgFileGet:
		var req vmagent.FileGet
		if err := json.Unmarshal(f.Payload, &req); err != nil {
			s.replyErr(f.Channel, fmt.Errorf("%w: %v", errInvalid, err))
			return
		}
		go a.fileGet(s, f.Channel, req)
	case vmagent.MsgFilePut:
		var req vmagent.FilePut
		if err := json.Unmarshal(f.Payload, &req); err != nil {
			s.replyErr(f.Channel, fmt.Errorf("%w: %v", errInvalid, err))
			return
		}
		a.filePutStart(s, f.Channel, req)
	case vmagent.MsgData:
		a.filePutData(s, f.Channel, f.Payload)
	case vmagent.MsgNetConfig:
		var req vmagent.NIC
		if err := json.Unmarshal(f.Payload, &req); err != nil {
			s.replyErr(f.Channel, fmt.Errorf("%w: %v", errInvalid, err))
			return
		}
		go func() {
			if err := a.net.add(req); err != nil {
				s.replyErr(f.Channel, err)
				return
			}
			s.reply(f.Channel, vmagent.MsgDone, struct{}{})
		}()
	case vmagent.MsgNetState:
		go func() {
			st, err := netState()
			if err != nil {
				s.replyErr(f.Channel, err)
				return
			}
			s.reply(f.Channel, vmagent.MsgNetState, st)
		}()
	case vmagent.MsgDisk:
		var req vmagent.Disk
		if err := json.Unmarshal(f.Payload, &req); err != nil {
			s.replyErr(f.Channel, fmt.Errorf("%w: %v", errInvalid, err))
			return
		}
		go func() {
			if err := a.plugDisk(req); err != nil {
				s.replyErr(f.Channel, err)
				return
			}
			s.reply(f.Channel, vmagent.MsgDone, struct{}{})
		}()
	case vmagent.MsgIdentity:
		var req vmagent.Identity
		if err := json.Unmarshal(f.Payload, &req); err != nil {
			s.replyErr(f.Channel, fmt.Errorf("%w: %v", errInvalid, err))
			return
		}
		go func() {
			if err := a.reidentify(req); err != nil {
				s.replyErr(f.Channel, err)
				return
			}
			s.reply(f.Channel, vmagent.MsgDone, struct{}{})
		}()
	case vmagent.MsgStat:
		var req vmagent.Stat
		if err := json.Unmarshal(f.Payload, &req); err != nil {
			s.replyErr(f.Channel, fmt.Errorf("%w: %v", errInvalid, err))
			return
		}
		go func() {
			info, err := statPath(req)
			if err != nil {
				s.replyErr(f.Channel, err)
				return
			}
			s.reply(f.Channel, vmagent.MsgStatInfo, info)
		}()
	case vmagent.MsgFileDelete:
		var req vmagent.FileDelete
		if err := json.Unmarshal(f.Payload, &req); err != nil {
			s.replyErr(f.Channel, fmt.Errorf("%w: %v", errInvalid, err))
			return
		}
		if err := fileDelete(req.Path); err != nil {
			s.replyErr(f.Channel, err)
			return
		}
		s.reply(f.Channel, vmagent.MsgDone, struct{}{})
	}
}

func (s *session) get(id uint32) *channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chans[id]
}

func (s *session) put(id uint32, c *channel) {
	s.mu.Lock()
	s.chans[id] = c
	s.mu.Unlock()
}

func (s *session) drop(id uint32) {
	s.mu.Lock()
	delete(s.chans, id)
	s.mu.Unlock()
}

func (c *channel) close() {
	if c.stdin != nil {
		c.stdin.close()
	}
	if c.upload != nil {
		c.upload.Close()
	}
}

// shutdown stops the workload with the asked signal, kills it after the
// timeout, and powers off (watchWorkload does, once the workload is reaped).
func (a *agent) shutdown(req vmagent.Shutdown) {
	pid := a.workload
	if pid <= 0 {
		a.powerOff(vmagent.WorkloadExit{})
	}
	sig := unix.Signal(req.Signal)
	if sig == 0 {
		sig = unix.SIGTERM
	}
	if pid == 1 {
		sig = poweroffSignal(sig)
	}
	_ = unix.Kill(pid, sig)
	if req.TimeoutMs > 0 {
		time.Sleep(time.Duration(req.TimeoutMs) * time.Millisecond)
	}
	_ = unix.Kill(pid, unix.SIGKILL)
}

// inputQueue feeds a process's stdin without ever blocking the port's
// reader: data waits here while the process does not read.
type inputQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	chunks [][]byte
	closed bool
}

func newInputQueue(w io.WriteCloser) *inputQueue {
	q := &inputQueue{}
	q.cond = sync.NewCond(&q.mu)
	go func() {
		defer w.Close()
		for {
			q.mu.Lock()
			for len(q.chunks) == 0 && !q.closed {
				q.cond.Wait()
			}
			if len(q.chunks) == 0 {
				q.mu.Unlock()
				return
			}
			b := q.chunks[0]
			q.chunks = q.chunks[1:]
			q.mu.Unlock()
			if len(b) == 0 { // EOF from the daemon
				return
			}
			if _, err := w.Write(b); err != nil {
				q.close()
				return
			}
		}
	}()
	return q
}

func (q *inputQueue) push(b []byte) {
	q.mu.Lock()
	if !q.closed {
		q.chunks = append(q.chunks, b)
	}
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *inputQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Signal()
}

// poweroffSignal is what asks the init system beside the agent to power
// the machine off: the daemon's stop signal (SIGPWR for inits) makes
// busybox init halt, which in a VM leaves the machine on.
func poweroffSignal(sig unix.Signal) unix.Signal {
	exe, err := os.Readlink("/proc/1/exe")
	if err != nil {
		return sig
	}
	switch filepath.Base(exe) {
	case "busybox":
		return unix.SIGUSR2
	case "systemd":
		return unix.Signal(34 + 4) // SIGRTMIN+4: systemd's poweroff
	}
	return sig
}
