package instance

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// What only virtual machines have: stateful stop (standby), files reached
// through the guest agent (a VM's disk is not a tree the host can open),
// disk images booted with UEFI firmware, and the least memory a guest
// boots with. What differs by type in general (the driver, the keys that
// apply) is in bytype.go.

// minVMMemory is the least RAM a VM boots with (the kernel and the
// unpacked initramfs must fit); the QEMU driver says the same.
const minVMMemory = 128 << 20

// standby saves a VM's state and ends it (stateful stop), compressed as
// override says, else as the instance's snapshots.compression says.
func (s *Service) standby(ctx context.Context, rec store.Instance, override string) error {
	st, ok := s.driverOf(rec).(driver.Stateful)
	if !ok {
		return errdefs.Invalid("stateful: stateful stop is supported for virtual machines only")
	}
	comp, err := s.compressionOf(rec, override)
	if err != nil {
		return err
	}
	return st.Standby(ctx, runtimeID(rec.ID), comp)
}

// withGuest runs fn when name is an instance whose files its driver reaches
// through a guest agent (a VM), holding the instance's lock; handled is
// false for other instances (their root is opened on the host instead).
func (s *Service) withGuest(ctx context.Context, name string, fn func(gf driver.GuestFiles, id string) error) (handled bool, err error) {
	in, err := s.lookup(ctx, name)
	if err != nil {
		return true, err
	}
	rec, _, _ := s.snapshot(in)
	gf, ok := s.driverOf(rec).(driver.GuestFiles)
	if !ok {
		return false, nil
	}
	if in, err = s.lockInstance(ctx, name); err != nil {
		return true, err
	}
	defer in.op.Unlock()
	rec, status, _ := s.snapshot(in)
	if err := s.checkAgentServes(rec); err != nil {
		return true, err
	}
	if status != StatusRunning {
		return true, errdefs.Invalid("instance %q is %s: a virtual machine's files are reached through its guest agent, so it must be running", name, status)
	}
	return true, guestErr(fn(gf, runtimeID(rec.ID)))
}

// guestErr maps the agent's file errors to the API's kinds.
func guestErr(err error) error {
	var ge *driver.GuestFileError
	if errors.As(err, &ge) {
		switch {
		case ge.Disabled:
			return errAgentSkipped
		case ge.NotFound:
			return errdefs.NotFound("%s", ge.Message)
		case ge.Exists:
			return errdefs.Conflict("%s", ge.Message)
		default:
			return errdefs.Invalid("%s", ge.Message)
		}
	}
	return err
}

func (s *Service) readGuestFile(ctx context.Context, name, p string, fn func(*File) error) (bool, error) {
	return s.withGuest(ctx, name, func(gf driver.GuestFiles, id string) error {
		// The content is spooled to a temporary file: the API serves it
		// with ranges, which need a file it can seek.
		tmp, err := os.CreateTemp("", "hangar-vmfile-")
		if err != nil {
			return err
		}
		os.Remove(tmp.Name())
		info, err := gf.GuestReadFile(ctx, id, p, tmp)
		if err != nil {
			tmp.Close()
			return err
		}
		f := &File{
			Type: info.Type, UID: info.UID, GID: info.GID, Mode: info.Mode, Size: info.Size,
			ModTime: info.ModTime, Entries: info.Entries, Target: info.Target,
		}
		if f.Type == FileTypeSymlink {
			f.Target = absTarget(p, f.Target)
		}
		if info.Type == FileTypeFile {
			if _, err := tmp.Seek(0, io.SeekStart); err != nil {
				tmp.Close()
				return err
			}
			f.Content = tmp
		} else {
			tmp.Close()
		}
		if f.Content != nil {
			defer f.Content.Close()
		}
		return fn(f)
	})
}

func (s *Service) writeGuestFile(ctx context.Context, name, p string, w FileWrite) (bool, error) {
	return s.withGuest(ctx, name, func(gf driver.GuestFiles, id string) error {
		mode := w.Mode
		if mode < 0 {
			mode = defaultFileMode
			if w.Type == FileTypeDirectory {
				mode = defaultDirMode
			}
		}
		err := gf.GuestWriteFile(ctx, id, p, driver.GuestFileWrite{
			Type: w.Type, UID: max(w.UID, 0), GID: max(w.GID, 0), Mode: uint32(mode), Append: w.Append, Content: w.Content,
		})
		return err
	})
}

func (s *Service) deleteGuestFile(ctx context.Context, name, p string) (bool, error) {
	return s.withGuest(ctx, name, func(gf driver.GuestFiles, id string) error {
		return gf.GuestDeleteFile(ctx, id, p)
	})
}

// imageFitsType refuses a virtual-machine image (a bootable disk) for a
// container: a container needs a root filesystem tree. A root-tree image
// fits both types (a VM boots it with the host's kernel).
func imageFitsType(img Image, fp string, typ Type) error {
	if img.Type == TypeVM && typ != TypeVM {
		return errdefs.Invalid("source: image %s is a virtual-machine image (a disk): launch it as a virtual machine (type %q, --vm)", shortFP(fp), TypeVM)
	}
	return nil
}

func shortFP(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

// secureBootOf reads security.secureboot: on unless turned off, as in LXD.
func secureBootOf(cfg map[string]string) (bool, error) {
	v := cfg["security.secureboot"]
	if v == "" {
		return true, nil
	}
	b, err := parseBool(v)
	if err != nil {
		return false, errdefs.Invalid("security.secureboot: %v", err)
	}
	return b, nil
}
