package dnsmasq

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/cloexec"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/osthread"
)

// Restart pacing: the first restart comes after backoffMin, each
// consecutive failure doubles the wait up to backoffMax, and a run that
// lasted stableRun starts the count again.
const (
	backoffMin = 100 * time.Millisecond
	backoffMax = 10 * time.Second
	stableRun  = 30 * time.Second
)

// readyTimeout bounds a restart's wait for dnsmasq to be up (Start's is
// its ctx's).
const readyTimeout = 30 * time.Second

// stopWait is how long Stop gives dnsmasq to exit on SIGTERM before
// SIGKILL.
const stopWait = 5 * time.Second

// logRotateSize is the size over which dnsmasq.log is moved to
// dnsmasq.log.1 at a (re)start, which bounds it to about twice that.
const logRotateSize = 1 << 20

// outputMax bounds what is kept of dnsmasq's start-up output.
const outputMax = 4096

// Server is one supervised dnsmasq. Its methods are safe for concurrent use.
type Server struct {
	cfg *resolved
	log *slog.Logger

	ctx    context.Context // cancelled by Stop
	cancel context.CancelFunc
	done   chan struct{} // closed when the supervisor has returned

	mu       sync.Mutex
	hosts    []Host
	cur      *run // the running dnsmasq; nil between runs
	dirty    bool // hosts changed between runs: reload the next once recorded
	stopping bool
}

// run is one dnsmasq process.
type run struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed once reaped; err then holds the status
	err     error
}

// servers holds the Dirs served in this process, so that a second Start on
// the same Dir is refused instead of killing the first's dnsmasq as stale
// (its supervisor would then restart it, and the two would fight).
var (
	serversMu sync.Mutex
	servers   = map[string]bool{}
)

// Start validates cfg and hosts, ends any dnsmasq a previous daemon left
// for cfg.Dir, writes the config and hosts files and starts dnsmasq, and
// returns once dnsmasq has bound its sockets (or failed to, with its own
// message). From then on the Server restarts dnsmasq whenever it dies,
// until Stop. ctx bounds the start only, not the Server's life.
func Start(ctx context.Context, cfg Config, hosts []Host, log *slog.Logger) (*Server, error) {
	rc, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	hosts, err = rc.checkHosts(hosts)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	serversMu.Lock()
	if servers[rc.Dir] {
		serversMu.Unlock()
		return nil, errdefs.Conflict("dnsmasq for %s already runs", rc.Dir)
	}
	servers[rc.Dir] = true
	serversMu.Unlock()
	s := &Server{cfg: rc, log: log.With("bridge", rc.Bridge), hosts: hosts, done: make(chan struct{})}
	r, err := s.setup(ctx)
	if err != nil {
		s.unregister()
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.cur = r
	go s.supervise(r)
	return s, nil
}

// setup prepares Dir and starts the first dnsmasq.
func (s *Server) setup(ctx context.Context) (*run, error) {
	c := s.cfg
	if err := os.MkdirAll(c.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("dnsmasq dir: %w", err)
	}
	// Dir is ours: make sure the unprivileged dnsmasq can search it. What
	// is above it belongs to the caller and is only checked.
	if fi, err := os.Stat(c.Dir); err == nil && fi.Mode().Perm()&0o011 != 0o011 {
		if err := os.Chmod(c.Dir, fi.Mode().Perm()|0o011); err != nil {
			return nil, fmt.Errorf("dnsmasq dir: %w", err)
		}
	}
	if err := checkReachable(c.Dir, c.uid, c.gid); err != nil {
		return nil, fmt.Errorf("dnsmasq dir: %w", err)
	}
	if err := killStale(c.path(filePid), c.path(fileConf)); err != nil {
		return nil, err
	}
	if err := writeAtomic(c.path(fileConf), c.render()); err != nil {
		return nil, err
	}
	if err := c.writeHosts(s.hosts); err != nil {
		return nil, err
	}
	return s.launch(ctx)
}

// launch starts one dnsmasq and waits until it is up.
//
// Being up is seen without polling: dnsmasq's stdout and stderr are the
// write end of a pipe, which dnsmasq replaces with /dev/null once it has
// bound its sockets, opened its leases and log files and written its pid
// file, and which it closes by exiting if it fails before that (its
// error then is what came through the pipe). So at end of file, the pid
// file naming the child means up; anything else means failed.
//
// That point also makes reloads safe: dnsmasq reads the hosts files for
// the first time after it, so a SIGHUP sent from then on either reaches
// its handler or comes before that first read.
func (s *Server) launch(ctx context.Context) (*run, error) {
	c := s.cfg
	os.Remove(c.path(filePid))
	rotateLog(c.path(fileLog))
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start dnsmasq: %w", err)
	}
	defer pr.Close()
	cmd := exec.Command(c.binary, "--keep-in-foreground", "--conf-file="+c.path(fileConf))
	cmd.Env = []string{} // a fresh environment: none of the daemon's
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = pw, pw
	// Its own session: no signal meant for the daemon's process group or
	// terminal reaches it. No Pdeathsig: that would tie dnsmasq to the
	// OS thread that forked it (a throwaway thread for NetNS), not to the
	// daemon; a dnsmasq orphaned by a killed daemon is replaced at the
	// next Start instead.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// dnsmasq may outlive the daemon: no descriptor of the daemon's that
	// lacks close-on-exec may follow it.
	if err := cloexec.From(3); err != nil {
		pw.Close()
		return nil, fmt.Errorf("start dnsmasq: %w", err)
	}
	err = s.startIn(cmd)
	pw.Close()
	if err != nil {
		return nil, fmt.Errorf("start dnsmasq: %w", err)
	}
	r := &run{cmd: cmd, started: time.Now(), exited: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.exited)
	}()

	outc := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(pr, outputMax))
		io.Copy(io.Discard, pr) // to the end: the signal is end of file
		outc <- strings.TrimSpace(string(b))
	}()
	var out string
	select {
	case out = <-outc:
	case <-ctx.Done():
		s.kill(r)
		return nil, fmt.Errorf("start dnsmasq: %w", ctx.Err())
	}
	if pidFileNames(c.path(filePid), cmd.Process.Pid) {
		s.log.Debug("dnsmasq up", "pid", cmd.Process.Pid)
		return r, nil
	}
	<-r.exited // it wrote no pid file: it is exiting, or did
	if out == "" {
		out = tail(c.path(fileLog))
	}
	return nil, fmt.Errorf("dnsmasq for %s: %v: %s", c.Bridge, r.err, out)
}

// startIn starts cmd in the configured network namespace. A child is
// created in its parent thread's namespaces, so the fork happens on a
// throwaway thread that entered NetNS, never on one the runtime reuses.
func (s *Server) startIn(cmd *exec.Cmd) error {
	if s.cfg.NetNS == "" {
		return cmd.Start()
	}
	var err error
	osthread.Throwaway(func() {
		fd, oerr := unix.Open(s.cfg.NetNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if oerr != nil {
			err = fmt.Errorf("netns %s: %w", s.cfg.NetNS, oerr)
			return
		}
		defer unix.Close(fd)
		if serr := unix.Setns(fd, unix.CLONE_NEWNET); serr != nil {
			err = fmt.Errorf("enter netns %s: %w", s.cfg.NetNS, serr)
			return
		}
		err = cmd.Start()
	})
	return err
}

// supervise waits for each run to end and starts the next, until Stop.
func (s *Server) supervise(r *run) {
	defer close(s.done)
	backoff := backoffMin
	for {
		<-r.exited
		s.mu.Lock()
		s.cur = nil
		stopping := s.stopping
		s.mu.Unlock()
		if stopping {
			return
		}
		if time.Since(r.started) >= stableRun {
			backoff = backoffMin
		}
		s.log.Warn("dnsmasq exited, restarting", "pid", r.cmd.Process.Pid, "status", r.err,
			"after", backoff, "log", tail(s.cfg.path(fileLog)))
		for {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, backoffMax)
			ctx, cancel := context.WithTimeout(s.ctx, readyTimeout)
			next, err := s.launch(ctx)
			cancel()
			if err == nil {
				r = next
				break
			}
			if s.ctx.Err() != nil {
				return
			}
			s.log.Error("dnsmasq restart failed", "err", err, "retry_in", backoff)
		}
		s.mu.Lock()
		if s.stopping {
			s.mu.Unlock()
			s.kill(r)
			return
		}
		s.cur = r
		if s.dirty {
			s.dirty = false
			s.hup(r)
		}
		s.mu.Unlock()
		s.log.Info("dnsmasq restarted", "pid", r.cmd.Process.Pid)
	}
}

// hup asks r to reread the hosts files. An error means r is exiting,
// and the next run reads the files anew. Called with s.mu held.
func (s *Server) hup(r *run) {
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		s.log.Debug("dnsmasq reload", "err", err)
	}
}

// kill ends r and waits until it is reaped.
func (s *Server) kill(r *run) {
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(stopWait):
		s.log.Warn("dnsmasq ignored SIGTERM, killing", "pid", r.cmd.Process.Pid)
		r.cmd.Process.Kill()
		<-r.exited
	}
}

// SetHosts replaces the hosts: it rewrites the dhcp-hostsfile and the
// addn-hosts file (each atomically) and has dnsmasq reread them (SIGHUP).
// A dnsmasq being restarted reads them when it comes up.
func (s *Server) SetHosts(hosts []Host) error {
	hosts, err := s.cfg.checkHosts(hosts)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return errdefs.Conflict("dnsmasq for %s is stopped", s.cfg.Bridge)
	}
	if err := s.cfg.writeHosts(hosts); err != nil {
		return err
	}
	s.hosts = hosts
	if s.cur != nil {
		s.hup(s.cur)
	} else {
		// Between runs: the next may be past its first read of the files
		// by the time the supervisor records it, which then reloads it.
		s.dirty = true
	}
	return nil
}

// Leases returns the leases of the leases file, typed by the current
// hosts. Hosts with a static address that never asked DHCP have none.
func (s *Server) Leases() ([]Lease, error) {
	s.mu.Lock()
	hosts := s.hosts
	s.mu.Unlock()
	return readLeases(s.cfg.path(fileLeases), hosts)
}

// Pid is the running dnsmasq's pid; 0 between a death and its restart,
// and after Stop.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil {
		return 0
	}
	return s.cur.cmd.Process.Pid
}

// Stop ends dnsmasq and its supervision, and returns once the process is
// reaped. It removes the pid file and nothing else: Dir goes with the
// network. A second Stop does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		<-s.done
		return nil
	}
	s.stopping = true
	r := s.cur
	s.mu.Unlock()
	s.cancel()
	if r != nil {
		s.kill(r)
	}
	<-s.done
	err := os.Remove(s.cfg.path(filePid))
	if errors.Is(err, os.ErrNotExist) {
		err = nil
	}
	s.unregister()
	if err != nil {
		return fmt.Errorf("stop dnsmasq: %w", err)
	}
	s.log.Debug("dnsmasq stopped")
	return nil
}

func (s *Server) unregister() {
	serversMu.Lock()
	delete(servers, s.cfg.Dir)
	serversMu.Unlock()
}

// pidFileNames tells whether the pid file holds pid.
func pidFileNames(path string, pid int) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid)
}

// rotateLog moves a log over logRotateSize aside (one generation kept).
func rotateLog(path string) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > logRotateSize {
		os.Rename(path, path+".1")
	}
}

// tail returns the last lines of dnsmasq's log, for error messages.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const n = 512
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
