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

// LogKind names one of an instance's logs kept as a file.
type LogKind int

const (
	// LogConsole is PID 1's stdout and stderr (a VM's console, where its
	// workload's output goes too).
	LogConsole LogKind = iota
	// LogRuntime is the runtime's own log: QEMU's stdout and stderr,
	// runc's log.
	LogRuntime
)

// LogFiler is implemented by drivers that keep an instance's logs as files
// a reader may follow (they are appended to, and may be truncated or
// rotated). Separate from Driver, as ConsoleAttacher is.
type LogFiler interface {
	// LogFile returns the path of an instance's log, which may not exist
	// yet. An unknown kind is an errdefs.ErrInvalidArgument error.
	LogFile(id string, kind LogKind) (string, error)
}
