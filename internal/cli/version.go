package cli

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
)

// Version is the client's version, set at build time with
// -ldflags "-X github.com/hangar-dev/hangar/internal/cli.Version=1.2.3".
var Version = ""

// version returns Version, else the module version Go recorded, else "dev".
func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the client and server versions",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(a.out, "Client version: %s\n", version())
			// The client version is useful even with the daemon down, so a
			// dead daemon is reported in the output, not as a failure.
			server := "unreachable"
			if c, err := a.client(); err == nil {
				ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
				defer cancel()
				if s, _, err := c.GetServer(ctx); err == nil {
					server = s.Environment.ServerVersion
				}
			}
			fmt.Fprintf(a.out, "Server version: %s\n", server)
			return nil
		},
	}
}
