// Package cli implements the hangar command line client. Its commands and
// flags mirror LXD's lxc wherever hangar has the same feature, so that lxc
// users feel at home; all of them go through package client.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/client"
)

// app holds what every command shares: the global flags, the standard
// streams (replaced in tests) and the client, made on first use so that
// commands that need no daemon (help, version's client half) never dial.
type app struct {
	socket string
	// project is the global --project flag; "" uses the one `hangar
	// project switch` chose for the socket (CLI config), else the default.
	project string
	// noProject makes the client act in the default project whatever
	// --project or the CLI config say (project commands).
	noProject bool
	// remote is the remote the command's arguments named (REMOTE:NAME);
	// "" is the default remote.
	remote string
	in     io.Reader
	out    io.Writer
	errOut io.Writer

	// clients are the connections made, by remote name.
	clients map[string]*client.Client
	// connecting, when set, runs before the first connection.
	connecting func()
}

// client returns the connection to the daemon the command acts on (the
// remote its arguments named, else the default remote), creating it on
// first use.
func (a *app) client() (*client.Client, error) {
	return a.clientFor(a.remote)
}

// clientFor returns the connection to remote ("" is the default remote,
// "local" the --socket daemon), in the project the command acts in there.
func (a *app) clientFor(remote string) (*client.Client, error) {
	conf, confErr := loadConfig()
	name := resolveRemote(conf, remote)
	if c := a.clients[name]; c != nil {
		return c, nil
	}
	if a.connecting != nil {
		a.connecting()
		a.connecting = nil
	}
	var (
		c   *client.Client
		err error
	)
	if name == localRemote {
		if c, err = client.Connect(a.socket); err != nil {
			return nil, fmt.Errorf("connect to hangard: %w", err)
		}
	} else {
		if confErr != nil {
			return nil, confErr
		}
		if c, err = connectRemote(conf, name); err != nil {
			return nil, err
		}
	}
	p := a.project
	if p == "" {
		// A config that cannot be read is the default project's
		// business, not a failed command: switch reports it.
		p = conf.Projects[a.projectKey(name)]
	}
	if a.noProject {
		p = ""
	}
	c = c.UseProject(p)
	if a.clients == nil {
		a.clients = map[string]*client.Client{}
	}
	a.clients[name] = c
	return c, nil
}

// Execute runs the hangar command line and returns the process exit code.
func Execute() int {
	// A command lives for milliseconds: collecting garbage at 4 MB, then
	// 8, 16..., was 3 collections and a sixth of the CPU of listing 1000
	// instances. Collect at 5x the live heap instead: the peak stays some
	// 20 MB at that size. A GOGC the user set is theirs.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(500)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &app{in: os.Stdin, out: os.Stdout, errOut: os.Stderr}
	// Ctrl-C and SIGTERM cancel the command's context (waits stop, monitor
	// ends, the error says "interrupted") from the first request on, when
	// there is something to wait for: watching signals starts a thread,
	// which was a fifth of the start-up of `hangar --version`. Before,
	// they end the process as they do any program's.
	sigs := make(chan os.Signal, 1)
	defer signal.Stop(sigs)
	a.connecting = func() {
		signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-sigs
			cancel()
		}()
	}
	return a.run(ctx, os.Args[1:])
}

// run is Execute with its inputs explicit, for tests.
func run(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) int {
	a := &app{in: in, out: out, errOut: errOut}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	in, out, errOut := a.in, a.out, a.errOut
	root := newRootCmd(a, args)
	root.SetArgs(args)
	root.SetIn(in)
	root.SetOut(out)
	root.SetErr(errOut)
	err := root.ExecuteContext(ctx)
	for _, c := range a.clients {
		c.Close()
	}
	if err == nil {
		return 0
	}
	return reportError(ctx, errOut, err)
}

// reportError prints err the way lxc does, on one line, and returns the exit
// code. Usage errors get one more line saying how to call the command.
func reportError(ctx context.Context, w io.Writer, err error) int {
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		fmt.Fprintln(w, "Error: interrupted")
		return 130
	}
	fmt.Fprintf(w, "Error: %s\n", oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) && ue.hint != "" {
		fmt.Fprintln(w, ue.hint)
	}
	return 1
}

// oneLine folds a multi-line message (YAML errors, say) onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// usageError is a mistake in how the command was called, as opposed to a
// failure while running it.
type usageError struct {
	err  error
	hint string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf returns a usage error whose hint is cmd's usage line.
func usageErrorf(cmd *cobra.Command, format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...), hint: "Usage: " + cmd.UseLine()}
}

// topCommand is a top-level command: its name and aliases, and how to
// build it with its sub-commands.
type topCommand struct {
	names []string
	build func(*app) *cobra.Command
}

// topCommands are the top-level commands in the order help lists them.
// The names are written here as well as in each command, so that a run
// builds only the command it runs (TestTopCommandNames keeps both in step):
// the whole tree is some 60 commands and their flags, a third of the
// start-up of `hangar --version`.
var topCommands = []topCommand{
	{[]string{"launch"}, func(a *app) *cobra.Command { return newLaunchCmd(a, true) }},
	{[]string{"init", "create"}, func(a *app) *cobra.Command { return newLaunchCmd(a, false) }},
	{[]string{"list", "ls"}, newListCmd},
	{[]string{"info"}, newInfoCmd},
	{[]string{"start"}, func(a *app) *cobra.Command { return newStateCmd(a, stateStart) }},
	{[]string{"stop"}, func(a *app) *cobra.Command { return newStateCmd(a, stateStop) }},
	{[]string{"restart"}, func(a *app) *cobra.Command { return newStateCmd(a, stateRestart) }},
	{[]string{"freeze", "pause"}, func(a *app) *cobra.Command { return newStateCmd(a, stateFreeze) }},
	{[]string{"unfreeze", "resume"}, func(a *app) *cobra.Command { return newStateCmd(a, stateUnfreeze) }},
	{[]string{"delete", "rm"}, newDeleteCmd},
	{[]string{"rename", "move", "mv"}, newRenameCmd},
	{[]string{"snapshot", "snap"}, newSnapshotCmd},
	{[]string{"copy", "cp"}, newCopyCmd},
	{[]string{"fork"}, newForkCmd},
	{[]string{"export"}, newExportCmd},
	{[]string{"import"}, newImportCmd},
	{[]string{"config"}, newConfigCmd},
	{[]string{"profile"}, newProfileCmd},
	{[]string{"project"}, newProjectCmd},
	{[]string{"remote"}, newRemoteCmd},
	{[]string{"auth"}, newAuthCmd},
	{[]string{"token"}, newTokenCmd},
	{[]string{"user"}, newUserCmd},
	{[]string{"network"}, newNetworkCmd},
	{[]string{"storage"}, newStorageCmd},
	{[]string{"image"}, newImageCmd},
	{[]string{"publish"}, newPublishCmd},
	{[]string{"monitor"}, newMonitorCmd},
	{[]string{"operation"}, newOperationCmd},
	{[]string{"exec"}, newExecCmd},
	{[]string{"console"}, newConsoleCmd},
	{[]string{"file"}, newFileCmd},
	{[]string{"query"}, newQueryCmd},
	{[]string{"version"}, newVersionCmd},
}

// newRootCmd builds the root command with the sub-commands args need: the
// one args name, or every one when args name none or an unknown one (help,
// suggestions for a typo, completion), or none for a bare --version.
func newRootCmd(a *app, args []string) *cobra.Command {
	root := &cobra.Command{
		Use:   "hangar",
		Short: "Command line client for hangard",
		Long: "hangar manages Linux containers through hangard, the hangar daemon.\n" +
			"It speaks the LXD REST API over hangard's unix socket.",
		// Errors are printed once, on one line, by run; usage is only
		// printed on request (--help).
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if v, _ := cmd.Flags().GetBool("version"); v {
				_, err := fmt.Fprintln(a.out, version())
				return err
			}
			return groupRun(cmd, args)
		},
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: true},
	}
	// --version is ours rather than cobra's (Version and a version
	// template), whose template would link text/template and its
	// reflection into the binary: 2.5 MB, and start-up time.
	root.Flags().BoolP("version", "v", false, "version for hangar")
	root.PersistentFlags().StringVar(&a.socket, "socket", client.DefaultSocket(),
		"path of hangard's unix socket (env "+client.SocketEnv+")")
	root.PersistentFlags().StringVar(&a.project, "project", "",
		"project to act in (default: the one `hangar project switch` chose, else \"default\")")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{err: err, hint: "Usage: " + cmd.UseLine()}
	})

	name, flags := commandName(args)
	switch {
	case name != "":
		for _, tc := range topCommands {
			if slices.Contains(tc.names, name) {
				root.AddCommand(tc.build(a))
				return root
			}
		}
	case flags.version && !flags.help:
		return root
	}
	for _, tc := range topCommands {
		root.AddCommand(tc.build(a))
	}
	return root
}

// rootFlags are the root's own flags commandName saw.
type rootFlags struct{ help, version bool }

// commandName returns the first argument that is not a root flag or its
// value: the command to run. It returns "" when an argument it does not
// know comes first (an unknown flag, "--"), which cobra then reports.
func commandName(args []string) (string, rootFlags) {
	var f rootFlags
	for i := 0; i < len(args); i++ {
		switch arg := args[i]; {
		case arg == "--socket", arg == "--project":
			i++
		case strings.HasPrefix(arg, "--socket="), strings.HasPrefix(arg, "--project="):
		case arg == "-h" || arg == "--help":
			f.help = true
		case arg == "-v" || arg == "--version":
			f.version = true
		case strings.HasPrefix(arg, "-"):
			return "", f
		default:
			return arg, f
		}
	}
	return "", f
}

// groupCmd returns a command that only holds sub-commands.
func groupCmd(use, short string, aliases ...string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Short:   short,
		Aliases: aliases,
		Args:    cobra.ArbitraryArgs,
		RunE:    groupRun,
	}
}

// groupRun prints help for a bare group command and rejects unknown
// sub-commands; cobra alone would print the help and exit 0 for a typo.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		// cobra's own default, which SuggestionsFor does not apply itself.
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", quoteJoin(s, " or "))
	}
	return &usageError{
		err:  errors.New(msg),
		hint: fmt.Sprintf("Run '%s --help' for the list of commands.", cmd.CommandPath()),
	}
}

// exactArgs, minArgs and rangeArgs validate positional arguments and report
// a usage error with the command's usage line.
func exactArgs(n int) cobra.PositionalArgs {
	return rangeArgs(n, n)
}

func minArgs(n int) cobra.PositionalArgs {
	return rangeArgs(n, -1)
}

func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < lo && lo == hi, len(args) > hi && hi >= 0 && lo == hi:
			return usageErrorf(cmd, "wrong number of arguments: expected %d, got %d", lo, len(args))
		case len(args) < lo:
			return usageErrorf(cmd, "missing arguments: expected at least %d, got %d", lo, len(args))
		case hi >= 0 && len(args) > hi:
			return usageErrorf(cmd, "too many arguments: expected at most %d, got %d", hi, len(args))
		}
		return nil
	}
}

// forEach runs fn for every name. With one name its error is returned as
// is, so the user sees the daemon's message alone; with several, every name
// is tried and the failures are reported together, each with its name.
func forEach(names []string, fn func(name string) error) error {
	if len(names) == 1 {
		return fn(names[0])
	}
	var failed []string
	for _, name := range names {
		if err := fn(name); err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// quoteJoin quotes each string and joins them with sep.
func quoteJoin(items []string, sep string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return strings.Join(quoted, sep)
}
