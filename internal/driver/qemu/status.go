package qemu

import (
	"fmt"

	"github.com/digitalocean/go-qemu/qmp"

	"github.com/hangar-dev/hangar/internal/driver"
)

// vmState is what QMP events say of a VM. It changes only on events (and
// on the answer of query-status when a monitor connects), never on a
// guess: the command that asked for a change is not proof that it happened.
type vmState int

const (
	stateBooting vmState = iota // QEMU runs, the guest is not known to be up
	stateRunning
	statePaused
	statePoweringDown // the host asked for an ACPI power-down
	stateShutdown     // QEMU said the machine is off; the process ends next
	stateCrashed      // the guest panicked, or QEMU ended without saying why
)

func (s vmState) String() string {
	return [...]string{"booting", "running", "paused", "powering-down", "shutdown", "crashed"}[s]
}

// status is the driver's view of a state.
func (s vmState) status() driver.Status {
	switch s {
	case statePaused:
		return driver.StatusFrozen
	case stateShutdown:
		return driver.StatusStopped
	case stateCrashed:
		return driver.StatusError
	default:
		return driver.StatusRunning
	}
}

// applyEvent is the state machine: the state after event ev, and a reason
// when the event means the guest crashed. Events that do not concern the
// run state leave it as it is; a machine that is off or crashed stays so.
func applyEvent(s vmState, ev qmp.Event) (vmState, string) {
	if s == stateShutdown || s == stateCrashed {
		return s, ""
	}
	switch ev.Event {
	case "STOP":
		return statePaused, ""
	case "RESUME":
		return stateRunning, ""
	case "POWERDOWN":
		return statePoweringDown, ""
	case "GUEST_PANICKED":
		action, _ := ev.Data["action"].(string)
		return stateCrashed, fmt.Sprintf("the guest kernel panicked (action %s)", action)
	case "SHUTDOWN":
		if reason, _ := ev.Data["reason"].(string); reason == "guest-panic" {
			return stateCrashed, "the guest kernel panicked"
		}
		return stateShutdown, ""
	}
	return s, ""
}

// stateOfQueryStatus maps query-status's "status" (QEMU's RunState).
func stateOfQueryStatus(st string) (vmState, string) {
	switch st {
	case "running":
		return stateRunning, ""
	case "paused", "suspended", "inmigrate", "postmigrate", "finish-migrate", "prelaunch", "save-vm", "restore-vm", "debug", "io-error", "watchdog", "colo":
		return statePaused, ""
	case "shutdown":
		return stateShutdown, ""
	case "guest-panicked", "internal-error":
		return stateCrashed, "QEMU reports the guest as " + st
	}
	return statePaused, ""
}
