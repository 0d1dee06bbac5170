package qemu

import (
	"context"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// qmpStopTimeout bounds each monitor command of a stop: a QEMU that does
// not answer is killed rather than waited on.
const qmpStopTimeout = 5 * time.Second

// stopGrace is how long after the stop timeout a graceful stop waits for
// the guest to power off before it kills QEMU.
const stopGrace = 10 * time.Second

// Stop shuts the VM down. Gracefully, the guest agent signals the workload
// with the image's stop signal, kills what is left after timeout and
// powers off; a guest without an agent gets an ACPI power-down
// (system_powerdown). QEMU is killed if the guest has not powered off by
// then, or at once with force.
func (d *Driver) Stop(ctx context.Context, id string, sig syscall.Signal, timeout time.Duration, force bool) error {
	v := d.get(id)
	if v == nil {
		return nil
	}
	v.mu.Lock()
	v.stopping = true
	state, mon, ac := v.state, v.mon, v.agent
	v.mu.Unlock()
	if !force && mon != nil {
		if state == statePaused {
			// A paused guest cannot shut itself down.
			if _, err := mon.runWithin(qmpStopTimeout, "cont", nil); err != nil {
				d.log.Warn("resume to stop", "id", id, "err", err)
			}
		}
		if v.stopSignal != 0 {
			sig = v.stopSignal
		}
		asked := false
		if ac != nil {
			select {
			case <-ac.ready:
				asked = ac.send(vmagent.MsgShutdown, 0, vmagent.Shutdown{Signal: int(sig), TimeoutMs: timeout.Milliseconds()}) == nil
			default:
			}
		}
		if !asked {
			if _, err := mon.runWithin(qmpStopTimeout, "system_powerdown", nil); err != nil {
				d.log.Warn("ACPI power-down", "id", id, "err", err)
			}
		}
		select {
		case <-v.done:
			return nil
		case <-time.After(timeout + stopGrace):
		case <-ctx.Done():
		}
		d.log.Info("vm did not power off in time: killing it", "id", id)
	}
	d.kill(v)
	return nil
}

// kill ends QEMU: quit through QMP, SIGKILL if that does not do.
func (d *Driver) kill(v *vm) {
	if mon := v.monitor(); mon != nil {
		// A QEMU that does not answer its monitor is killed below.
		if _, err := mon.runWithin(qmpStopTimeout, "quit", nil); err != nil {
			d.log.Warn("quit through QMP", "id", v.id, "err", err)
		}
	}
	select {
	case <-v.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = syscall.Kill(v.pid, syscall.SIGKILL)
	select {
	case <-v.done:
	case <-time.After(cleanupTimeout):
		d.log.Error("qemu did not end after SIGKILL", "id", v.id, "pid", v.pid)
	}
}
