package container

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestNewErrors checks New's refusals: each says what is wrong once,
// without naming the driver (the caller does), with the right type.
func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  Config
		path string // PATH while New runs; "" leaves it
		want string
		is   error
	}{
		{name: "no runc in PATH", cfg: Config{Dir: filepath.Join(dir, "a")}, path: t.TempDir(), want: `find runc: exec: "runc": executable file not found in $PATH`, is: exec.ErrNotFound},
		{name: "named runc missing", cfg: Config{Dir: filepath.Join(dir, "b"), RuncBinary: "no-such-runc"}, want: `find runc: exec: "no-such-runc": executable file not found in $PATH`, is: exec.ErrNotFound},
		{name: "empty Dir", cfg: Config{}, want: "empty Dir", is: errdefs.ErrInvalidArgument},
		{name: "comma in Dir", cfg: Config{Dir: filepath.Join(dir, "a,b")}, want: "contains one of , : \\", is: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path != "" {
				t.Setenv("PATH", tc.path)
			}
			d, err := New(tc.cfg)
			if err == nil {
				d.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.is) {
				t.Errorf("New = %q; want %q, matching %v", err, tc.want, tc.is)
			}
			if strings.Contains(err.Error(), "container driver") {
				t.Errorf("New = %q: names the driver, which its caller does", err)
			}
		})
	}
}
