package qemu

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

var _ driver.Checkpointer = (*Driver)(nil)

// A checkpoint is a QMP migration into a file while the guest runs
// (pre-copy): QEMU copies RAM while the guest goes on, then again what
// it dirtied meanwhile, and stops the guest only for the last pages and
// the device state. The guest then stays stopped (QEMU's postmigrate
// state, its disks flushed and let go), so the caller snapshots the disks
// at the very moment the memory was taken; a cont resumes it.
const (
	// saveBandwidth lifts QEMU's migration bandwidth cap (32 MiB/s by
	// default, meant for a network link; a local file takes GB/s).
	saveBandwidth = 1 << 40
	// saveDowntimeMs is the pause QEMU aims at when it decides to stop
	// the guest for the last pages. The file is fast, so QEMU reaches
	// it once the guest dirties less than the file takes in that time.
	saveDowntimeMs = 50
	// convergePasses and convergeTime bound the pre-copy: a guest that
	// dirties memory faster than the file takes it is paused then, and
	// the save ends as a paused save (standby's) does.
	convergePasses = 5
	convergeTime   = 10 * time.Second
)

// stateMagic opens a checkpoint file: a line naming the format, a line
// of JSON (stateHeader), then QEMU's migration stream.
const stateMagic = "hangar-vm-state 1\n"

// stateHeader is what a start from a checkpoint needs to build the same
// machine as the one saved: QEMU loads device state only into a machine
// with the same devices at the same places and the same RAM size.
type stateHeader struct {
	Firmware bool     `json:"firmware"`
	Machine  string   `json:"machine,omitempty"` // Config.Machine, for a kernel-booted VM
	Memory   int64    `json:"memory"`
	CPUs     int      `json:"cpus"`
	NICSlots []string `json:"nic_slots,omitempty"`
	// NICs are the MACs the saved guest has, by NIC name.
	NICs  map[string]string `json:"nics,omitempty"`
	Disks *diskLayout       `json:"disks,omitempty"`
	Saved time.Time         `json:"saved"`
	// Compression is how the stream after the header was compressed
	// (driver.Compression's String), for people: a restore reads the
	// stream's own magic.
	Compression string `json:"compression,omitempty"`
}

// maxHeader bounds a checkpoint's header line.
const maxHeader = 1 << 20

// Checkpoint saves the running VM's RAM and device state to statePath
// while it runs on (driver.Checkpointer). paused is called while QEMU
// holds the guest stopped at the moment the state was taken, with its
// disks flushed; then the guest resumes, unless it was paused before the
// call (it then stays paused, and its disks are taken back at its next
// resume). The pause returned runs from QEMU's stop to its resume.
// Refused (errdefs.ErrConflict) for a VM with 9p shares, as Standby is.
func (d *Driver) Checkpoint(ctx context.Context, id, statePath string, comp driver.Compression, paused func(ctx context.Context) error) (time.Duration, error) {
	v := d.get(id)
	if v == nil {
		return 0, driver.ErrNotRunning
	}
	mon := v.monitor()
	if mon == nil {
		return 0, driver.ErrNotRunning
	}
	if statePath == "" {
		return 0, errdefs.Invalid("checkpoint: no state file")
	}
	v.mu.Lock()
	state, shares := v.state, v.shares
	v.mu.Unlock()
	if shares > 0 {
		return 0, errdefs.Conflict("checkpoint: VM %s has %d directory share(s) (9p), and QEMU cannot save a VM with a mounted 9p share", id, shares)
	}
	wasPaused := state == statePaused
	if state != stateRunning && !wasPaused {
		return 0, errdefs.Conflict("checkpoint: VM %s is %s", id, state)
	}
	hdr, err := d.headerOf(v, mon, true)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	hdr.Compression = comp.String()

	tmp := statePath + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	fail := func(err error) (time.Duration, error) {
		f.Close()
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	if err := writeStateHeader(f, hdr); err != nil {
		return fail(err)
	}
	resume := func() error {
		if wasPaused {
			return nil
		}
		if _, err := mon.run("cont", nil); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		return v.waitState(wctx, func(s vmState) bool { return s == stateRunning })
	}
	saveStart := time.Now()
	stats, err := saveState(ctx, mon, f, !wasPaused, comp)
	if err != nil {
		// QEMU resumes a guest it stopped for a save that failed; one
		// this stopped for convergence is resumed here.
		if rerr := resume(); rerr != nil {
			d.log.Warn("resume after a failed checkpoint", "id", id, "err", rerr)
		}
		return fail(err)
	}
	saved := time.Since(saveStart)
	cbStart := time.Now()
	if err := paused(ctx); err != nil {
		if rerr := resume(); rerr != nil {
			d.log.Warn("resume after a failed checkpoint", "id", id, "err", rerr)
		}
		return fail(err)
	}
	inCallback := time.Since(cbStart)
	if err := resume(); err != nil {
		return fail(fmt.Errorf("resume: %w", err))
	}
	var pause time.Duration
	if !wasPaused {
		v.mu.Lock()
		pause = v.resumedAt.Sub(v.stoppedAt)
		v.mu.Unlock()
	}
	// The guest runs: making the file durable is not part of its pause.
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmp, statePath); err != nil {
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	d.log.Info("vm checkpointed", "id", id, "file", statePath, "pause", pause, "save", saved,
		"qemu_downtime_ms", stats.Downtime, "passes", stats.RAM.DirtySyncCount, "forced_stop", stats.forcedStop, "callback", inCallback)
	return pause, nil
}

// headerOf is the header of v's saved state; withMACs reads the MACs the
// guest has (a fork's restore needs them to give it new ones).
func (d *Driver) headerOf(v *vm, mon *monitor, withMACs bool) (stateHeader, error) {
	v.mu.Lock()
	withAgent := v.withAgent
	hdr := stateHeader{Firmware: !withAgent, NICSlots: append([]string(nil), v.slots...), Saved: time.Now().UTC()}
	if v.disks != nil {
		hdr.Disks = v.disks.clone()
	}
	v.mu.Unlock()
	if withAgent {
		hdr.Machine = d.cfg.Machine
	}
	if err := machineSize(mon, &hdr); err != nil {
		return hdr, err
	}
	if !withMACs {
		return hdr, nil
	}
	hdr.NICs = map[string]string{}
	for _, name := range hdr.NICSlots {
		if name == "" {
			continue
		}
		out, err := mon.run("qom-get", map[string]any{"path": "/machine/peripheral/" + nicDeviceID(name), "property": "mac"})
		var mac string
		if err == nil && json.Unmarshal(out, &mac) == nil {
			hdr.NICs[name] = mac
		}
	}
	return hdr, nil
}

// machineSize reads the RAM size and vCPU count of a running QEMU (a VM
// adopted after a daemon restart has no spec to say them).
func machineSize(mon *monitor, hdr *stateHeader) error {
	out, err := mon.run("query-memory-size-summary", nil)
	if err != nil {
		return err
	}
	var mem struct {
		Base int64 `json:"base-memory"`
	}
	if err := json.Unmarshal(out, &mem); err != nil {
		return fmt.Errorf("query-memory-size-summary: %w", err)
	}
	out, err = mon.run("query-cpus-fast", nil)
	if err != nil {
		return err
	}
	var cpus []json.RawMessage
	if err := json.Unmarshal(out, &cpus); err != nil {
		return fmt.Errorf("query-cpus-fast: %w", err)
	}
	hdr.Memory, hdr.CPUs = mem.Base, len(cpus)
	return nil
}

// saveState has QEMU write the VM's state into f at its offset (QMP
// migrate to a descriptor passed with getfd), compressed as comp says,
// and waits for the end. live is a running guest, saved by pre-copy
// (QEMU stops it at the end); otherwise the guest is paused already.
func saveState(ctx context.Context, mon *monitor, f *os.File, live bool, comp driver.Compression) (migrationStats, error) {
	if _, err := mon.run("migrate-set-parameters", map[string]any{
		"max-bandwidth": saveBandwidth, "downtime-limit": saveDowntimeMs,
	}); err != nil {
		return migrationStats{}, err
	}
	sink, err := newStateSink(f, comp)
	if err != nil {
		return migrationStats{}, err
	}
	const fdName = "hangar-save"
	_, err = mon.runWithFile("getfd", map[string]any{"fdname": fdName}, sink.qemuEnd)
	sink.closeOurs()
	if err != nil {
		_ = sink.wait(false)
		return migrationStats{}, err
	}
	if _, err := mon.run("migrate", map[string]any{"uri": "fd:" + fdName}); err != nil {
		_, _ = mon.run("closefd", map[string]any{"fdname": fdName})
		_ = sink.wait(false)
		return migrationStats{}, err
	}
	st, err := waitMigration(ctx, mon, live)
	if werr := sink.wait(err == nil); err == nil {
		err = werr
	}
	return st, err
}

// migrationStats is what query-migrate says of a migration.
type migrationStats struct {
	Status    string `json:"status"`
	ErrorDesc string `json:"error-desc"`
	// Downtime is how long QEMU held the guest stopped, in ms (on
	// completion).
	Downtime int64 `json:"downtime"`
	RAM      struct {
		DirtySyncCount int64 `json:"dirty-sync-count"`
	} `json:"ram"`
	// forcedStop says the pre-copy did not converge and the guest was
	// paused for the rest.
	forcedStop bool
}

// waitMigration polls query-migrate until the migration ends. A live one
// that does not converge gets its guest paused (QMP stop). A cancelled
// ctx cancels the migration and waits until QEMU has given it up, so the
// caller may resume the guest and remove the file.
func waitMigration(ctx context.Context, mon *monitor, live bool) (migrationStats, error) {
	start := time.Now()
	forced := false
	for {
		out, err := mon.run("query-migrate", nil)
		if err != nil {
			return migrationStats{}, err
		}
		var st migrationStats
		if err := json.Unmarshal(out, &st); err != nil {
			return st, err
		}
		st.forcedStop = forced
		switch st.Status {
		case "completed":
			return st, nil
		case "failed", "cancelled":
			return st, fmt.Errorf("saving the VM state %s: %s", st.Status, st.ErrorDesc)
		}
		if live && (st.RAM.DirtySyncCount >= convergePasses || time.Since(start) > convergeTime) {
			if _, err := mon.run("stop", nil); err != nil {
				return st, err
			}
			live, forced = false, true
		}
		select {
		case <-ctx.Done():
			_, _ = mon.run("migrate_cancel", nil)
			waitMigrationGone(mon)
			return st, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// waitMigrationGone waits (a little) until a cancelled migration is over.
func waitMigrationGone(mon *monitor) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := mon.run("query-migrate", nil)
		if err != nil {
			return
		}
		var st struct {
			Status string `json:"status"`
		}
		if json.Unmarshal(out, &st) != nil {
			return
		}
		switch st.Status {
		case "completed", "failed", "cancelled", "none":
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func writeStateHeader(w io.Writer, hdr stateHeader) error {
	b, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, stateMagic+string(b)+"\n")
	return err
}

// openState opens a checkpoint file and reads its header; the file is
// left at the start of QEMU's stream, which QEMU reads from there.
func openState(path string) (*os.File, stateHeader, error) {
	f, hdr, found, err := openStateFile(path)
	if err != nil {
		return nil, hdr, err
	}
	if !found {
		f.Close()
		return nil, hdr, errdefs.Invalid("restore state %s: not a VM state file Checkpoint wrote", path)
	}
	return f, hdr, nil
}

// openStateFile opens a saved state and reads its header, when it has one
// (found): a standby file written before standby had headers is QEMU's
// stream from its first byte. The file is left at the stream's start.
func openStateFile(path string) (*os.File, stateHeader, bool, error) {
	var hdr stateHeader
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, hdr, false, errdefs.NotFound("restore state %s: no such file", path)
	}
	if err != nil {
		return nil, hdr, false, fmt.Errorf("restore state: %w", err)
	}
	br := bufio.NewReaderSize(io.LimitReader(f, int64(len(stateMagic))+maxHeader), 64<<10)
	if head, _ := br.Peek(len(stateMagic)); string(head) != stateMagic {
		return f, hdr, false, nil
	}
	magic, err := br.ReadString('\n')
	if err != nil || magic != stateMagic {
		f.Close()
		return nil, hdr, false, errdefs.Invalid("restore state %s: not a VM state file Checkpoint wrote", path)
	}
	line, err := br.ReadString('\n')
	if err != nil {
		f.Close()
		return nil, hdr, false, errdefs.Invalid("restore state %s: truncated header", path)
	}
	if err := json.Unmarshal([]byte(line), &hdr); err != nil || hdr.Memory <= 0 || hdr.CPUs <= 0 {
		f.Close()
		return nil, hdr, false, errdefs.Invalid("restore state %s: bad header %.200q", path, strings.TrimSpace(line))
	}
	if _, err := f.Seek(int64(len(magic)+len(line)), io.SeekStart); err != nil {
		f.Close()
		return nil, hdr, false, fmt.Errorf("restore state: %w", err)
	}
	return f, hdr, true, nil
}

// reidentify tells the agent of a VM restored from another VM's state
// (spec.Forked) its own identity: hostname, MACs (the saved device state
// has the other VM's), addresses, and a fresh seed for its generator.
func (d *Driver) reidentify(ctx context.Context, v *vm, spec driver.Spec, hdr stateHeader) error {
	ac := v.agentConn()
	if ac == nil {
		return errdefs.NotImplemented("a forked VM learns its identity from hangar's guest agent, and this VM has none")
	}
	if ac.agentVersion() < vmagent.VersionIdentity {
		return errdefs.NotImplemented("the guest agent in the saved VM (protocol %d) cannot take a new identity: it needs %d", ac.agentVersion(), vmagent.VersionIdentity)
	}
	req := vmagent.Identity{Hostname: spec.Hostname, Seed: make([]byte, 64)}
	if _, err := rand.Read(req.Seed); err != nil {
		return err
	}
	for _, n := range spec.NICs {
		req.NICs = append(req.NICs, vmagent.IdentityNIC{NIC: agentNIC(n), OldHwaddr: hdr.NICs[n.Name]})
	}
	ictx, cancel := context.WithTimeout(ctx, nicPlugTimeout)
	defer cancel()
	if err := agentDo(ictx, ac, vmagent.MsgIdentity, req); err != nil {
		return fmt.Errorf("tell the forked guest its identity: %w", err)
	}
	v.net.invalidate()
	return nil
}
