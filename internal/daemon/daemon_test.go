package daemon

import (
	"context"
	"strings"
	"testing"
)

// TestRunWithoutRunc starts the daemon on a host without runc: the error
// names the container driver once and tells the user the README's first
// command.
func TestRunWithoutRunc(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Run(context.Background(), Config{DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("Run without runc succeeded")
	}
	msg := err.Error()
	if n := strings.Count(msg, "container driver"); n != 1 {
		t.Errorf("error names the container driver %d times, want once: %s", n, msg)
	}
	for _, want := range []string{"find runc", "bash scripts/quickstart.sh"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}
