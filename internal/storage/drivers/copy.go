package drivers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// CopyTree copies the directory from to to (missing, or an empty directory) with
// GNU cp: -a keeps ownership (numeric), modes, timestamps, hard links
// within the tree, device nodes, symlinks, and every xattr the kernel
// lets root read (security.capability, POSIX ACLs, user.*, trusted.*);
// --reflink=auto shares blocks where the filesystem can (btrfs, xfs)
// and copies elsewhere; --sparse=always keeps a sparse file's holes (and
// makes holes of runs of zeros). cp sets a file's owner before its
// xattrs, so a capability survives the chown that would clear it.
//
// cp follows no mount rule of its own: a mount under a volume in the
// host's namespace is copied through (volumes are not mounted under
// each other by hangard; containers mount in their own namespace).
func CopyTree(ctx context.Context, from, to string) error {
	if _, err := exec.LookPath("cp"); err != nil {
		return fmt.Errorf("cp (GNU coreutils) is not installed: %w", err)
	}
	cmd := exec.CommandContext(ctx, "cp", "-a", "--reflink=auto", "--sparse=always", "--no-target-directory", "--", from, to)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("copy %s: %w", from, ctx.Err())
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Contains(msg, "No space left on device") || strings.Contains(msg, "Disk quota exceeded") {
		return errdefs.NoSpace("copy %s: %s", from, msg)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("copy %s to %s: cp: %s", from, to, msg)
	}
	return fmt.Errorf("copy %s to %s: %w", from, to, err)
}

// copyVolume makes a copy of the tree at from under a fresh .tmp- name
// beside vol and returns that name: the caller renames or swaps it into
// place. On failure nothing is left (cp's partial copy is removed with
// the same removal a delete uses).
func copyVolume(ctx context.Context, l layout, vol Volume, from string) (string, error) {
	tmp := l.tmpPath(vol)
	if err := CopyTree(ctx, from, tmp); err != nil {
		if rerr := removeTree(context.Background(), tmp); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the partial copy (Sweep will): %w", rerr))
		}
		return "", err
	}
	return tmp, nil
}
