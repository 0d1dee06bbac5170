package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// errInstanceRunning is lxc's message for deleting a running instance.
var errInstanceRunning = errors.New("the instance is currently running, stop it first or pass --force")

func newDeleteCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete instances",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return forEach(args, func(name string) error {
				return deleteInstance(cmd.Context(), c, name, force)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "stop a running instance (killing it) before deleting it")
	return cmd
}

// deleteInstance refuses a running instance unless forced, in which case it
// is killed first, as lxc delete --force does.
func deleteInstance(ctx context.Context, c *client.Client, name string, force bool) error {
	inst, _, err := c.GetInstance(ctx, name)
	if err != nil {
		return err
	}
	if isActive(inst) {
		if !force {
			return errInstanceRunning
		}
		op, err := c.UpdateInstanceState(ctx, name, api.InstanceStatePut{Action: api.ActionStop, Timeout: -1, Force: true})
		if err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
		if err := op.Wait(ctx); err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
	}
	op, err := c.DeleteInstance(ctx, name)
	if err != nil {
		// Stopping an ephemeral instance deletes it.
		if inst.Ephemeral && client.IsNotFound(err) {
			return nil
		}
		return err
	}
	return op.Wait(ctx)
}

// isActive reports whether an instance is anything but stopped, as lxc
// decides it: a frozen or erroring instance also needs --force.
func isActive(inst *api.Instance) bool {
	if inst.StatusCode != 0 {
		return inst.StatusCode != api.Stopped
	}
	return inst.Status != "" && inst.Status != api.Stopped.String()
}

func newRenameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rename OLD NEW",
		Aliases: []string{"move", "mv"},
		Short:   "Rename an instance",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			op, err := c.RenameInstance(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return op.Wait(cmd.Context())
		},
	}
}
