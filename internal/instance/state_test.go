package instance

import (
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestTransitions(t *testing.T) {
	tests := []struct {
		from, to Status
		ok       bool
	}{
		{StatusStopped, StatusStarting, true},
		{StatusStopped, StatusRunning, false},
		{StatusStopped, StatusFrozen, false},
		{StatusStarting, StatusRunning, true},
		{StatusStarting, StatusStopped, true},
		{StatusRunning, StatusFreezing, true},
		{StatusRunning, StatusStopping, true},
		{StatusRunning, StatusStarting, false},
		{StatusFreezing, StatusFrozen, true},
		{StatusFrozen, StatusRunning, true},
		{StatusFrozen, StatusFreezing, false},
		{StatusStopping, StatusStopped, true},
		{StatusStopping, StatusStarting, false},
		{StatusError, StatusStarting, true},
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
