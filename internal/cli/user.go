package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// `hangar user` manages local users (hangar_users): a name and a password
// that log in to the dialects with logins. What a user may do is what
// the auth groups naming it grant (`hangar auth identity group add
// user/NAME GROUP`). Passwords are read from standard input or the
// terminal, never from the command line, where any process of the host
// could read them.

func newUserCmd(a *app) *cobra.Command {
	cmd := groupCmd("user", "Manage local users (logins of the virt and /v/ APIs)")
	cmd.AddCommand(newUserListCmd(a), newUserShowCmd(a), newUserCreateCmd(a), newUserSetPasswordCmd(a), newUserEditCmd(a), newUserDeleteCmd(a))
	return cmd
}

func newUserListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List users (never their passwords)"}, listing[api.User]{
		header: []string{"NAME", "DESCRIPTION", "CREATED"},
		fetch: func(ctx context.Context, c *client.Client) ([]api.User, error) {
			return c.GetUsers(ctx)
		},
		compare: func(x, y api.User) int { return strings.Compare(x.Name, y.Name) },
		row: func(u api.User) []string {
			return []string{u.Name, u.Description, u.CreatedAt.UTC().Format("2006-01-02 15:04 MST")}
		},
	})
}

func newUserShowCmd(a *app) *cobra.Command {
	return showCmd(a, &cobra.Command{Use: "show NAME", Short: "Show a user as YAML"},
		func(ctx context.Context, c *client.Client, name string) (any, error) {
			u, _, err := c.GetUser(ctx, name)
			if err != nil {
				return nil, err
			}
			return u, nil
		})
}

const passwordHelp = "The password is read from standard input with --password-stdin (one\n" +
	"trailing newline dropped), else asked twice on the terminal. It is never\n" +
	"taken from the command line, where other users of the host could read it."

func newUserCreateCmd(a *app) *cobra.Command {
	var (
		description string
		fromStdin   bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user",
		Long: "Create a local user. It holds nothing until an auth group names it:\n" +
			"`hangar auth identity group add user/NAME GROUP`.\n\n" + passwordHelp,
		Example: "  printf '%s\\n' \"$PASSWORD\" | hangar user create alice --password-stdin --description ops\n" +
			"  hangar auth identity group add user/alice ops",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			password, err := a.readNewPassword(cmd, fromStdin)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.CreateUser(cmd.Context(), api.UsersPost{Name: args[0], Password: password, Description: description}); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "User %s created\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "user description")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func newUserSetPasswordCmd(a *app) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:     "set-password NAME",
		Aliases: []string{"passwd"},
		Short:   "Change a user's password",
		Long:    "Change a user's password. Sessions already logged in stay.\n\n" + passwordHelp,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			password, err := a.readNewPassword(cmd, fromStdin)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.SetUserPassword(cmd.Context(), args[0], password); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Password of user %s changed\n", args[0])
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func newUserEditCmd(a *app) *cobra.Command {
	return editCmd(a, &cobra.Command{
		Use:   "edit NAME",
		Short: "Edit a user's description as YAML",
		Long: "Edit a user's description as YAML.\n\n" +
			"Opens $VISUAL, $EDITOR or vi; when standard input is not a terminal,\n" +
			"the new description is read from it instead. Passwords: set-password.",
	}, editing[api.UserPut]{
		what: func(name string) string { return "user " + name },
		get: func(ctx context.Context, c *client.Client, name string) (api.UserPut, string, error) {
			u, etag, err := c.GetUser(ctx, name)
			if err != nil {
				return api.UserPut{}, "", err
			}
			return u.Writable(), etag, nil
		},
		put: func(ctx context.Context, c *client.Client, name string, put api.UserPut, etag string) error {
			return c.UpdateUser(ctx, name, put, etag)
		},
	})
}

func newUserDeleteCmd(a *app) *cobra.Command {
	cmd := deleteCmd(a, &cobra.Command{Use: "delete NAME...", Short: "Delete users (and take them out of every group)"},
		func(ctx context.Context, c *client.Client, name string) error {
			if err := c.DeleteUser(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "User %s deleted\n", name)
			return nil
		})
	return cmd
}

// maxPasswordInput bounds what --password-stdin reads: the daemon refuses
// passwords past 4096 bytes anyway.
const maxPasswordInput = 64 << 10

// readNewPassword reads a new password: all of standard input with
// fromStdin (one trailing newline dropped, as `echo` and `printf '%s\n'`
// add one), else twice from the terminal without echo. An empty one is
// sent as is, for the daemon to refuse with its words.
func (a *app) readNewPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	if fromStdin {
		b, err := io.ReadAll(io.LimitReader(a.in, maxPasswordInput))
		if err != nil {
			return "", fmt.Errorf("read the password from standard input: %w", err)
		}
		s := strings.TrimSuffix(string(b), "\n")
		return strings.TrimSuffix(s, "\r"), nil
	}
	f, ok := a.in.(*os.File)
	if !ok || !isTerminal(a.in) {
		return "", usageErrorf(cmd, "standard input is not a terminal: give the password on it with --password-stdin")
	}
	ask := func(prompt string) (string, error) {
		fmt.Fprint(a.errOut, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(a.errOut)
		if err != nil {
			return "", fmt.Errorf("read the password: %w", err)
		}
		return string(b), nil
	}
	p1, err := ask("Password: ")
	if err != nil {
		return "", err
	}
	p2, err := ask("Password (again): ")
	if err != nil {
		return "", err
	}
	if p1 != p2 {
		return "", errors.New("the passwords do not match")
	}
	return p1, nil
}
