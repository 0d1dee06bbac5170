package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
)

// Snapshots of instances (hangar snapshot, lxc snapshot and restore) and
// of custom volumes (hangar storage volume snapshot).

func newSnapshotCmd(a *app) *cobra.Command {
	cmd := groupCmd("snapshot", "Manage instance snapshots", "snap")
	cmd.Long = "Manage instance snapshots: a snapshot keeps an instance's root filesystem\n" +
		"and configuration as they were, to restore them later."
	cmd.AddCommand(
		newSnapshotCreateCmd(a),
		newSnapshotListCmd(a),
		newSnapshotShowCmd(a),
		newSnapshotRestoreCmd(a),
		newSnapshotRenameCmd(a),
		newSnapshotDeleteCmd(a),
	)
	return cmd
}

// expiryFlags are create's --expiry and --no-expiry.
type expiryFlags struct {
	expiry   string
	noExpiry bool
}

func (e *expiryFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().StringVar(&e.expiry, "expiry", "", "delete the snapshot after this long (as snapshots.expiry: 30M, 2H, 1d, 2w, 1m, 1y, or several: \"1d 12H\")")
	cmd.Flags().BoolVar(&e.noExpiry, "no-expiry", false, "never delete the snapshot, whatever the "+what+"'s snapshots.expiry says")
}

// expiresAt is what create sends as expires_at: nil leaves the expiry to
// the daemon (the snapshots.expiry key), a zero time never expires.
func (e *expiryFlags) expiresAt(cmd *cobra.Command, now time.Time) (*time.Time, error) {
	switch {
	case e.noExpiry && e.expiry != "":
		return nil, usageErrorf(cmd, "--expiry and --no-expiry cannot be used together")
	case e.noExpiry:
		return &time.Time{}, nil
	case e.expiry == "":
		return nil, nil
	}
	ex, err := snapshotpolicy.ParseExpiry(e.expiry)
	if err != nil {
		return nil, usageErrorf(cmd, "--expiry: %v", err)
	}
	t := ex.After(now)
	if t.IsZero() {
		return nil, usageErrorf(cmd, "--expiry %q: give a duration (or --no-expiry)", e.expiry)
	}
	return &t, nil
}

// splitSnapshot reads lxc's INSTANCE/SNAPSHOT form of the first argument
// when no snapshot argument follows it.
func splitSnapshot(cmd *cobra.Command, args []string) (name, snap string, err error) {
	name = args[0]
	if len(args) > 1 {
		snap = args[1]
	}
	if n, s, ok := strings.Cut(name, "/"); ok {
		if snap != "" {
			return "", "", usageErrorf(cmd, "invalid instance name %q", name)
		}
		name, snap = n, s
	}
	return name, snap, nil
}

func newSnapshotCreateCmd(a *app) *cobra.Command {
	var stateful, reuse bool
	var exp expiryFlags
	cmd := &cobra.Command{
		Use:   "create INSTANCE [SNAPSHOT]",
		Short: "Snapshot an instance",
		Long: "Snapshot an instance, as lxc snapshot. Without a SNAPSHOT name the next name\n" +
			"of the instance's snapshots.pattern (snap0, snap1... by default) is taken.\n" +
			"A running container is snapshotted as it is; a running VM is paused for it,\n" +
			"and --stateful saves its memory too.",
		Example: "  hangar snapshot create web\n" +
			"  hangar snapshot create web before-upgrade --expiry 2w\n" +
			"  hangar snapshot create vm1 warm --stateful",
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, snap, err := splitSnapshot(cmd, args)
			if err != nil {
				return err
			}
			if reuse && snap == "" {
				return usageErrorf(cmd, "--reuse needs a snapshot name")
			}
			expires, err := exp.expiresAt(cmd, time.Now())
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if reuse {
				if err := deleteSnapshot(ctx, c, name, snap, true); err != nil {
					return err
				}
			}
			op, err := c.CreateInstanceSnapshot(ctx, name, api.InstanceSnapshotsPost{Name: snap, Stateful: stateful, ExpiresAt: expires})
			if err != nil {
				return err
			}
			return op.Wait(ctx)
		},
	}
	cmd.Flags().BoolVar(&stateful, "stateful", false, "save a running VM's memory too")
	cmd.Flags().BoolVar(&reuse, "reuse", false, "if the snapshot exists, delete it and take it again")
	exp.add(cmd, "instance")
	return cmd
}

// deleteSnapshot deletes a snapshot and waits; missingOK makes a missing
// one no error (create --reuse).
func deleteSnapshot(ctx context.Context, c *client.Client, name, snap string, missingOK bool) error {
	op, err := c.DeleteInstanceSnapshot(ctx, name, snap)
	if missingOK && client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return op.Wait(ctx)
}

var snapshotListing = listing[api.InstanceSnapshot]{
	// lxc info's snapshot table.
	header: []string{"NAME", "TAKEN AT", "EXPIRES AT", "STATEFUL"},
	row: func(s api.InstanceSnapshot) []string {
		return []string{s.Name, formatTime(s.CreatedAt), formatTime(s.ExpiresAt), yesNo(s.Stateful)}
	},
}

func newSnapshotListCmd(a *app) *cobra.Command {
	return listUnderCmd(a, &cobra.Command{Use: "list INSTANCE", Aliases: []string{"ls"}, Short: "List an instance's snapshots",
		Long: "List an instance's snapshots, oldest first."},
		snapshotListing, func(ctx context.Context, c *client.Client, name string) ([]api.InstanceSnapshot, error) {
			return c.GetInstanceSnapshots(ctx, name)
		})
}

func newSnapshotShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show INSTANCE SNAPSHOT",
		Short: "Show an instance snapshot as YAML",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, snap, err := splitSnapshot(cmd, args)
			if err != nil {
				return err
			}
			if snap == "" {
				return usageErrorf(cmd, "missing snapshot name")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			sn, _, err := c.GetInstanceSnapshot(cmd.Context(), name, snap)
			if err != nil {
				return err
			}
			return renderYAML(a.out, sn)
		},
	}
}

func newSnapshotRestoreCmd(a *app) *cobra.Command {
	var stateful bool
	cmd := &cobra.Command{
		Use:   "restore INSTANCE SNAPSHOT",
		Short: "Restore an instance from a snapshot",
		Long: "Make an instance's root filesystem and configuration what the snapshot\n" +
			"holds, as lxc restore. A running instance is stopped first and started\n" +
			"again after; --stateful brings a VM back with the memory it saved.",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			op, err := c.RestoreInstanceSnapshot(ctx, args[0], strings.TrimPrefix(args[1], args[0]+"/"), stateful)
			if err != nil {
				return err
			}
			return op.Wait(ctx)
		},
	}
	cmd.Flags().BoolVar(&stateful, "stateful", false, "restore the VM's saved memory too")
	return cmd
}

func newSnapshotRenameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rename INSTANCE SNAPSHOT NEW",
		Aliases: []string{"mv"},
		Short:   "Rename an instance snapshot",
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			op, err := c.RenameInstanceSnapshot(ctx, args[0], args[1], args[2])
			if err != nil {
				return err
			}
			return op.Wait(ctx)
		},
	}
}

func newSnapshotDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete INSTANCE SNAPSHOT...",
		Aliases: []string{"rm"},
		Short:   "Delete instance snapshots",
		Args:    minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return forEach(args[1:], func(snap string) error {
				return deleteSnapshot(cmd.Context(), c, args[0], snap, false)
			})
		},
	}
}

// Custom volume snapshots.

func newVolumeSnapshotCmd(a *app) *cobra.Command {
	cmd := groupCmd("snapshot", "Manage custom storage volume snapshots")
	cmd.AddCommand(
		newVolumeSnapshotCreateCmd(a),
		newVolumeSnapshotListCmd(a),
		newVolumeSnapshotShowCmd(a),
		newVolumeSnapshotRestoreCmd(a),
		newVolumeSnapshotRenameCmd(a),
		newVolumeSnapshotDeleteCmd(a),
	)
	return cmd
}

func newVolumeSnapshotCreateCmd(a *app) *cobra.Command {
	var exp expiryFlags
	cmd := &cobra.Command{
		Use:     "create POOL [custom/]VOLUME [SNAPSHOT]",
		Short:   "Snapshot a custom storage volume",
		Long:    "Snapshot a custom storage volume. Without a SNAPSHOT name the first free snapN is taken.",
		Example: "  hangar storage volume snapshot create default data\n  hangar storage volume snapshot create default data nightly --expiry 1w",
		Args:    rangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			expires, err := exp.expiresAt(cmd, time.Now())
			if err != nil {
				return err
			}
			req := api.StorageVolumeSnapshotsPost{ExpiresAt: expires}
			if len(args) > 2 {
				req.Name = args[2]
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			typ, name := parseVolume(args[1])
			op, err := c.CreateStoragePoolVolumeSnapshot(ctx, args[0], typ, name, req)
			if err != nil {
				return err
			}
			return op.Wait(ctx)
		},
	}
	exp.add(cmd, "volume")
	return cmd
}

var volumeSnapshotListing = listing[api.StorageVolumeSnapshot]{
	header: []string{"NAME", "DESCRIPTION", "TAKEN AT", "EXPIRES AT"},
	row: func(s api.StorageVolumeSnapshot) []string {
		exp := ""
		if s.ExpiresAt != nil {
			exp = formatTime(*s.ExpiresAt)
		}
		return []string{s.Name, s.Description, formatTime(s.CreatedAt), exp}
	},
}

func newVolumeSnapshotListCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "list POOL [TYPE/]VOLUME",
		Aliases: []string{"ls"},
		Short:   "List a storage volume's snapshots",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(cmd, format, listFormats...); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			typ, name := parseVolume(args[1])
			snaps, err := c.GetStoragePoolVolumeSnapshots(cmd.Context(), args[0], typ, name)
			if err != nil {
				return err
			}
			return volumeSnapshotListing.render(a.out, format, snaps)
		},
	}
	addFormatFlag(cmd, &format)
	return cmd
}

func newVolumeSnapshotShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show POOL [TYPE/]VOLUME SNAPSHOT",
		Short: "Show a storage volume snapshot as YAML",
		Args:  exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			typ, name := parseVolume(args[1])
			sn, _, err := c.GetStoragePoolVolumeSnapshot(cmd.Context(), args[0], typ, name, args[2])
			if err != nil {
				return err
			}
			return renderYAML(a.out, sn)
		},
	}
}

func newVolumeSnapshotRestoreCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "restore POOL [custom/]VOLUME SNAPSHOT",
		Short: "Restore a custom storage volume from a snapshot",
		Long:  "Make a custom volume's content its snapshot's. A volume attached to an instance is refused.",
		Args:  exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			typ, name := parseVolume(args[1])
			return c.RestoreStoragePoolVolume(cmd.Context(), args[0], typ, name, args[2])
		},
	}
}

func newVolumeSnapshotRenameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rename POOL [custom/]VOLUME SNAPSHOT NEW",
		Aliases: []string{"mv"},
		Short:   "Rename a storage volume snapshot",
		Args:    exactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			typ, name := parseVolume(args[1])
			op, err := c.RenameStoragePoolVolumeSnapshot(ctx, args[0], typ, name, args[2], args[3])
			if err != nil {
				return err
			}
			return op.Wait(ctx)
		},
	}
}

func newVolumeSnapshotDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete POOL [custom/]VOLUME SNAPSHOT...",
		Aliases: []string{"rm"},
		Short:   "Delete storage volume snapshots",
		Args:    minArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			typ, name := parseVolume(args[1])
			return forEach(args[2:], func(snap string) error {
				op, err := c.DeleteStoragePoolVolumeSnapshot(ctx, args[0], typ, name, snap)
				if err != nil {
					return err
				}
				return op.Wait(ctx)
			})
		},
	}
}
