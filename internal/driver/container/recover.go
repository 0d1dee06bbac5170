package container

import (
	"bytes"
	"context"
	"encoding/json"
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
		if c.Status == "running" || c.Status == "paused" {
			in, err := d.adopt(c)
			if err == nil {
				states[c.ID] = in.state()
				continue
			}
			d.log.Warn("recover: container died", "id", c.ID, "pid", c.Pid, "err", err)
		}
		// stopped, created (a start interrupted between create and
		// start), or just died.
		if err := d.cleanupRun(ctx, c.ID); err != nil {
			d.log.Error("recover: clean up dead container", "id", c.ID, "err", err)
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

// adopt watches a PID 1 started by an earlier daemon. The pid is checked
// against the start time runc recorded, so a reused pid is not adopted.
func (d *Driver) adopt(c runcListEntry) (*instance, error) {
	b, err := os.ReadFile(filepath.Join(d.runcRoot, c.ID, "state.json"))
	if err != nil {
		return nil, err
	}
	var rs struct {
		Pid   int    `json:"init_process_pid"`
		Start uint64 `json:"init_process_start"`
	}
	if err := json.Unmarshal(b, &rs); err != nil {
		return nil, fmt.Errorf("parse runc state: %w", err)
	}
	if rs.Pid != c.Pid || rs.Start == 0 {
		return nil, fmt.Errorf("runc state pid %d start %d, list pid %d", rs.Pid, rs.Start, c.Pid)
	}
	pidfd, st, err := openPidfd(c.Pid, rs.Start)
	if err != nil {
		return nil, err
	}
	in := &instance{
		id:        c.ID,
		pid:       c.Pid,
		startTime: st.startTime,
		pidfd:     pidfd,
		cg:        d.cg.files(c.ID),
		done:      make(chan struct{}),
	}
	d.mu.Lock()
	if d.closed || d.insts[c.ID] != nil {
		d.mu.Unlock()
		pidfd.Close()
		return nil, fmt.Errorf("driver closed or instance already watched")
	}
	d.insts[c.ID] = in
	d.mu.Unlock()
	go d.watch(in)
	d.log.Info("recovered container", "id", c.ID, "pid", c.Pid, "status", c.Status)
	return in, nil
}
