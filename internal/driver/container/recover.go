package container

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/driver"
)

// runcListEntry is the part of `runc list --format json` the driver reads.
type runcListEntry struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
}

// Recover finds the containers runc still runs after a daemon restart and
// watches them again; it removes what dead ones left (runc state, cgroups,
// rootfs mounts). Their exits are reported with Known=false unless the daemon
// is still their parent (it re-executed in place).
func (d *Driver) Recover(ctx context.Context) (map[string]driver.State, error) {
	out, err := d.runc(ctx, "list", "--format", "json")
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	var list []runcListEntry
	if b := bytes.TrimSpace(out); len(b) > 0 {
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("recover: parse runc list: %w", err)
		}
	}
	states := make(map[string]driver.State)
	for _, c := range list {
		if validID(c.ID) != nil {
			d.log.Warn("recover: ignoring runc container with foreign ID", "id", c.ID)
			continue
		}
		if in := d.lookup(c.ID); in != nil {
			states[c.ID] = in.state()
			continue
		}
		var in *instance
		if c.Status != "stopped" {
			if in, err = d.adopt(c.ID); err != nil {
				return nil, fmt.Errorf("recover: %w", err)
			}
		}
		switch {
		case in == nil:
			// Stopped or just died: remove what it left.
			if err := d.cleanupRun(ctx, c.ID); err != nil {
				d.log.Error("recover: clean up dead container", "id", c.ID, "err", err)
			}
		case c.Status == "created":
			// A start interrupted between runc's create and start: PID 1
			// never ran the instance's command.
			d.log.Info("recover: killing container that never started", "id", c.ID)
			if err := d.kill(ctx, in); err != nil {
				return nil, fmt.Errorf("recover: %w", err)
			}
		default:
			states[c.ID] = in.state()
		}
	}
	// Rootfs mounts of containers runc no longer knows of.
	mps, err := mountPoints(d.dir)
	if err != nil {
		return nil, fmt.Errorf("recover: %w", err)
	}
	for _, mp := range mps {
		id := filepath.Base(filepath.Dir(mp))
		if filepath.Base(mp) != "rootfs" || filepath.Dir(filepath.Dir(mp)) != d.dir {
			continue
		}
		if d.lookup(id) != nil {
			continue
		}
		d.log.Info("recover: unmounting stale rootfs", "id", id, "path", mp)
		if err := unmountAll(mp); err != nil {
			d.log.Error("recover: unmount stale rootfs", "id", id, "err", err)
		}
	}
	return states, nil
}

// adopt starts watching the PID 1 that runc's state for id names, if it is
// still alive. It returns nil, nil when there is none: no state, or the
// process is gone (its pid free or reused: the start time runc recorded is
// checked). Used by Recover, and wherever the driver meets a container it
// does not track, so that its PID 1 is reaped and its exit reported rather
// than killed behind the watcher's back.
func (d *Driver) adopt(id string) (*instance, error) {
	b, err := os.ReadFile(filepath.Join(d.runcRoot, id, "state.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("adopt %s: %w", id, err)
	}
	var rs struct {
		Pid   int    `json:"init_process_pid"`
		Start uint64 `json:"init_process_start"`
	}
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("adopt %s: parse runc state: %w", id, err)
	}
	if rs.Pid <= 0 || rs.Start == 0 {
		return nil, nil
	}
	pidfd, st, err := openPidfd(rs.Pid, rs.Start)
	if err != nil {
		d.log.Debug("not adopting dead container", "id", id, "pid", rs.Pid, "err", err)
		return nil, nil
	}
	in := &instance{
		id:        id,
		pid:       rs.Pid,
		startTime: st.startTime,
		pidfd:     pidfd,
		stats:     openStats(d.cg.files(id)),
		done:      make(chan struct{}),
		mounts:    d.loadMounts(id),
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		pidfd.Close()
		in.stats.close()
		return nil, fmt.Errorf("adopt %s: driver closed", id)
	}
	if cur := d.insts[id]; cur != nil {
		d.mu.Unlock()
		pidfd.Close()
		in.stats.close()
		return cur, nil
	}
	d.insts[id] = in
	d.mu.Unlock()
	go d.watch(in)
	d.log.Info("adopted container", "id", id, "pid", rs.Pid, "our_child", st.ppid == d.selfPid)
	return in, nil
}
