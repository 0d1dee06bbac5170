package driver

import (
	"context"
	"io"
	"time"
)

// GuestFiles is implemented by drivers whose instances' files are reached
// through an agent inside the instance rather than from the host (a VM:
// its disk is an image the host does not mount). It works only while the
// instance runs. Paths are absolute paths in the guest; ids are the
// guest's.
type GuestFiles interface {
	// GuestReadFile describes path, not following a symlink in last place,
	// and writes a regular file's content to content.
	GuestReadFile(ctx context.Context, id, path string, content io.Writer) (GuestFile, error)
	// GuestWriteFile creates or changes a file, directory or symlink.
	GuestWriteFile(ctx context.Context, id, path string, w GuestFileWrite) error
	// GuestDeleteFile removes a file, symlink or empty directory.
	GuestDeleteFile(ctx context.Context, id, path string) error
}

// GuestFile is what GuestReadFile found.
type GuestFile struct {
	Type     string // "file", "directory" or "symlink"
	UID, GID int64
	Mode     uint32
	Size     int64
	ModTime  time.Time
	Entries  []string // a directory's names, sorted
	Target   string   // a symlink's target
}

// GuestFileWrite is a change GuestWriteFile makes.
type GuestFileWrite struct {
	Type     string // "file", "directory" or "symlink"
	UID, GID int64  // owner of what is created
	Mode     uint32 // mode of what is created
	Append   bool
	Content  io.Reader // a file's data or a symlink's target
}

// GuestFileError is a file error the guest reported.
type GuestFileError struct {
	Message  string
	NotFound bool
	Exists   bool
	// Disabled: the instance's agent serves no requests (agent.skip).
	Disabled bool
}

func (e *GuestFileError) Error() string { return e.Message }
