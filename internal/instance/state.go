package instance

import (
	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Status is an instance's lifecycle status. The values are LXD's codes so
// the API shows them as they are.
type Status = api.StatusCode

// transitions lists every allowed single-hop status change. Every status
// change in the service passes canTransition; multi-hop flows (restart:
// Running -> Stopping -> Stopped -> Starting -> Running) are composed of
// these hops.
var transitions = map[Status][]Status{
	api.Stopped:  {api.Starting},
	api.Starting: {api.Running, api.Stopped, api.Error},
	api.Running:  {api.Stopping, api.Freezing, api.Stopped, api.Error},
	api.Freezing: {api.Frozen, api.Running},
	api.Frozen:   {api.Running, api.Stopping, api.Stopped},
	api.Stopping: {api.Stopped, api.Running, api.Frozen, api.Error},
	api.Error:    {api.Starting, api.Stopping, api.Stopped},
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
	return s == api.Running || s == api.Frozen || s == api.Freezing || s == api.Stopping
}
