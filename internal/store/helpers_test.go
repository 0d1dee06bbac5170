package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// equate treats nil and empty maps and slices alike: the store returns
// empty, never nil, where a test may have written nil.
var equate = cmpopts.EquateEmpty()

func openStore(t testing.TB) (*store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hangar.db")
	s, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

// fp returns a valid fingerprint starting with prefix.
func fp(prefix string) string {
	return prefix + strings.Repeat("0", 64-len(prefix))
}

// ts is a time with nanoseconds and a non-UTC zone, to prove both survive
// (as UTC).
func ts(sec int) time.Time {
	return time.Date(2024, 5, 6, 7, 8, sec, 123456789, time.FixedZone("X", 3600))
}

// wantKind checks that err is of kind (nil: no error) and, if msg is set,
// reads msg.
func wantKind(t *testing.T, err, kind error, msg string) {
	t.Helper()
	switch {
	case kind == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case kind != nil && !errors.Is(err, kind):
		t.Fatalf("error %v, want kind %v", err, kind)
	case msg != "" && (err == nil || err.Error() != msg):
		t.Fatalf("error %v, want message %q", err, msg)
	}
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := cmp.Diff(want, got, equate); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

var (
	errNotFound = errdefs.ErrNotFound
	errConflict = errdefs.ErrConflict
	errInvalid  = errdefs.ErrInvalidArgument
)
