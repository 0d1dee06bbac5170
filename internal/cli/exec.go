package cli

import (
	"context"
	"fmt"

	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// exitCode ends the hangar process with a code of a command's own choosing
// (exec's), printing nothing.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// forwardedSignals reach the command when hangar gets them, as with lxc.
var forwardedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTSTP, syscall.SIGCONT}

func newExecCmd(a *app) *cobra.Command {
	var (
		env          []string
		cwd          string
		user, group  uint32
		forceTTY     bool
		forceNoTTY   bool
		disableStdin bool
	)
	cmd := &cobra.Command{
		Use:   "exec [REMOTE:]NAME [flags] -- COMMAND [ARG...]",
		Short: "Run a command in an instance",
		Long: "Run a command in a running instance, with the instance's environment and\n" +
			"identity. stdin, stdout and stderr are connected and hangar exits with the\n" +
			"command's exit code.\n\n" +
			"A terminal is allocated when both stdin and stdout are terminals (-t forces\n" +
			"one, -T none); it follows the window's size and Ctrl-C reaches the command.\n" +
			"Without a terminal, signals hangar receives (Ctrl-C included) are forwarded.",
		Example: "  hangar exec c1 -- sh -c 'echo hi; exit 3'\n" +
			"  echo data | hangar exec c1 -- cat\n" +
			"  hangar exec c1 -t --env TERM=xterm --cwd /tmp -- sh",
		Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if forceTTY && forceNoTTY {
				return usageErrorf(cmd, "-t and -T cannot be used together")
			}
			name, command := args[0], args[1:]
			if d := cmd.ArgsLenAtDash(); d > 1 {
				return usageErrorf(cmd, "put the command after --: hangar exec NAME -- COMMAND")
			}
			name, err := a.instanceArg(name)
			if err != nil {
				return err
			}
			environment := map[string]string{}
			if t, ok := os.LookupEnv("TERM"); ok {
				environment["TERM"] = t
			}
			for _, kv := range env {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErrorf(cmd, "--env %q: want KEY=VALUE", kv)
				}
				environment[k] = v
			}
			inFd, inTerm := terminalFd(a.in)
			outFd, outTerm := terminalFd(a.out)
			interactive := inTerm && outTerm
			switch {
			case disableStdin || forceNoTTY:
				interactive = false
			case forceTTY:
				interactive = true
			}
			req := api.InstanceExecPost{
				Command: command, Interactive: interactive, Environment: environment,
				Cwd: cwd, User: user, Group: group,
			}
			if outTerm {
				req.Width, req.Height, _ = term.GetSize(outFd)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			streams := client.ExecStreams{Stdin: a.in, Stdout: a.out, Stderr: a.errOut}
			if disableStdin {
				streams.Stdin = nil
			}
			if interactive && inTerm {
				old, err := term.MakeRaw(inFd)
				if err != nil {
					return fmt.Errorf("terminal: %w", err)
				}
				defer term.Restore(inFd, old)
			}
			// Signals go to the command, not to hangar: they must not
			// cancel the wait either.
			sigs := make(chan os.Signal, 8)
			signal.Notify(sigs, append(forwardedSignals, syscall.SIGWINCH)...)
			defer signal.Stop(sigs)
			ctx := context.WithoutCancel(cmd.Context())
			e, err := c.ExecInstance(ctx, name, req, streams)
			if err != nil {
				return err
			}
			go func() {
				for sig := range sigs {
					switch {
					case sig == syscall.SIGWINCH:
						if interactive && outTerm {
							if w, h, err := term.GetSize(outFd); err == nil {
								_ = e.Resize(w, h)
							}
						}
					default:
						_ = e.Signal(sig.(syscall.Signal))
					}
				}
			}()
			code, err := e.Wait(ctx)
			if err != nil && code > 0 {
				// Reported here, with the command's code as the exit code
				// (127 for a command that does not exist), as lxc does.
				fmt.Fprintf(a.errOut, "Error: %s\n", oneLine(err.Error()))
				return exitCode(code)
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&env, "env", nil, "set an environment variable (KEY=VALUE, repeatable)")
	f.StringVar(&cwd, "cwd", "", "directory to run the command in (default: the user's home)")
	f.Uint32Var(&user, "user", 0, "user id to run the command as")
	f.Uint32Var(&group, "group", 0, "group id to run the command as")
	f.BoolVarP(&forceTTY, "force-interactive", "t", false, "allocate a terminal")
	f.BoolVarP(&forceNoTTY, "force-noninteractive", "T", false, "never allocate a terminal")
	f.BoolVarP(&disableStdin, "disable-stdin", "n", false, "give the command no input")
	return cmd
}

// terminalFd returns the descriptor of a terminal stream.
func terminalFd(s any) (int, bool) {
	f, ok := s.(interface{ Fd() uintptr })
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}
