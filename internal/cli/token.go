package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// `hangar token` manages bearer API tokens (hangar_api_tokens): a token
// sent as "Authorization: Bearer TOKEN" acts as admin, or as operator or
// viewer of one project.

func newTokenCmd(a *app) *cobra.Command {
	cmd := groupCmd("token", "Manage bearer API tokens")
	cmd.AddCommand(newTokenCreateCmd(a), newTokenListCmd(a), newTokenRevokeCmd(a))
	return cmd
}

func newTokenCreateCmd(a *app) *cobra.Command {
	var role, expiry string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API token and print it",
		Long: "Create a bearer API token and print it: this is the only time it is shown.\n\n" +
			"An operator or viewer token acts in one project: --project, else the project\n" +
			"`hangar project switch` chose, else \"default\". An admin token acts on the\n" +
			"whole server and takes no project. --expiry is as core.remote_token_expiry\n" +
			"(30d, 2w, \"1H 30M\"); without it the token lives until revoked.",
		Example: "  hangar token create ci --project team-a --role operator --expiry 30d\n" +
			"  curl --unix-socket /var/lib/hangar/unix.socket -H \"Authorization: Bearer $TOKEN\" http://hangar/1.0/instances?project=team-a",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			project := c.Project()
			if role == "admin" && !cmd.Flags().Changed("project") {
				project = ""
			}
			out, err := c.CreateAPIToken(cmd.Context(), api.AuthTokensPost{Name: args[0], Project: project, Role: role, Expiry: expiry})
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, out.Token)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "viewer", "what the token may do: viewer, operator or admin")
	cmd.Flags().StringVar(&expiry, "expiry", "", "how long the token lives (30d, 2w, \"1H 30M\"); default: until revoked")
	return cmd
}

func newTokenListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List API tokens (never their secrets)"}, listing[api.AuthToken]{
		header: []string{"NAME", "ROLE", "PROJECT", "CREATED", "EXPIRES"},
		fetch: func(ctx context.Context, c *client.Client) ([]api.AuthToken, error) {
			return c.GetAPITokens(ctx)
		},
		compare: func(x, y api.AuthToken) int { return strings.Compare(x.Name, y.Name) },
		row: func(t api.AuthToken) []string {
			project, expires := t.Project, "never"
			if project == "" {
				project = "(all)"
			}
			if !t.ExpiresAt.IsZero() {
				expires = t.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")
			}
			return []string{t.Name, t.Role, project, t.CreatedAt.UTC().Format("2006-01-02 15:04 MST"), expires}
		},
	})
}

func newTokenRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke NAME",
		Aliases: []string{"delete", "rm"},
		Short:   "Revoke an API token",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.RevokeAPIToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Token %s revoked\n", args[0])
			return nil
		},
	}
}
