package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// errNoInteractiveConsole is returned by console without --show-log until
// the interactive console (a websocket operation) lands.
var errNoInteractiveConsole = errors.New("the interactive console is not supported yet; use --show-log to print the console log")

func newConsoleCmd(a *app) *cobra.Command {
	var showLog bool
	cmd := &cobra.Command{
		Use:   "console NAME",
		Short: "Show an instance's console log",
		Long: "Show an instance's console log (--show-log).\n\n" +
			"Attaching to the console interactively is not supported yet.",
		Example: "  hangar console c1 --show-log",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !showLog {
				return errNoInteractiveConsole
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			log, err := c.GetInstanceConsoleLog(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = a.out.Write(log)
			return err
		},
	}
	cmd.Flags().BoolVar(&showLog, "show-log", false, "print the console log instead of attaching")
	return cmd
}
