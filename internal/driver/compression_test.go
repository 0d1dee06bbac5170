package driver

import (
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestParseCompression(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Compression
		bad  bool
	}{
		{in: "", want: Compression{}},
		{in: "none", want: Compression{}},
		{in: "zstd", want: Compression{CompressZstd, 1}},
		{in: "ZSTD:19", want: Compression{CompressZstd, 19}},
		{in: " zstd:3 ", want: Compression{CompressZstd, 3}},
		{in: "lz4", want: Compression{CompressLZ4, 0}},
		{in: "lz4:9", want: Compression{CompressLZ4, 9}},
		{in: "zstd:0", bad: true},
		{in: "zstd:20", bad: true},
		{in: "lz4:10", bad: true},
		{in: "lz4:-1", bad: true},
		{in: "zstd:", bad: true},
		{in: "zstd:x", bad: true},
		{in: "none:1", bad: true},
		{in: "gzip", bad: true},
	} {
		got, err := ParseCompression(tc.in)
		if tc.bad {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%q: err = %v, want invalid", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if again, err := ParseCompression(got.String()); err != nil || again.IsZero() != got.IsZero() || (!got.IsZero() && again != got) {
			t.Errorf("%q: String %q does not parse back: %+v %v", tc.in, got.String(), again, err)
		}
	}
}
