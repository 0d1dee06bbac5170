package container

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// testExecHelper is a statically linked program for terminal execs when
// this test binary is not one (built with -race, which needs cgo): the
// helper runs inside containers, where the host's libraries are not.
var testExecHelper string

func TestMain(m *testing.M) {
	// Exec with a terminal runs this binary inside the container as its
	// helper, as hangard's main does.
	if IsExecTTYHelper() {
		RunExecTTYHelper()
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	self, err := os.Open("/proc/self/exe")
	if err == nil && elfInterpreter(self) != "" && os.Geteuid() == 0 {
		dir, err := os.MkdirTemp("", "hangar-exec-helper-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		testExecHelper = filepath.Join(dir, "hangard")
		build := exec.Command("go", "build", "-o", testExecHelper, "github.com/hangar-dev/hangar/cmd/hangard")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build a static exec helper: %v\n%s", err, out)
			return 1
		}
	}
	if self != nil {
		self.Close()
	}
	return m.Run()
}
