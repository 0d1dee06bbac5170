package driver

import (
	"context"
	"os"
)

// RootOpener is implemented by drivers whose instances' root filesystems
// the daemon can reach from the host, so that files are read and written
// without a process inside the instance (the files API). It is a separate
// interface rather than a Driver method so that drivers which cannot offer
// it (a VM driver, test fakes) need not stub it; the service answers "not
// supported" for them.
type RootOpener interface {
	// OpenRoot returns the instance's root filesystem as the instance sees
	// it, with its writable layer on top, as a private mount of the caller's
	// (a detached mount: it appears in no mount table and ends when the file
	// is closed). It works whether the instance runs or not: a running
	// instance's live root is cloned, a stopped one's is mounted for the
	// caller. The mount is nodev and nosuid, so a device node the instance
	// made can never be opened through it on the host.
	//
	// The caller must close the file before it calls any other method for
	// spec.ID: a stopped instance's layer must not be mounted twice.
	OpenRoot(ctx context.Context, spec Spec) (*os.File, error)
}
