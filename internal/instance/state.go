package instance

import (
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Status is an instance's lifecycle status.
type Status int

// Statuses. The zero value is no status: every instance has one of these.
const (
	StatusStopped Status = iota + 1
	StatusStarting
	StatusRunning
	StatusStopping
	StatusFreezing
	StatusFrozen
	StatusError
)

var statusNames = map[Status]string{
	StatusStopped:  "Stopped",
	StatusStarting: "Starting",
	StatusRunning:  "Running",
	StatusStopping: "Stopping",
	StatusFreezing: "Freezing",
	StatusFrozen:   "Frozen",
	StatusError:    "Error",
}

// String is the status's name, as LXD spells it ("Running").
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "Unknown"
}

// transitions lists every allowed single-hop status change. Every status
// change in the service passes canTransition; multi-hop flows (restart:
// Running -> Stopping -> Stopped -> Starting -> Running) are composed of
// these hops.
var transitions = map[Status][]Status{
	StatusStopped:  {StatusStarting},
	StatusStarting: {StatusRunning, StatusStopped, StatusError},
	StatusRunning:  {StatusStopping, StatusFreezing, StatusStopped, StatusError},
	StatusFreezing: {StatusFrozen, StatusRunning},
	StatusFrozen:   {StatusRunning, StatusStopping, StatusStopped},
	StatusStopping: {StatusStopped, StatusRunning, StatusFrozen, StatusError},
	StatusError:    {StatusStarting, StatusStopping, StatusStopped},
}

func canTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// checkTransition returns a 409-kind error naming the instance when the hop
// is not allowed.
func checkTransition(name string, from, to Status) error {
	if canTransition(from, to) {
		return nil
	}
	return errdefs.Conflict("instance %q is %s: cannot go to %s", name, from, to)
}

// wantStatus returns a 409-kind error unless the instance is in one of the
// given statuses.
func wantStatus(name string, cur Status, want ...Status) error {
	for _, w := range want {
		if cur == w {
			return nil
		}
	}
	return errdefs.Conflict("instance %q is %s", name, cur)
}

// isActive reports whether an instance has processes (running or frozen).
func isActive(s Status) bool {
	return s == StatusRunning || s == StatusFrozen || s == StatusFreezing || s == StatusStopping
}
