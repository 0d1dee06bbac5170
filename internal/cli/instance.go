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
	cmd := deleteCmd(a, &cobra.Command{Use: "delete NAME...", Short: "Delete instances"},
		func(ctx context.Context, c *client.Client, name string) error {
			return deleteInstance(ctx, c, name, force)
		})
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
	return renameCmd(a, &cobra.Command{Use: "rename OLD NEW", Aliases: []string{"move", "mv"}, Short: "Rename an instance"},
		func(ctx context.Context, c *client.Client, from, to string) error {
			op, err := c.RenameInstance(ctx, from, to)
			if err != nil {
				return err
			}
			return op.Wait(ctx)
		})
}
