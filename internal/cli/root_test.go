package cli

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestArgumentErrors checks that mistakes in how a command is called are
// reported on one line plus a hint, exit 1, and never reach the daemon (the
// socket does not exist, so a request would fail with a connect error).
func TestArgumentErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"lsit"}, "Error: unknown command \"lsit\" for \"hangar\"; did you mean \"init\" or \"list\"?\nRun 'hangar --help' for the list of commands.\n"},
		{[]string{"config", "frob"}, "Error: unknown command \"frob\" for \"hangar config\"\nRun 'hangar config --help' for the list of commands.\n"},
		{[]string{"launch"}, "Error: missing arguments: expected at least 1, got 0\nUsage: hangar launch [REMOTE:]IMAGE [[REMOTE:]NAME] [flags]\n"},
		{[]string{"launch", "a", "b", "c"}, "Error: too many arguments: expected at most 2, got 3\nUsage: hangar launch [REMOTE:]IMAGE [[REMOTE:]NAME] [flags]\n"},
		{[]string{"launch", "alpine", "-c", "novalue"}, "Error: invalid setting \"novalue\": expected key=value\nUsage: hangar launch [REMOTE:]IMAGE [[REMOTE:]NAME] [flags]\n"},
		{[]string{"init", "alpine", "--no-profiles", "-p", "x"}, "Error: --no-profiles and --profile are mutually exclusive\nUsage: hangar init [REMOTE:]IMAGE [[REMOTE:]NAME] [flags]\n"},
		{[]string{"rename", "a"}, "Error: wrong number of arguments: expected 2, got 1\nUsage: hangar rename OLD NEW [flags]\n"},
		{[]string{"start"}, "Error: missing arguments: expected at least 1, got 0\nUsage: hangar start NAME... [flags]\n"},
		{[]string{"start", "--force", "c1"}, "Error: unknown flag: --force\nUsage: hangar start NAME... [flags]\n"},
		{[]string{"list", "--format", "xml"}, "Error: invalid format \"xml\": must be one of table, csv, json, yaml\nUsage: hangar list [REMOTE:][FILTER...] [flags]\n"},
		{[]string{"list", "--bogus"}, "Error: unknown flag: --bogus\nUsage: hangar list [REMOTE:][FILTER...] [flags]\n"},
		{[]string{"config", "set", "c1"}, "Error: missing arguments: expected at least 2, got 1\nUsage: hangar config set [NAME] KEY=VALUE...|KEY VALUE [flags]\n"},
		{[]string{"config", "set", "c1", "a=1", "b"}, "Error: invalid setting \"b\": expected key=value\nUsage: hangar config set [NAME] KEY=VALUE...|KEY VALUE [flags]\n"},
		{[]string{"monitor", "--type", "bogus"}, "Error: invalid event type \"bogus\": must be one of lifecycle, operation, logging\nUsage: hangar monitor [flags]\n"},
		{[]string{"monitor", "--format", "table"}, "Error: invalid format \"table\": must be one of yaml, json\nUsage: hangar monitor [flags]\n"},
		{[]string{"query", "1.0"}, "Error: PATH must start with /, as in /1.0/instances\nUsage: hangar query PATH [flags]\n"},
		{[]string{"stop", "c1", "--timeout", "soon"}, "Error: invalid argument \"soon\" for \"--timeout\" flag: strconv.ParseInt: parsing \"soon\": invalid syntax\nUsage: hangar stop NAME... [flags]\n"},
	}
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, sock, "", tt.args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing (no usage dump)", out)
			}
			if errOut != tt.wantErr {
				t.Errorf("stderr\n got %q\nwant %q", errOut, tt.wantErr)
			}
		})
	}
}

func TestHelpAndVersionNeedNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		args    []string
		wantOut string
	}{
		{nil, "Usage:"},
		{[]string{"--help"}, "Available Commands:"},
		{[]string{"config"}, "Manage instance configuration"},
		{[]string{"image", "alias"}, "Manage image aliases"},
		{[]string{"version"}, "Client version: "},
	}
	for _, tt := range tests {
		code, out, errOut := runCLI(t, sock, "", tt.args...)
		if code != 0 || !strings.Contains(out, tt.wantOut) || errOut != "" {
			t.Errorf("%v: code %d out %q err %q", tt.args, code, out, errOut)
		}
	}
	_, out, _ := runCLI(t, sock, "", "version")
	if !strings.Contains(out, "Server version: unreachable\n") {
		t.Errorf("version with the daemon down: %q", out)
	}
}

func TestSocketFromEnv(t *testing.T) {
	t.Setenv("HANGAR_SOCKET", "/nonexistent/env.sock")
	var out, errOut strings.Builder
	code := run(t.Context(), []string{"list"}, strings.NewReader(""), &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "/nonexistent/env.sock") {
		t.Errorf("code %d err %q: HANGAR_SOCKET not used", code, errOut.String())
	}
}

// TestTopCommandNames keeps topCommands' names in step with the commands
// they build: a name missing there would make the command unreachable
// unless every command is built.
func TestTopCommandNames(t *testing.T) {
	a := &app{}
	for _, tc := range topCommands {
		cmd := tc.build(a)
		want := append([]string{cmd.Name()}, cmd.Aliases...)
		if !slices.Equal(tc.names, want) {
			t.Errorf("topCommands has %q, the command is %q", tc.names, want)
		}
	}
	if got, want := len(newRootCmd(a, nil).Commands()), len(topCommands); got != want {
		t.Errorf("full tree has %d commands, topCommands %d", got, want)
	}
}

func TestCommandName(t *testing.T) {
	tests := []struct {
		args      []string
		want      string
		wantFlags rootFlags
		wantBuilt int // top-level commands built; -1: all of them
	}{
		{nil, "", rootFlags{}, -1},
		{[]string{"list"}, "list", rootFlags{}, 1},
		{[]string{"ls", "-f", "csv"}, "ls", rootFlags{}, 1},
		{[]string{"--socket", "list", "exec", "c1"}, "exec", rootFlags{}, 1},
		{[]string{"--socket=/s", "pause", "c1"}, "pause", rootFlags{}, 1},
		{[]string{"--version"}, "", rootFlags{version: true}, 0},
		{[]string{"-v"}, "", rootFlags{version: true}, 0},
		{[]string{"--version", "--help"}, "", rootFlags{help: true, version: true}, -1},
		{[]string{"-h", "list"}, "list", rootFlags{help: true}, 1},
		{[]string{"lsit"}, "lsit", rootFlags{}, -1},
		{[]string{"help", "list"}, "help", rootFlags{}, -1},
		{[]string{"--bogus", "list"}, "", rootFlags{}, -1},
		{[]string{"--", "list"}, "", rootFlags{}, -1},
		{[]string{"--socket"}, "", rootFlags{}, -1},
	}
	for _, tt := range tests {
		name, flags := commandName(tt.args)
		if name != tt.want || flags != tt.wantFlags {
			t.Errorf("commandName(%q) = %q, %+v; want %q, %+v", tt.args, name, flags, tt.want, tt.wantFlags)
		}
		want := tt.wantBuilt
		if want < 0 {
			want = len(topCommands)
		}
		if got := len(newRootCmd(&app{}, tt.args).Commands()); got != want {
			t.Errorf("%q: built %d top-level commands, want %d", tt.args, got, want)
		}
	}
}

func TestVersionFlag(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{"--version"}, {"-v"}, {"--version", "extra"}} {
		code, out, errOut := runCLI(t, sock, "", args...)
		if code != 0 || out != version()+"\n" || errOut != "" {
			t.Errorf("%q: code %d out %q err %q", args, code, out, errOut)
		}
	}
	code, _, errOut := runCLI(t, sock, "", "list", "--version")
	if code != 1 || !strings.HasPrefix(errOut, "Error: unknown flag: --version\n") {
		t.Errorf("list --version: code %d err %q", code, errOut)
	}
}
