package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

// Freeze pauses every process of the container through its cgroup
// freezer. Freezing a frozen container does nothing.
//
// The driver writes the freezer itself rather than run `runc pause`: the
// same kernel operation without an exec of runc, which reads the
// container's state and config first (milliseconds, more under load).
// runc keeps no record of a pause: runc 1.1 derives "paused" from the
// freezer at every `runc state`, `kill` and `delete`, so runc's view stays
// consistent (TestFreezeRuncView checks it).
func (d *Driver) Freeze(ctx context.Context, id string) error {
	return d.setFrozen(ctx, id, true)
}

// Unfreeze resumes a frozen container. Unfreezing a running container does
// nothing.
func (d *Driver) Unfreeze(ctx context.Context, id string) error {
	return d.setFrozen(ctx, id, false)
}

func (d *Driver) setFrozen(ctx context.Context, id string, frozen bool) error {
	verb := "unfreeze"
	if frozen {
		verb = "freeze"
	}
	if err := validID(id); err != nil {
		return fmt.Errorf("%s %s: %w", verb, id, err)
	}
	in := d.lookup(id)
	if in == nil {
		return fmt.Errorf("%s %s: %w", verb, id, driver.ErrNotRunning)
	}
	if err := d.freeze(ctx, in, frozen); err != nil {
		if isDone(in) {
			return fmt.Errorf("%s %s: %w", verb, id, driver.ErrNotRunning)
		}
		return fmt.Errorf("%s %s: %w", verb, id, err)
	}
	return nil
}

// freeze sets in's freezer and waits until the kernel reports the state
// reached. Calls for one container are serialised, so that a thaw cannot
// interleave with a freeze's retries.
func (d *Driver) freeze(ctx context.Context, in *instance, frozen bool) error {
	in.freezeMu.Lock()
	defer in.freezeMu.Unlock()
	// A thaw always writes (a no-op for a thawed cgroup): a v1 cgroup
	// left FREEZING by someone else reads as not frozen, yet holds tasks.
	if frozen && in.stats.frozen() {
		return nil
	}
	p := d.cg.path(in.id)
	var err error
	if d.cg.v2 {
		err = freezeV2(ctx, d.cg.dir("", p), frozen)
	} else {
		err = freezeV1(ctx, d.cg.dir("freezer", p), frozen)
	}
	if !frozen && errors.Is(err, fs.ErrNotExist) {
		// The cgroup is gone (PID 1 exited, runc deleted it): nothing
		// is frozen. Stop thaws before it kills and must not fail here.
		return nil
	}
	return err
}

// freezeTimeout bounds a freeze that does not settle (a v1 cgroup whose
// processes keep forking) when the caller's context has no deadline.
const freezeTimeout = 10 * time.Second

// freezeV1 writes a v1 freezer.state. THAWED takes effect at once. FROZEN
// goes through FREEZING until every task has reached the refrigerator,
// which a read of freezer.state checks; a cgroup whose tasks keep forking
// can stay FREEZING, so the write is repeated (as the kernel's old
// documentation advises) and, now and then, the cgroup thawed for a moment
// to let new tasks settle. A freeze that fails leaves the cgroup thawed,
// never half frozen.
func freezeV1(ctx context.Context, dir string, frozen bool) (err error) {
	f, err := os.OpenFile(dir+"/freezer.state", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open freezer: %w", err)
	}
	defer f.Close()
	fd := int(f.Fd())
	if !frozen {
		if err := pwriteAll(fd, "THAWED"); err != nil {
			return fmt.Errorf("thaw: %w", err)
		}
		return nil
	}
	defer func() {
		if err != nil {
			_ = pwriteAll(fd, "THAWED")
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, freezeTimeout)
	defer cancel()
	var buf [32]byte
	wait := time.Duration(0)
	for i := 1; ; i++ {
		if err := pwriteAll(fd, "FROZEN"); err != nil {
			return fmt.Errorf("freeze: %w", err)
		}
		n, err := unix.Pread(fd, buf[:], 0)
		if err != nil {
			return fmt.Errorf("read freezer state: %w", err)
		}
		switch state := string(bytes.TrimSpace(buf[:n])); state {
		case "FROZEN":
			return nil
		case "FREEZING":
		default:
			return fmt.Errorf("freezer state %q while freezing", state)
		}
		if i%50 == 0 {
			_ = pwriteAll(fd, "THAWED")
		}
		// Tasks reach the refrigerator within microseconds unless they
		// sleep uninterruptibly: poll fast, then back off to 1 ms.
		wait = min(max(wait*2, 20*time.Microsecond), time.Millisecond)
		if err := sleepCtx(ctx, wait); err != nil {
			return fmt.Errorf("freeze: still freezing after %d tries: %w", i, err)
		}
	}
}

// freezeV2 writes a v2 cgroup.freeze and waits for cgroup.events to say
// "frozen 0" or "frozen 1": the kernel notifies a change of that file with
// POLLPRI, so the wait is a poll, not a sleep loop. (Written for unified
// hosts; on a hybrid host the v1 freezer is the one runc reads.)
func freezeV2(ctx context.Context, dir string, frozen bool) error {
	want := "0"
	if frozen {
		want = "1"
	}
	ev, err := os.Open(dir + "/cgroup.events")
	if err != nil {
		return fmt.Errorf("open cgroup.events: %w", err)
	}
	defer ev.Close()
	ctl, err := os.OpenFile(dir+"/cgroup.freeze", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("open cgroup.freeze: %w", err)
	}
	err = pwriteAll(int(ctl.Fd()), want)
	ctl.Close()
	if err != nil {
		return fmt.Errorf("write cgroup.freeze: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, freezeTimeout)
	defer cancel()
	var buf [256]byte
	for {
		// Read before polling: a read arms the notification.
		n, err := unix.Pread(int(ev.Fd()), buf[:], 0)
		if err != nil {
			return fmt.Errorf("read cgroup.events: %w", err)
		}
		v, ok := keyedValue(buf[:n], "frozen")
		if !ok {
			return errors.New("cgroup.events has no frozen key (Linux 5.2 or later needed)")
		}
		if (v == 1) == frozen {
			return nil
		}
		// Bounded, so a missed notification costs 10 ms, not a hang.
		wait := 10 * time.Millisecond
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		if err := ctx.Err(); err != nil {
			if frozen {
				_ = os.WriteFile(dir+"/cgroup.freeze", []byte("0"), 0)
			}
			return fmt.Errorf("wait for cgroup.events frozen %s: %w", want, err)
		}
		fds := []unix.PollFd{{Fd: int32(ev.Fd()), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, max(int(wait/time.Millisecond), 1)); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll cgroup.events: %w", err)
		}
	}
}

func pwriteAll(fd int, s string) error {
	for {
		_, err := unix.Pwrite(fd, []byte(s), 0)
		if err != unix.EINTR {
			return err
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
