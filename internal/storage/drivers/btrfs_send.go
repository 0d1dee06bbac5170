package drivers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
)

// Optimized transfer on btrfs: `btrfs send` streams and `btrfs receive`
// (btrfs-progs), as LXD's optimized backups and same-driver migrations
// use them. A stream describes one read-only subvolume, whole or as the
// changes since a parent subvolume the receiving side also has.
//
// btrfs receive finds an incremental stream's parent by UUID: a
// subvolume whose received UUID (set when it was itself received) or own
// UUID is the sent parent's. So the parent a receive needs is the volume
// an earlier ReceiveVolume of the parent's stream made read-only on this
// pool (a read-only snapshot of what btrfs received, which keeps the
// received UUID), whatever its name; a writable receive has no received
// UUID (btrfs clears it in writable snapshots) and so can be no parent.

// SendVolume runs btrfs send on vol (with -p parent), into w.
func (d *btrfsDriver) SendVolume(ctx context.Context, vol Volume, parent *Volume, w io.Writer) error {
	if err := d.checkSendable(vol); err != nil {
		return err
	}
	args := []string{"send", "-q"}
	if parent != nil {
		if err := d.checkSendable(*parent); err != nil {
			return fmt.Errorf("parent: %w", err)
		}
		if parent.Content != vol.Content {
			return errdefs.Invalid("a %s volume cannot be sent against a %s parent", vol.Content, parent.Content)
		}
		args = append(args, "-p", d.l.path(*parent))
	}
	args = append(args, d.l.path(vol))
	if err := runBtrfs(ctx, nil, w, args...); err != nil {
		return fmt.Errorf("send %s/%s: %w", vol.Type, vol.Name, err)
	}
	return nil
}

// checkSendable: btrfs sends only read-only subvolumes (a snapshot, an
// image volume), which cannot change under the stream.
func (d *btrfsDriver) checkSendable(vol Volume) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	fd, err := openDir(d.l.path(vol))
	if errors.Is(err, unix.ENOENT) {
		return errdefs.NotFound("volume %s/%s not found", vol.Type, vol.Name)
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ro, err := btrfsReadOnly(fd)
	if err != nil {
		return err
	}
	if !ro {
		return errdefs.Invalid("volume %s/%s is writable: only a read-only volume (a snapshot) can be sent", vol.Type, vol.Name)
	}
	return nil
}

// ReceiveVolume runs btrfs receive into a scratch subvolume (a .tmp-
// name, so a kill leaves only what Sweep removes), then puts a snapshot
// of what it received in place, read-only or writable, and removes the
// scratch subvolume with what it holds.
func (d *btrfsDriver) ReceiveVolume(ctx context.Context, vol Volume, r io.Reader, readOnly bool) error {
	if err := checkVolume(vol); err != nil {
		return err
	}
	if err := mustNotExist(d.l, vol); err != nil {
		return err
	}
	rv := revert.New()
	defer rv.Fail()
	scratch := d.l.tmpPath(vol)
	if err := btrfsSubvolCreate(scratch); err != nil {
		return noSpace(err)
	}
	rv.Add(func() { _ = btrfsDeleteTree(scratch) })
	if err := runBtrfs(ctx, r, nil, "receive", scratch); err != nil {
		return fmt.Errorf("receive %s/%s: %w", vol.Type, vol.Name, err)
	}
	got, err := receivedSubvolume(scratch)
	if err != nil {
		return fmt.Errorf("receive %s/%s: %w", vol.Type, vol.Name, err)
	}
	if vol.Content == ContentBlock {
		if _, err := os.Stat(filepath.Join(got, BlockFile)); err != nil {
			return errdefs.Invalid("receive %s/%s: the stream is not of a block volume (no %s)", vol.Type, vol.Name, BlockFile)
		}
	}
	// A read-only subvolume cannot move to another directory (its ".."
	// would change), so what goes into place is a snapshot of it: a
	// read-only snapshot keeps the received UUID (btrfs clears it only
	// in writable ones), so later increments find it as their parent.
	tmp := d.l.tmpPath(vol)
	if err := btrfsSnapshot(got, tmp, readOnly); err != nil {
		return noSpace(err)
	}
	rv.Add(func() { _ = btrfsDeleteTree(tmp) })
	if err := renameNoReplace(tmp, d.l.path(vol)); err != nil {
		return err
	}
	rv.Success()
	if err := btrfsDeleteTree(scratch); err != nil {
		d.p.Log.Warn("receive: scratch subvolume not removed; Sweep will", "path", scratch, "err", err)
	}
	return nil
}

// receivedSubvolume is the one read-only subvolume btrfs receive made in
// scratch.
func receivedSubvolume(scratch string) (string, error) {
	ents, err := os.ReadDir(scratch)
	if err != nil {
		return "", err
	}
	if len(ents) != 1 || !ents[0].IsDir() {
		return "", errdefs.Invalid("the stream made %d entries, want one subvolume", len(ents))
	}
	got := filepath.Join(scratch, ents[0].Name())
	fd, err := openDir(got)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	if ro, err := btrfsReadOnly(fd); err != nil || !ro {
		return "", errors.Join(err, errdefs.Invalid("the stream did not finish its subvolume %s (not made read-only)", ents[0].Name()))
	}
	return got, nil
}

// runBtrfs runs btrfs-progs with stdin and stdout; its failure carries
// its stderr, a kind for what the caller can act on: no space (507), a
// parent missing on this pool (404), any other receive failure a bad
// stream (400: a truncated or corrupt backup).
func runBtrfs(ctx context.Context, stdin io.Reader, stdout io.Writer, args ...string) error {
	if _, err := exec.LookPath("btrfs"); err != nil {
		return fmt.Errorf("btrfs (btrfs-progs) is not installed: %w", err)
	}
	cmd := exec.CommandContext(ctx, "btrfs", args...)
	cmd.Stdin, cmd.Stdout = stdin, stdout
	if stdin != nil {
		// Once btrfs has exited, the goroutine feeding it from stdin may
		// be blocked reading a stream that never ends (a sender that
		// stalled): do not wait for it forever. (Not for stdout: what
		// btrfs send wrote must all reach a slow writer.)
		cmd.WaitDelay = 5 * time.Second
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	msg := strings.TrimSpace(stderr.String())
	var exit *exec.ExitError
	switch {
	case !errors.As(err, &exit):
		return fmt.Errorf("btrfs %s: %w", args[0], err)
	case strings.Contains(msg, "No space left on device") || strings.Contains(msg, "Disk quota exceeded"):
		return errdefs.NoSpace("btrfs %s: %s", args[0], msg)
	case args[0] == "receive" && strings.Contains(msg, "cannot find parent subvolume"):
		return errdefs.NotFound("btrfs receive: %s (receive the parent snapshot first, read-only)", msg)
	case args[0] == "receive":
		return errdefs.Invalid("btrfs receive: %s", msg)
	}
	return fmt.Errorf("btrfs %s: %w: %s", args[0], err, msg)
}
