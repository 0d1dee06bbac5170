package container

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestLogFile(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	s := e.spec(true, "sh", "-c", "echo to the console; exec sleep 1000")
	e.start(s)
	dir := e.d.instanceDir(s.ID)
	tests := []struct {
		name string
		id   string
		kind driver.LogKind
		want string
		err  error
	}{
		{"console", s.ID, driver.LogConsole, filepath.Join(dir, "console.log"), nil},
		{"runtime: runc's log", s.ID, driver.LogRuntime, filepath.Join(dir, runcLogFile), nil},
		{"unknown kind", s.ID, driver.LogKind(7), "", errdefs.ErrInvalidArgument},
		{"bad id", "../x", driver.LogConsole, "", errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.d.LogFile(tt.id, tt.kind)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Fatalf("got %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
			if tt.err == nil {
				if _, err := os.Stat(got); err != nil {
					t.Fatalf("the log is not there after a start: %v", err)
				}
			}
		})
	}
}
