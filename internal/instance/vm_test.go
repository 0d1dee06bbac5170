package instance

import (
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestValidateForType(t *testing.T) {
	s := New(Config{HostMemory: 8 << 30})
	tests := []struct {
		name string
		typ  Type
		cfg  map[string]string
		ok   bool
	}{
		{"container plain", TypeContainer, map[string]string{"limits.memory": "64MiB"}, true},
		{"empty type is a container", "", map[string]string{"security.privileged": "true"}, true},
		{"secureboot on a container", TypeContainer, map[string]string{"security.secureboot": "true"}, false},
		{"secureboot on a VM", TypeVM, map[string]string{"security.secureboot": "false"}, true},
		{"privileged VM", TypeVM, map[string]string{"security.privileged": "true"}, false},
		{"processes on a VM", TypeVM, map[string]string{"limits.processes": "100"}, false},
		{"VM memory too low", TypeVM, map[string]string{"limits.memory": "64MiB"}, false},
		{"VM memory enough", TypeVM, map[string]string{"limits.memory": "128MiB"}, true},
		{"VM memory as a share of the host", TypeVM, map[string]string{"limits.memory": "10%"}, true},
		{"VM memory share too low", TypeVM, map[string]string{"limits.memory": "1%"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.validateForType(tt.typ, tt.cfg)
			if tt.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("got %v, want an invalid-argument error", err)
			}
		})
	}
}
