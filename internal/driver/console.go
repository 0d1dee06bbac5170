package driver

import (
	"context"
	"io"
)

// ConsoleAttacher is implemented by drivers whose instances have a console
// a client can attach to (LXD's console websocket). Like RootOpener it is
// separate from Driver so drivers without one need not stub it.
type ConsoleAttacher interface {
	// AttachConsole attaches to a running instance's console: reads give
	// what the console prints from now on, writes are its input. Several
	// clients may attach at once; each sees all output, and their input
	// is interleaved. Close detaches, and ends a Read in progress.
	AttachConsole(ctx context.Context, id string) (io.ReadWriteCloser, error)
}
