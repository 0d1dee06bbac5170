package instance

import (
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestTransitions(t *testing.T) {
	tests := []struct {
		from, to Status
		ok       bool
	}{
		{api.Stopped, api.Starting, true},
		{api.Stopped, api.Running, false},
		{api.Stopped, api.Frozen, false},
		{api.Starting, api.Running, true},
		{api.Starting, api.Stopped, true},
		{api.Running, api.Freezing, true},
		{api.Running, api.Stopping, true},
		{api.Running, api.Starting, false},
		{api.Freezing, api.Frozen, true},
		{api.Frozen, api.Running, true},
		{api.Frozen, api.Freezing, false},
		{api.Stopping, api.Stopped, true},
		{api.Stopping, api.Starting, false},
		{api.Error, api.Starting, true},
	}
	for _, tt := range tests {
		if got := canTransition(tt.from, tt.to); got != tt.ok {
			t.Errorf("%s -> %s: %v, want %v", tt.from, tt.to, got, tt.ok)
		}
		err := checkTransition("c1", tt.from, tt.to)
		if tt.ok != (err == nil) || (err != nil && !errors.Is(err, errdefs.ErrConflict)) {
			t.Errorf("checkTransition(%s -> %s) = %v", tt.from, tt.to, err)
		}
	}
	// Every status that can be reached can also be left.
	for from, tos := range transitions {
		for _, to := range tos {
			if _, ok := transitions[to]; !ok {
				t.Errorf("%s -> %s reaches a status with no way out", from, to)
			}
		}
	}
}
