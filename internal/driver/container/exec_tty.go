package container

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/cloexec"
)

// execTTYHelperArg is argv[1] of this program when it runs as the terminal
// helper of an exec (see Driver.Exec).
const execTTYHelperArg = "hangar-exec-tty"

// IsExecTTYHelper reports whether this process was started as the terminal
// helper. Programs that embed the container driver (hangard, and test
// binaries that exec with a terminal) call it first thing in main and then
// RunExecTTYHelper.
func IsExecTTYHelper() bool {
	return len(os.Args) > 1 && os.Args[1] == execTTYHelperArg
}

// RunExecTTYHelper runs inside the container, forked by nsenter into all
// of PID 1's namespaces and cgroups, already as the exec's user and in its
// working directory, with the terminal on fds 0-2. It makes the terminal
// its controlling terminal in a new session and execs the command
// (os.Args[2:]) in its place, with its own environment. It never returns.
func RunExecTTYHelper() {
	args := os.Args[2:]
	fail := func(code int, format string, a ...any) {
		fmt.Fprintf(os.Stderr, format+"\r\n", a...)
		os.Exit(code)
	}
	if len(args) == 0 {
		fail(126, "hangar-exec-tty: no command")
	}
	// Nothing of the daemon's reaches the command: this program's fd
	// (3) and whatever else is open. (The daemon marked its own before
	// forking nsenter; this covers what nsenter left open.)
	if err := cloexec.From(3); err != nil {
		fail(126, "hangar-exec-tty: %v", err)
	}
	if _, err := unix.Setsid(); err != nil {
		fail(126, "hangar-exec-tty: setsid: %v", err)
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		fail(126, "hangar-exec-tty: set controlling terminal: %v", err)
	}
	// exec.LookPath reads PATH from the environment nsenter passed on,
	// which is the exec's.
	path, err := exec.LookPath(args[0])
	if err != nil {
		fail(127, "%s: command not found", args[0])
	}
	err = syscall.Exec(path, args, os.Environ())
	code := 126
	if os.IsNotExist(err) {
		code = 127
	}
	fail(code, "%s: %v", args[0], err)
}
