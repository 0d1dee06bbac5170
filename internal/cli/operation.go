package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

func newOperationCmd(a *app) *cobra.Command {
	cmd := groupCmd("operation", "Manage background operations")
	cmd.AddCommand(
		newOperationListCmd(a),
		newOperationShowCmd(a),
		newOperationWaitCmd(a),
		newOperationCancelCmd(a),
	)
	return cmd
}

func newOperationListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List operations"}, operationListing)
}

// operationListing keeps the daemon's order (oldest first).
var operationListing = listing[api.Operation]{
	header: []string{"ID", "TYPE", "DESCRIPTION", "STATUS", "CANCELABLE", "CREATED"},
	fetch: func(ctx context.Context, c *client.Client) ([]api.Operation, error) {
		return c.GetOperations(ctx)
	},
	row: func(op api.Operation) []string {
		return []string{
			op.ID,
			strings.ToUpper(op.Class),
			op.Description,
			strings.ToUpper(op.Status),
			yesNo(op.MayCancel),
			formatTime(op.CreatedAt),
		}
	},
}

func newOperationShowCmd(a *app) *cobra.Command {
	return showCmd(a, &cobra.Command{Use: "show ID", Short: "Show an operation as YAML"},
		func(ctx context.Context, c *client.Client, id string) (any, error) { return c.GetOperation(ctx, id) })
}

func newOperationWaitCmd(a *app) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "wait ID",
		Short: "Wait for an operation to end",
		Long: "Wait for an operation to end. Fails with the operation's error if it\n" +
			"failed or was cancelled, or if --timeout passes first.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			op, err := c.WaitOperation(cmd.Context(), args[0], timeout)
			if err != nil {
				return err
			}
			if !op.StatusCode.IsFinal() {
				return fmt.Errorf("timed out waiting for operation %s (status: %s)", op.ID, op.Status)
			}
			if op.StatusCode != api.Success {
				return &client.OperationError{Operation: *op}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&timeout, "timeout", -1, "seconds to wait at most (-1: no limit)")
	return cmd
}

func newOperationCancelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "cancel ID",
		Aliases: []string{"delete", "rm"},
		Short:   "Cancel an operation",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.CancelOperation(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Operation %s cancelled\n", args[0])
			return nil
		},
	}
}
