package instance

import (
	"context"
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestIDMapping(t *testing.T) {
	unpriv := idMapping{&driver.IDMap{HostID: 1000000, Size: 65536}}
	priv := idMapping{}
	tests := []struct {
		name    string
		m       idMapping
		id      int64
		host    uint32
		invalid bool
	}{
		{"default is root", unpriv, -1, 1000000, false},
		{"root", unpriv, 0, 1000000, false},
		{"user", unpriv, 1000, 1001000, false},
		{"last mapped", unpriv, 65535, 1065535, false},
		{"outside the map", unpriv, 65536, 0, true},
		{"far outside", unpriv, 1 << 40, 0, true},
		{"privileged root", priv, -1, 0, false},
		{"privileged user", priv, 1000, 1000, false},
		{"privileged -1 as uint32", priv, 4294967295, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, err := tt.m.toHost("uid", tt.id)
			if tt.invalid {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("toHost(%d) = %d, %v; want invalid", tt.id, host, err)
				}
				return
			}
			if err != nil || host != tt.host {
				t.Fatalf("toHost(%d) = %d, %v; want %d", tt.id, host, err, tt.host)
			}
			if back := tt.m.fromHost(host); tt.id >= 0 && back != tt.id {
				t.Fatalf("fromHost(%d) = %d, want %d", host, back, tt.id)
			}
		})
	}
	for _, h := range []uint32{0, 999999, 1065536} {
		if got := unpriv.fromHost(h); got != overflowID {
			t.Errorf("unmapped host id %d shows as %d, want %d", h, got, overflowID)
		}
	}
}

// Validation comes before any lookup: bad requests fail the same whether
// or not the instance exists.
func TestWriteFileValidation(t *testing.T) {
	s := New(Config{})
	tests := []struct {
		name string
		w    FileWrite
		has  string
	}{
		{"bad type", FileWrite{Type: "fifo"}, "file type"},
		{"append to a directory", FileWrite{Type: FileTypeDirectory, Append: true}, "append"},
		{"mode too big", FileWrite{Mode: 0o10000}, "mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.WriteFile(context.Background(), "c1", "/x", tt.w)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("%v, want invalid argument about %s", err, tt.has)
			}
		})
	}
}
