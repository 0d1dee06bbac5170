package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Stop sends signal (the spec's StopSignal when 0, else SIGTERM) to PID 1
// and waits up to timeout for it to exit, then kills it. force, or a zero
// timeout, kills at once; a negative timeout waits until ctx is done. It
// returns once the watcher has reaped PID 1 and removed its runc state,
// cgroup and rootfs mount.
//
// Signals go through the pidfd rather than `runc kill`: no exec, and no
// chance of signalling a reused pid. Killing is SIGKILL to PID 1, which
// takes the whole PID namespace with it; the watcher's `runc delete` then
// finds a stopped container and only removes state (`runc delete --force`
// on a live one polls for the death every 100 ms, which makes it slower).
func (d *Driver) Stop(ctx context.Context, id string, signal syscall.Signal, timeout time.Duration, force bool) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	in := d.lookup(id)
	if in == nil {
		// Not tracked: stopped, or left running by an earlier daemon
		// without Recover. Cheap when there is nothing: a stat, no exec.
		var err error
		if in, err = d.adopt(id); err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
		if in == nil {
			if err := d.cleanupRun(ctx, id); err != nil {
				return fmt.Errorf("stop %s: %w", id, err)
			}
			return nil
		}
	}
	if err := d.thaw(ctx, in); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	if !force && timeout != 0 {
		sig := in.stopSignalOf(signal)
		awaitExec(ctx, in.pid)
		if err := in.signal(unix.Signal(sig)); err != nil {
			return fmt.Errorf("stop %s: %w", id, err)
		}
		var expired <-chan time.Time
		if timeout > 0 {
			t := time.NewTimer(timeout)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-in.done:
			return nil
		case <-expired:
			d.log.Info("stop timed out, killing", "id", id, "pid", in.pid, "signal", sig, "timeout", timeout)
		case <-ctx.Done():
			return fmt.Errorf("stop %s: %w", id, errors.Join(errdefs.ErrCancelled, ctx.Err()))
		}
	}
	if err := d.kill(ctx, in); err != nil {
		return fmt.Errorf("stop %s: %w", id, err)
	}
	return nil
}

// thaw resumes a frozen container: a frozen task acts on no signal, not
// even SIGKILL on cgroup v1 (checked: it stays in D state until thawed).
func (d *Driver) thaw(ctx context.Context, in *instance) error {
	if err := d.freeze(ctx, in, false); err != nil && !isDone(in) {
		return fmt.Errorf("thaw: %w", err)
	}
	return nil
}

// kill SIGKILLs in's PID 1, which takes its whole PID namespace with it, and
// waits for the watcher to have reaped it and cleaned up.
func (d *Driver) kill(ctx context.Context, in *instance) error {
	if err := d.thaw(ctx, in); err != nil {
		return err
	}
	if err := in.signal(unix.SIGKILL); err != nil {
		return err
	}
	// A Freeze that came between the thaw and the signal would hold the
	// kill back: thaw once more, now that the kill is pending.
	if err := d.thaw(ctx, in); err != nil {
		return err
	}
	select {
	case <-in.done:
		return nil
	case <-ctx.Done():
		return errors.Join(errdefs.ErrCancelled, ctx.Err())
	}
}

func isDone(in *instance) bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// stopSignalOf returns the signal Stop sends when asked for none.
func (in *instance) stopSignalOf(sig syscall.Signal) syscall.Signal {
	if sig != 0 {
		return sig
	}
	if in.stopSignal != 0 {
		return in.stopSignal
	}
	return syscall.SIGTERM
}

// runcInit is the name runc gives PID 1 until it execs the container's
// program (nsexec's last stage).
const runcInit = "runc:[2:INIT]"

// awaitExec waits, at most a second, until PID 1 is the container's own
// program. `runc run --detach` returns once it told its init to exec, not
// once it did: a stop signal in between reaches runc's init, a Go program
// that dies of SIGTERM as the namespace's init ignores the re-raised
// signal, with status 2, instead of the program choosing what to do (or,
// with no handler, being killed after the timeout).
func awaitExec(ctx context.Context, pid int) {
	comm := fmt.Sprintf("/proc/%d/comm", pid)
	deadline := time.Now().Add(time.Second)
	for {
		b, err := os.ReadFile(comm)
		if err != nil || strings.TrimSpace(string(b)) != runcInit || time.Now().After(deadline) || ctx.Err() != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
