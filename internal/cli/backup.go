package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// newExportCmd is `hangar export NAME [FILE]`: as lxc export, a backup is
// made on the daemon, downloaded and deleted.
func newExportCmd(a *app) *cobra.Command {
	var req api.InstanceBackupsPost
	cmd := &cobra.Command{
		Use:   "export NAME [FILE]",
		Short: "Export an instance as a backup tarball (LXD's layout; lxc import reads it)",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			file := args[0] + ".tar.gz"
			if len(args) == 2 {
				file = args[1]
			}
			return exportInstance(cmd.Context(), c, args[0], file, req)
		},
	}
	cmd.Flags().BoolVar(&req.InstanceOnly, "instance-only", false, "leave the instance's snapshots out")
	cmd.Flags().BoolVar(&req.OptimizedStorage, "optimized-storage", false, "use the pool's own stream format where it has one")
	cmd.Flags().StringVar(&req.CompressionAlgorithm, "compression", "", "gzip (default), zstd, xz, lzma or none")
	return cmd
}

func exportInstance(ctx context.Context, c *client.Client, name, file string, req api.InstanceBackupsPost) (err error) {
	// A name of our own, and an expiry, so a backup this command could
	// not delete (interrupted) goes by itself, as lxc export's does.
	req.Name = "hangar-export-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	req.ExpiresAt = time.Now().Add(24 * time.Hour).UTC()
	op, err := c.CreateInstanceBackup(ctx, name, req)
	if err != nil {
		return fmt.Errorf("back up %s: %w", name, err)
	}
	if err := op.Wait(ctx); err != nil {
		return fmt.Errorf("back up %s: %w", name, err)
	}
	defer func() {
		op, derr := c.DeleteInstanceBackup(context.WithoutCancel(ctx), name, req.Name)
		if derr == nil {
			derr = op.Wait(context.WithoutCancel(ctx))
		}
		if derr != nil {
			err = errors.Join(err, fmt.Errorf("delete backup %s/%s: %w", name, req.Name, derr))
		}
	}()
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".part-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := c.GetInstanceBackupFile(ctx, name, req.Name, tmp); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// newImportCmd is `hangar import FILE [NAME] [-s POOL]`.
func newImportCmd(a *app) *cobra.Command {
	var pool string
	cmd := &cobra.Command{
		Use:   "import FILE [NAME]",
		Short: "Make an instance from a backup tarball (hangar export, lxc export)",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			ba := client.InstanceBackupArgs{PoolName: pool}
			if len(args) == 2 {
				ba.Name = args[1]
			}
			op, err := c.CreateInstanceFromBackup(cmd.Context(), f, ba)
			if err != nil {
				return err
			}
			return op.Wait(cmd.Context())
		},
	}
	cmd.Flags().StringVarP(&pool, "storage", "s", "", "storage pool for the instance's root (default: the backup's)")
	return cmd
}
