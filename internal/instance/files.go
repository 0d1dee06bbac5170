package instance

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/fsroot"
	"github.com/hangar-dev/hangar/internal/project"
)

// The file types of the files API, LXD's names.
const (
	FileTypeFile      = "file"
	FileTypeDirectory = "directory"
	FileTypeSymlink   = "symlink"
)

// Defaults for what a write does not say, LXD's: new files and directories
// belong to the instance's root; directories get 0750 (LXD's choice, as
// its SFTP server knows no umask), files 0644.
const (
	defaultFileMode = 0o644
	defaultDirMode  = 0o750
)

// overflowID is what the instance sees as the owner of a file whose host
// owner its id map does not cover (the kernel's overflowuid).
const overflowID = 65534

// File is what ReadFile found at a path, with ids as the instance sees them.
type File struct {
	Type    string // FileTypeFile, FileTypeDirectory or FileTypeSymlink
	UID     int64
	GID     int64
	Mode    uint32 // permission bits, setuid, setgid and sticky included
	Size    int64
	ModTime time.Time
	// Content is the open file, for FileTypeFile. ReadFile closes it.
	Content *os.File
	// Entries are a directory's names, sorted.
	Entries []string
	// Target is a symlink's target as an absolute, lexically cleaned
	// path inside the instance, as LXD reports it.
	Target string
}

// FileWrite describes a change WriteFile makes.
type FileWrite struct {
	// Type is FileTypeFile (when empty), FileTypeDirectory or FileTypeSymlink.
	Type string
	// UID and GID own what is created, ids inside the instance; -1 means
	// the instance's root. Existing files and directories keep theirs.
	UID, GID int64
	// Mode is given to what is created; -1 means the default.
	Mode int64
	// Append adds Content to the end of an existing file.
	Append bool
	// Content is a file's data or a symlink's target.
	Content io.Reader
}

// maxSymlinkTarget bounds the symlink target read from a request.
const maxSymlinkTarget = 4096

// ReadFile looks at path inside the instance, without following a symlink
// in last place, and hands what it found to fn. The instance's operation
// lock is held until fn returns, so that no stop, start or delete changes
// the root under a transfer.
func (s *Service) ReadFile(ctx context.Context, name, p string, fn func(*File) error) error {
	if err := s.allow(ctx, name, canExec); err != nil {
		return err
	}
	handled, err := s.readGuestFile(ctx, name, p, fn)
	if !handled {
		err = s.readRootFile(ctx, name, p, fn)
	}
	return s.fileEvent(ctx, err, "instance-file-retrieved", name, p)
}

func (s *Service) readRootFile(ctx context.Context, name, p string, fn func(*File) error) error {
	return s.withRoot(ctx, name, func(root *fsroot.Root, ids idMapping) error {
		n, err := root.Get(p)
		if err != nil {
			return err
		}
		if n.File != nil {
			defer n.File.Close()
		}
		f := &File{
			Type:    fileType(n.Type),
			UID:     ids.fromHost(n.UID),
			GID:     ids.fromHost(n.GID),
			Mode:    n.Mode,
			Size:    n.Size,
			ModTime: n.ModTime,
			Content: n.File,
			Entries: n.Entries,
		}
		if n.Type == fsroot.TypeSymlink {
			f.Target = absTarget(p, n.Target)
		}
		return fn(f)
	})
}

// absTarget is a symlink's target as LXD reports it: absolute, cleaned,
// a relative one taken from the link's directory (p, the link's path).
func absTarget(p, target string) string {
	if !strings.HasPrefix(target, "/") {
		target = path.Join(path.Dir(path.Clean("/"+p)), target)
	}
	return path.Clean(target)
}

// fileEvent announces a file operation that succeeded (err == nil) and
// returns err.
func (s *Service) fileEvent(ctx context.Context, err error, action, name, p string) error {
	if err == nil {
		s.cfg.Events.Lifecycle(ctx, action, instanceEntity(project.Name(ctx), name), map[string]any{"path": p})
	}
	return err
}

// WriteFile creates or changes a file, directory or symlink inside the
// instance. An existing directory, or the same symlink, is left as it is.
func (s *Service) WriteFile(ctx context.Context, name, p string, w FileWrite) error {
	if err := s.allow(ctx, name, canExec); err != nil {
		return err
	}
	if w.Type == "" {
		w.Type = FileTypeFile
	}
	switch w.Type {
	case FileTypeFile, FileTypeDirectory, FileTypeSymlink:
	default:
		return errdefs.Invalid("file type %q: want file, directory or symlink", w.Type)
	}
	if w.Append && w.Type != FileTypeFile {
		return errdefs.Invalid("append applies to files, not to a %s", w.Type)
	}
	if w.Mode > 0o7777 {
		return errdefs.Invalid("mode %#o: want at most 07777", w.Mode)
	}
	handled, err := s.writeGuestFile(ctx, name, p, w)
	if !handled {
		err = s.writeRootFile(ctx, name, p, w)
	}
	return s.fileEvent(ctx, err, "instance-file-pushed", name, p)
}

func (s *Service) writeRootFile(ctx context.Context, name, p string, w FileWrite) error {
	return s.withRoot(ctx, name, func(root *fsroot.Root, ids idMapping) error {
		uid, err := ids.toHost("uid", w.UID)
		if err != nil {
			return err
		}
		gid, err := ids.toHost("gid", w.GID)
		if err != nil {
			return err
		}
		switch w.Type {
		case FileTypeDirectory:
			_, err = root.Mkdir(p, uid, gid, modeOr(w.Mode, defaultDirMode))
		case FileTypeSymlink:
			var target []byte
			if w.Content != nil {
				target, err = io.ReadAll(io.LimitReader(w.Content, maxSymlinkTarget+1))
				if err != nil {
					return fmt.Errorf("read symlink target: %w", err)
				}
			}
			_, err = root.Symlink(string(target), p, uid, gid)
		default:
			content := w.Content
			if content == nil {
				content = strings.NewReader("")
			}
			_, err = root.WriteFile(p, content, fsroot.FileOptions{
				Append: w.Append, UID: uid, GID: gid, Mode: modeOr(w.Mode, defaultFileMode),
			})
		}
		return err
	})
}

// DeleteFile removes a file, a symlink (not its target) or an empty
// directory inside the instance.
func (s *Service) DeleteFile(ctx context.Context, name, p string) error {
	if err := s.allow(ctx, name, canExec); err != nil {
		return err
	}
	handled, err := s.deleteGuestFile(ctx, name, p)
	if !handled {
		err = s.withRoot(ctx, name, func(root *fsroot.Root, _ idMapping) error { return root.Remove(p) })
	}
	return s.fileEvent(ctx, err, "instance-file-deleted", name, p)
}

// withRoot runs fn on the instance's root filesystem, holding the
// instance's operation lock so that the root stays what it is: a running
// instance's root is not unmounted, a stopped one's layer not mounted
// twice, nothing deleted under fn.
func (s *Service) withRoot(ctx context.Context, name string, fn func(*fsroot.Root, idMapping) error) error {
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, _, _ := s.snapshot(in)
	opener, ok := s.driverOf(rec).(driver.RootOpener)
	if !ok {
		return errdefs.NotImplemented("file access is not supported by this runtime")
	}
	// The same spec a start builds: the same image tree, the same id map.
	spec, err := s.buildSpec(ctx, rec)
	if err != nil {
		return fmt.Errorf("files of %s: %w", name, err)
	}
	dir, err := opener.OpenRoot(ctx, spec)
	if err != nil {
		return fmt.Errorf("files of %s: %w", name, err)
	}
	defer dir.Close()
	return fn(fsroot.New(dir), idMapping{spec.IDMap})
}

// idMapping translates between the instance's ids and the host's.
type idMapping struct{ m *driver.IDMap }

// toHost maps an instance id (-1: the instance's root) to a host id.
func (im idMapping) toHost(what string, id int64) (uint32, error) {
	if id < 0 {
		id = 0
	}
	if im.m == nil {
		if id >= math.MaxUint32 {
			return 0, errdefs.Invalid("%s %d is not a valid id", what, id)
		}
		return uint32(id), nil
	}
	if id >= int64(im.m.Size) {
		return 0, errdefs.Invalid("%s %d is outside the instance's id map (0-%d)", what, id, im.m.Size-1)
	}
	return im.m.HostID + uint32(id), nil
}

// fromHost maps a host id to what the instance sees.
func (im idMapping) fromHost(h uint32) int64 {
	if im.m == nil {
		return int64(h)
	}
	if h >= im.m.HostID && h-im.m.HostID < im.m.Size {
		return int64(h - im.m.HostID)
	}
	return overflowID
}

func modeOr(mode int64, def uint32) uint32 {
	if mode < 0 {
		return def
	}
	return uint32(mode)
}

func fileType(t fsroot.Type) string {
	switch t {
	case fsroot.TypeDir:
		return FileTypeDirectory
	case fsroot.TypeSymlink:
		return FileTypeSymlink
	default:
		return FileTypeFile
	}
}
