package driver

import "context"

// Stateful is implemented by drivers that can save a running instance's
// whole state and end it (LXD's stateful stop; a VM's standby). The next
// Start restores the instance from that state instead of booting it. It
// is a separate interface so that drivers without it (containers: no
// CRIU) need not stub it; the service answers "not supported" for them.
type Stateful interface {
	// Standby saves the state, compressed as comp says, and ends the
	// instance.
	Standby(ctx context.Context, id string, comp Compression) error
}
