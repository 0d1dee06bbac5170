package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestKinds(t *testing.T) {
	tests := []struct {
		err  error
		kind error
		msg  string
	}{
		{Invalid("bad key %q", "x"), ErrInvalidArgument, `bad key "x"`},
		{fmt.Errorf("create c1: %w", NotFound("image %q not found", "a")), ErrNotFound, `create c1: image "a" not found`},
		{Conflict("busy"), ErrConflict, "busy"},
		{PreconditionFailed("etag"), ErrPreconditionFailed, "etag"},
		{NotImplemented("nope"), ErrNotImplemented, "nope"},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.kind) {
			t.Errorf("%v: not of kind %v", tt.err, tt.kind)
		}
		if tt.err.Error() != tt.msg {
			t.Errorf("message %q, want %q", tt.err.Error(), tt.msg)
		}
		if errors.Is(tt.err, ErrCancelled) {
			t.Errorf("%v: wrongly of kind cancelled", tt.err)
		}
	}
}
