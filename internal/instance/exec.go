package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// ExecRequest is a command to run in a running instance, as LXD's
// InstanceExecPost describes it.
type ExecRequest struct {
	Command     []string
	Environment map[string]string
	// Cwd is the working directory; empty means the HOME the environment
	// ends up with (as LXD does), or "/" when that does not exist.
	Cwd         string
	User, Group uint32
	// TTY runs the command on a terminal; Width and Height size it.
	TTY           bool
	Width, Height int
	// Stdin, Stdout and Stderr (nil: /dev/null) when not TTY.
	Stdin, Stdout, Stderr *os.File
}

// maxTermSize bounds terminal dimensions (the kernel's are 16-bit).
const maxTermSize = 0xffff

// Validate checks a request's fields, naming the one at fault.
func (r ExecRequest) Validate() error {
	if len(r.Command) == 0 || r.Command[0] == "" {
		return errdefs.Invalid("command: must name a program to run")
	}
	for _, a := range r.Command {
		if strings.ContainsRune(a, 0) {
			return errdefs.Invalid("command: arguments cannot contain NUL bytes")
		}
	}
	for k, v := range r.Environment {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return errdefs.Invalid("environment: invalid variable %q", k)
		}
	}
	if r.Cwd != "" && (!path.IsAbs(r.Cwd) || strings.ContainsRune(r.Cwd, 0)) {
		return errdefs.Invalid("cwd: %q is not an absolute path", r.Cwd)
	}
	if r.Width < 0 || r.Height < 0 || r.Width > maxTermSize || r.Height > maxTermSize {
		return errdefs.Invalid("width/height: %dx%d out of range 0..%d", r.Width, r.Height, maxTermSize)
	}
	return nil
}

// CheckExec tells whether name can run a command now. The API asks it
// before handing out websockets, so that a stopped instance is a plain
// error rather than an operation that fails later.
func (s *Service) CheckExec(ctx context.Context, name string) error {
	if err := s.allow(ctx, name, canExec); err != nil {
		return err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	_, status, _ := s.snapshot(in)
	return execableStatus(name, status)
}

func execableStatus(name string, status Status) error {
	switch status {
	case StatusRunning:
		return nil
	case StatusFrozen:
		return errdefs.Invalid("instance %q is frozen", name)
	default:
		return errdefs.Invalid("instance %q is not running", name)
	}
}

// Exec starts req in the instance and returns the running process. The
// instance's operation lock is held only while the process starts: a long
// exec does not block stop, which ends it with the instance.
func (s *Service) Exec(ctx context.Context, name string, req ExecRequest) (Process, error) {
	if err := s.allow(ctx, name, canExec); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return nil, err
	}
	defer in.op.Unlock()
	s.mu.RLock()
	rec, status := in.rec, in.status
	expanded := s.expandedLocked(in)
	s.mu.RUnlock()
	if err := execableStatus(name, status); err != nil {
		return nil, err
	}
	if Type(rec.Type) == TypeVM && agentSkipped(expanded) {
		return nil, errAgentSkipped
	}
	env := execEnvironment(expanded, req)
	spec := driver.ExecSpec{
		Args:  req.Command,
		Env:   envList(env),
		Cwd:   req.Cwd,
		UID:   req.User,
		GID:   req.Group,
		TTY:   req.TTY,
		Width: req.Width, Height: req.Height,
		Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr,
	}
	if spec.Cwd == "" {
		spec.Cwd, spec.CwdOptional = env["HOME"], true
	}
	p, err := s.driverOf(rec).Exec(ctx, runtimeID(rec.ID), spec)
	if errors.Is(err, driver.ErrNotRunning) {
		return nil, errdefs.Invalid("instance %q is not running", name)
	}
	if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalidArgument) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", name, err)
	}
	s.log.Debug("exec started", "instance", name, "pid", p.Pid(), "command", req.Command[0], "tty", req.TTY)
	return p, nil
}

// defaultExecPath is LXD's PATH for exec when neither the request nor the
// instance sets one.
const defaultExecPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// execEnvironment is LXD's exec environment: the request's variables,
// then the instance's environment.* keys for those it does not set, then
// PATH, HOME and USER (for root) and LANG defaults.
func execEnvironment(expanded map[string]string, req ExecRequest) map[string]string {
	env := make(map[string]string, len(req.Environment)+8)
	for k, v := range req.Environment {
		env[k] = v
	}
	for k, v := range expanded {
		if name, ok := strings.CutPrefix(k, prefixEnvironment); ok {
			if _, set := env[name]; !set {
				env[name] = v
			}
		}
	}
	setDefault := func(k, v string) {
		if _, ok := env[k]; !ok {
			env[k] = v
		}
	}
	setDefault("PATH", defaultExecPath)
	if req.User == 0 {
		setDefault("HOME", "/root")
		setDefault("USER", "root")
	}
	setDefault("LANG", "C.UTF-8")
	return env
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range sortedNames(env) {
		out = append(out, k+"="+env[k])
	}
	return out
}
