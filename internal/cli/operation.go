package cli

import (
	"fmt"
	"io"
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

var operationHeader = []string{"ID", "TYPE", "DESCRIPTION", "STATUS", "CANCELABLE", "CREATED"}

func newOperationListCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List operations",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(cmd, format, listFormats...); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ops, err := c.GetOperations(cmd.Context())
			if err != nil {
				return err
			}
			return renderOperations(a.out, format, ops)
		},
	}
	addFormatFlag(cmd, &format)
	return cmd
}

// renderOperations prints operations in the order given (oldest first).
func renderOperations(w io.Writer, format string, ops []api.Operation) error {
	if ops == nil {
		ops = []api.Operation{}
	}
	rows := make([][]string, 0, len(ops))
	for _, op := range ops {
		rows = append(rows, []string{
			op.ID,
			strings.ToUpper(op.Class),
			op.Description,
			strings.ToUpper(op.Status),
			yesNo(op.MayCancel),
			formatTime(op.CreatedAt),
		})
	}
	return renderList(w, format, operationHeader, rows, ops)
}

func newOperationShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show an operation as YAML",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			op, err := c.GetOperation(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return renderYAML(a.out, op)
		},
	}
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
