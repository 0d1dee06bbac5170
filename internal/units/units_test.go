package units

import "testing"

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "512", want: 512},
		{in: "2GiB", want: 2 << 30},
		{in: "10GB", want: 10e9},
		{in: "1KiB", want: 1024},
		{in: "1.5GiB", bad: true},
		{in: "GiB", bad: true},
		{in: "-1", bad: true},
		{in: "1 GiB", bad: true},
		{in: "1gib", bad: true},
		{in: "99999999999EiB", bad: true},
	} {
		got, err := ParseByteSize(tc.in)
		if tc.bad != (err != nil) || got != tc.want && !tc.bad {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, bad=%v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestFormatByteSize(t *testing.T) {
	for in, want := range map[int64]string{0: "0B", 1 << 30: "1GiB", 1536 << 20: "1536MiB", 1000: "1000B", 3 << 10: "3KiB"} {
		if got := FormatByteSize(in); got != want {
			t.Errorf("FormatByteSize(%d) = %q, want %q", in, got, want)
		}
	}
}
