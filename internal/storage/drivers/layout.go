package drivers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// The on-disk layout both drivers share under a pool's root:
//
//	ROOT/images/NAME             an image volume (filesystem)
//	ROOT/containers/NAME         a container's root volume
//	ROOT/virtual-machines/NAME.block  a VM's root volume: BlockFile inside
//	ROOT/custom/NAME[.block]     custom volumes
//	ROOT/custom/NAME@iso         an ISO volume: BlockFile inside (no
//	                             custom volume's name has "@", so no
//	                             filesystem volume's directory can take an
//	                             ISO volume's name, as one named x.iso
//	                             could take x.iso's; snapshots' @TOKEN is
//	                             hex, never "iso")
//	ROOT/TYPE/NAME@TOKEN[.block] a snapshot of NAME, beside it
//	ROOT/TYPE/.tmp-NAME-RANDOM   a volume being made or being removed
//
// A volume is made under a .tmp- name and renamed into place when whole;
// it is renamed to a .tmp- name before it is removed. So a killed create
// or delete leaves only a .tmp- entry, which Volumes does not list and
// Sweep removes: the rename is the commit point. A restore makes the new
// content under a .tmp- name and exchanges it with the volume in one
// rename: the old content is then under the .tmp- name, removed next or
// by Sweep.

// typeDirs are the directories per volume type, as LXD names them.
var typeDirs = map[VolumeType]string{
	TypeImage:     "images",
	TypeContainer: "containers",
	TypeVM:        "virtual-machines",
	TypeCustom:    "custom",
}

const (
	tmpPrefix   = ".tmp-"
	blockSuffix = ".block"
	isoSuffix   = "@iso"
	// maxVolumeName keeps a volume's .tmp- name within NAME_MAX.
	maxVolumeName = 200
	// blockAlign: a block volume's size is rounded up to it, as LXD does,
	// so that QEMU never sees a disk that ends mid-sector or mid-cluster.
	blockAlign = 8 << 10
)

type layout struct{ root string }

func (l layout) typeDir(t VolumeType) string { return filepath.Join(l.root, typeDirs[t]) }

func (l layout) path(vol Volume) string {
	name := vol.Name
	switch vol.Content {
	case ContentBlock:
		name += blockSuffix
	case ContentISO:
		name += isoSuffix
	}
	return filepath.Join(l.typeDir(vol.Type), name)
}

// tmpPath is a fresh .tmp- name beside vol.
func (l layout) tmpPath(vol Volume) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return filepath.Join(l.typeDir(vol.Type), tmpPrefix+filepath.Base(l.path(vol))+"-"+hex.EncodeToString(b))
}

func (l layout) makeTypeDirs() error {
	for _, d := range typeDirs {
		if err := os.MkdirAll(filepath.Join(l.root, d), 0o711); err != nil {
			return err
		}
	}
	return nil
}

// volumes lists what is in the type directories, leaving out .tmp-
// entries and anything else hidden.
func (l layout) volumes(ctx context.Context) ([]Volume, error) {
	var out []Volume
	for t, d := range typeDirs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ents, err := os.ReadDir(filepath.Join(l.root, d))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
				continue
			}
			v := Volume{Type: t, Name: e.Name(), Content: ContentFilesystem}
			if n, ok := strings.CutSuffix(e.Name(), blockSuffix); ok {
				v.Name, v.Content = n, ContentBlock
			} else if n, ok := strings.CutSuffix(e.Name(), isoSuffix); ok {
				v.Name, v.Content = n, ContentISO
			}
			out = append(out, v)
		}
	}
	return out, nil
}

// leftovers lists the .tmp- entries of every type directory.
func (l layout) leftovers() ([]string, error) {
	var out []string
	for _, d := range typeDirs {
		ents, err := os.ReadDir(filepath.Join(l.root, d))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				out = append(out, filepath.Join(l.root, d, e.Name()))
			}
		}
	}
	return out, nil
}

// removeTypeDirs removes the (empty) type directories when a pool is
// deleted. One that still holds a volume is a 409: the manager should
// have removed every volume, and a driver never wipes what it was not
// asked to.
func (l layout) removeTypeDirs() error {
	for _, d := range typeDirs {
		p := filepath.Join(l.root, d)
		err := unix.Rmdir(p)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
		case errors.Is(err, unix.ENOTEMPTY), errors.Is(err, unix.EEXIST):
			return errdefs.Conflict("the pool still holds volumes in %s", p)
		default:
			return fmt.Errorf("remove %s: %w", p, err)
		}
	}
	return nil
}

// checkVolume refuses what cannot be a volume, before any path is built
// from it: the manager names volumes, but a name with a slash or a
// leading dot must never reach the disk.
func checkVolume(vol Volume) error {
	if _, ok := typeDirs[vol.Type]; !ok {
		return errdefs.Invalid("unknown volume type %q", vol.Type)
	}
	switch vol.Content {
	case ContentFilesystem, ContentBlock:
	case ContentISO:
		if vol.Type != TypeCustom {
			return errdefs.Invalid("only custom volumes hold ISO images, not %s volumes", vol.Type)
		}
	default:
		return errdefs.Invalid("unknown volume content type %q", vol.Content)
	}
	return checkVolumeName(vol.Name, vol.Content)
}

func checkVolumeName(name string, content ContentType) error {
	switch {
	case name == "", strings.HasPrefix(name, "."), strings.ContainsAny(name, "/\x00"):
		return errdefs.Invalid("volume name %q is not usable as a file name (empty, a leading dot or a slash)", name)
	case len(name) > maxVolumeName:
		return errdefs.Invalid("volume name %q is longer than %d bytes", name, maxVolumeName)
	case content == ContentFilesystem && strings.HasSuffix(name, blockSuffix):
		return errdefs.Invalid("volume name %q ends in %q, which marks block volumes on disk", name, blockSuffix)
	}
	return nil
}

// renameNoReplace renames a made volume into place; an existing volume
// of that name is a 409, never overwritten (a plain rename would replace
// an empty directory).
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		return errdefs.Conflict("%s already exists", to)
	}
	if err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}

// checkPair checks two volumes one is made from (a clone and its parent,
// a snapshot and its volume): both usable and of the same content type,
// and, when sameType, of the same volume type.
func checkPair(vol, from Volume, sameType bool) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	if err := checkVolume(from); err != nil {
		return err
	}
	if vol.Content != from.Content {
		return errdefs.Invalid("a %s volume cannot be made from a %s volume", vol.Content, from.Content)
	}
	if sameType && vol.Type != from.Type {
		return errdefs.Invalid("a %s volume cannot be made from a %s volume", vol.Type, from.Type)
	}
	return nil
}

// mustExist is the 404 for a volume that is not on the pool.
func mustExist(l layout, vol Volume) error {
	_, err := os.Lstat(l.path(vol))
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("volume %s/%s not found", vol.Type, vol.Name)
	}
	return err
}

// mustNotExist is the 409 for a volume already on the pool.
func mustNotExist(l layout, vol Volume) error {
	_, err := os.Lstat(l.path(vol))
	switch {
	case err == nil:
		return errdefs.Conflict("volume %s/%s already exists", vol.Type, vol.Name)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	}
	return err
}

// swapIn puts a made copy (at tmp) in vol's place and returns where
// vol's old content now is, for the caller to remove. It is one
// RENAME_EXCHANGE, so at every instant vol's name holds the old or the
// new content and the other is under a .tmp- name Sweep removes. A
// filesystem without RENAME_EXCHANGE (a dir pool on NFS, say) gets two
// renames, with a window in which a kill leaves vol missing: its old
// content is then under a .tmp- name, which Sweep removes, so such a
// restore is not crash-safe there (ext4, xfs, btrfs and tmpfs all have
// the exchange).
func swapIn(l layout, tmp string, vol Volume) (old string, err error) {
	final := l.path(vol)
	err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		return tmp, nil
	case errors.Is(err, unix.ENOENT):
		return "", errdefs.NotFound("volume %s/%s not found", vol.Type, vol.Name)
	case errors.Is(err, unix.EBUSY):
		return "", errdefs.Conflict("volume %s/%s is mounted at %s", vol.Type, vol.Name, final)
	case !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EOPNOTSUPP):
		return "", &os.LinkError{Op: "exchange", Old: tmp, New: final, Err: err}
	}
	aside, err := moveAside(l, vol)
	if err != nil {
		return "", err
	}
	if aside == "" {
		return "", errdefs.NotFound("volume %s/%s not found", vol.Type, vol.Name)
	}
	if err := renameNoReplace(tmp, final); err != nil {
		// Put the old content back; if that fails too, it waits under
		// its .tmp- name, as after a kill.
		return "", errors.Join(err, renameNoReplace(aside, final))
	}
	return aside, nil
}

// moveAside renames a volume to a .tmp- name before it is removed, so a
// removal killed part way leaves a leftover Sweep finds, never a volume
// half gone. A missing volume gives "" and no error.
func moveAside(l layout, vol Volume) (string, error) {
	tmp := l.tmpPath(vol)
	err := os.Rename(l.path(vol), tmp)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case errors.Is(err, unix.EBUSY):
		return "", errdefs.Conflict("volume %s/%s is mounted at %s", vol.Type, vol.Name, l.path(vol))
	case err != nil:
		return "", err
	}
	return tmp, nil
}

// roundBlock rounds a block volume's size up to blockAlign.
func roundBlock(size int64) int64 {
	return (size + blockAlign - 1) / blockAlign * blockAlign
}

// makeBlockFile creates a block volume's file in dir, sparse, of size
// bytes; prepare runs on the empty file first (btrfs turns copy-on-write
// off there, which only works before the file has data).
func makeBlockFile(dir string, size int64, prepare func(*os.File) error) error {
	f, err := os.OpenFile(filepath.Join(dir, BlockFile), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if prepare != nil {
		if err := prepare(f); err != nil {
			return err
		}
	}
	if err := f.Truncate(roundBlock(size)); err != nil {
		return noSpace(err)
	}
	return f.Close()
}

// growBlockFile grows a block volume's file to size (rounded up); a
// smaller size is refused, never a truncation of the disk's end.
func growBlockFile(dir string, size int64) error {
	if size <= 0 {
		return nil // LXD: no size on a block volume changes nothing
	}
	p := filepath.Join(dir, BlockFile)
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("block volume %s not found", dir)
	}
	if err != nil {
		return err
	}
	size = roundBlock(size)
	switch {
	case size == st.Size():
		return nil
	case size < st.Size():
		return errdefs.Invalid("a block volume cannot shrink (from %d to %d bytes)", st.Size(), size)
	}
	return noSpace(os.Truncate(p, size))
}

// blockUsage is a block volume's allocated and apparent size.
func blockUsage(dir string) (Usage, error) {
	var st unix.Stat_t
	p := filepath.Join(dir, BlockFile)
	if err := unix.Stat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Usage{}, errdefs.NotFound("block volume %s not found", dir)
		}
		return Usage{}, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return Usage{Used: st.Blocks * 512, Total: st.Size}, nil
}

// noSpace gives a full filesystem or a hit quota its own kind (507 at the
// edge), keeping the cause in the message.
func noSpace(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return errdefs.NoSpace("%v", err)
	}
	return err
}

// fillVolume runs the manager's fill on a volume being made.
func fillVolume(fill func(string) error, dir string) error {
	if fill == nil {
		return nil
	}
	if err := fill(dir); err != nil {
		return noSpace(fmt.Errorf("fill: %w", err))
	}
	return nil
}

// errISOSize refuses resizing an ISO volume: its size is its image's.
var errISOSize = errdefs.Invalid("an ISO volume's size is its image's: it cannot be resized")

// checkCreate refuses a volume CreateVolume cannot make: a block volume
// with neither a size nor a fill, an ISO volume without the fill that
// writes its image or with a size of its own.
func checkCreate(vol Volume, size int64, fill func(string) error) error {
	switch {
	case vol.Content == ContentBlock && size <= 0 && fill == nil:
		return errdefs.Invalid("a block volume needs a size")
	case vol.Content == ContentISO && fill == nil:
		return errdefs.Invalid("an ISO volume is made from its image: it cannot be created empty")
	case vol.Content == ContentISO && size != 0:
		return errISOSize
	}
	return nil
}

// checkFilled checks what a fill left: a block volume's file (grown to
// size), an ISO volume's image (a file of at least one byte).
func checkFilled(dir string, vol Volume, size int64) error {
	switch vol.Content {
	case ContentBlock:
		return checkBlockFilled(dir, size)
	case ContentISO:
		st, err := os.Stat(filepath.Join(dir, BlockFile))
		if err != nil {
			return fmt.Errorf("ISO volume has no %s after fill: %w", BlockFile, err)
		}
		if !st.Mode().IsRegular() || st.Size() == 0 {
			return errdefs.Invalid("ISO volume's %s is empty or not a file", BlockFile)
		}
	}
	return nil
}

// checkBlockFilled makes sure a block volume's file is there after the
// fill (which may have replaced it) and at least size bytes.
func checkBlockFilled(dir string, size int64) error {
	st, err := os.Stat(filepath.Join(dir, BlockFile))
	if err != nil {
		return fmt.Errorf("block volume has no %s after fill: %w", BlockFile, err)
	}
	if st.Size() < roundBlock(size) {
		return growBlockFile(dir, size)
	}
	return nil
}

// sweep removes what killed creates and deletes left under temporary
// names, each with the driver's remove.
func (l *layout) sweep(ctx context.Context, remove func(ctx context.Context, path string) error, log *slog.Logger) error {
	left, err := l.leftovers()
	if err != nil {
		return err
	}
	killStrays(left, log)
	for _, p := range left {
		if err := remove(ctx, p); err != nil {
			return fmt.Errorf("remove leftover %s: %w", p, err)
		}
		log.Info("removed a leftover of a killed volume call (create, copy, restore, receive or delete)", "path", p)
	}
	return nil
}

// killStrays kills the processes a killed daemon left writing into the
// leftovers it is about to remove: a cp or qemu-img outlives hangard (it
// is not in hangard's process group's fate), and, left to run, it would
// go on writing into a .tmp- directory while sweep removes it. A process
// is a stray when one of its arguments names a path under a leftover.
func killStrays(left []string, log *slog.Logger) {
	if len(left) == 0 {
		return
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if !namesAny(strings.Split(string(cmdline), "\x00"), left) {
			continue
		}
		if err := unix.Kill(pid, unix.SIGKILL); err == nil {
			log.Info("killed a process a killed daemon left writing into a volume", "pid", pid, "command", strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "))
			waitGone(pid)
		}
	}
}

// namesAny says whether an argument is one of dirs or a path below one.
func namesAny(args, dirs []string) bool {
	for _, a := range args {
		for _, d := range dirs {
			if a == d || strings.HasPrefix(a, d+"/") {
				return true
			}
		}
	}
	return false
}

// waitGone waits (briefly) until a killed process is gone or a zombie
// (its parent was the killed daemon: whoever inherited it reaps it), so
// it writes nothing more while the sweep removes what it wrote.
func waitGone(pid int) {
	for range 200 {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// The state follows the command's closing parenthesis.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
