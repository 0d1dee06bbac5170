package snapshotpolicy

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris for the DST case, whatever the host has

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestParseExpiry(t *testing.T) {
	for _, tc := range []struct {
		spec, from, want string // want "" is the zero time
	}{
		{"", "2024-05-01 10:00:00", ""},
		{"  ", "2024-05-01 10:00:00", ""},
		{"30S", "2024-05-01 10:00:00", "2024-05-01 10:00:30"},
		{"1M", "2024-05-01 10:00:00", "2024-05-01 10:01:00"},
		{"2H", "2024-05-01 10:00:00", "2024-05-01 12:00:00"},
		{"3d", "2024-05-01 10:00:00", "2024-05-04 10:00:00"},
		{"4w", "2024-05-01 10:00:00", "2024-05-29 10:00:00"},
		{"5m", "2024-05-01 10:00:00", "2024-10-01 10:00:00"},
		{"6y", "2024-05-01 10:00:00", "2030-05-01 10:00:00"},
		{"1M 2H 3d 4w 5m 6y", "2024-05-01 10:00:00", "2030-11-01 12:01:00"},
		{"6y 5m 4w 3d 2H 1M", "2024-05-01 10:00:00", "2030-11-01 12:01:00"}, // order does not matter
		{" 1d   2H ", "2024-05-01 10:00:00", "2024-05-02 12:00:00"},
		{"90M", "2024-05-01 23:00:00", "2024-05-02 00:30:00"},
		{"0d", "2024-05-01 10:00:00", "2024-05-01 10:00:00"}, // LXD: expires at once
		{"007d", "2024-05-01 10:00:00", "2024-05-08 10:00:00"},
		// Months and years are calendar arithmetic (Go's AddDate, as LXD):
		// a day that does not exist in the target month rolls over.
		{"1m", "2024-01-31 00:00:00", "2024-03-02 00:00:00"}, // 31 Feb 2024 = 2 Mar (leap year)
		{"1m", "2023-01-31 00:00:00", "2023-03-03 00:00:00"},
		{"1m", "2024-02-29 00:00:00", "2024-03-29 00:00:00"},
		{"1y", "2024-02-29 00:00:00", "2025-03-01 00:00:00"},
		{"4y", "2024-02-29 00:00:00", "2028-02-29 00:00:00"},
		{"12m", "2024-05-31 00:00:00", "2025-05-31 00:00:00"},
		{"1m 1d", "2024-01-31 00:00:00", "2024-03-03 00:00:00"}, // one AddDate(0, 1, 1)
		{"13m", "2024-12-15 00:00:00", "2026-01-15 00:00:00"},
		{"1000y", "2024-05-01 00:00:00", "3024-05-01 00:00:00"},
	} {
		e, err := ParseExpiry(tc.spec)
		if err != nil {
			t.Errorf("ParseExpiry(%q): %v", tc.spec, err)
			continue
		}
		var want time.Time
		if tc.want != "" {
			want = utc(tc.want)
		}
		if got := e.After(utc(tc.from)); !got.Equal(want) {
			t.Errorf("ParseExpiry(%q).After(%s) = %s, want %s", tc.spec, tc.from, got, want)
		}
		if e.IsZero() != (tc.want == "") || e.String() != tc.spec {
			t.Errorf("ParseExpiry(%q): IsZero %v String %q", tc.spec, e.IsZero(), e.String())
		}
	}
	if got := (Expiry{}).After(utc("2024-05-01 10:00:00")); !got.IsZero() {
		t.Errorf("zero Expiry expires at %s, want never", got)
	}
}

func TestParseExpiryBad(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
	}{
		{"1", `"1" is not a number followed by`},
		{"d", `"d" is not a number followed by`},
		{"1x", `"1x" is not a number followed by`},
		{"1D", `"1D" is not a number followed by`},
		{"1h", `"1h" is not a number followed by`},
		{"-1d", `"-1d" is not a number`},
		{"+1d", `"+1d" is not a number`},
		{"1.5d", `"1.5d" is not a number`},
		{"1 d", `"1" is not a number`},
		{"1d,2H", `"1d,2H" is not a number`},
		{"1d 2d", "unit d is given twice"},
		{"0d 1d", "unit d is given twice"},
		{"99999999999999999999d", "is too large"},
		{"1001y", "longer than 1000 years"},
		{"12001m", "longer than 1000 years"},
		{"400000d", "longer than 1000 years"},
		{"60000w", "longer than 1000 years"},
		{"1000y 1d", "longer than 1000 years"},
		{"3000000H", "longer than 1000 years"},
		{"999999999999S", "too large"},
	} {
		_, err := ParseExpiry(tc.spec)
		if err == nil {
			t.Errorf("ParseExpiry(%q) = nil error, want %q", tc.spec, tc.want)
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseExpiry(%q) = %v, want an invalid-argument error holding %q", tc.spec, err, tc.want)
		}
	}
}

// In UTC a day is 24 hours, even on a European DST night; in a zone with
// DST a day is a calendar day (23 hours on that night), as Go's AddDate and
// LXD, which works in the host's local time, have it. H is always 60 minutes.
func TestExpiryDST(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	day, err := ParseExpiry("1d")
	if err != nil {
		t.Fatal(err)
	}
	hours, err := ParseExpiry("24H")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		e    Expiry
		from time.Time
		want time.Duration
	}{
		{"1d in UTC", day, time.Date(2025, 3, 30, 0, 0, 0, 0, time.UTC), 24 * time.Hour},
		{"1d in Paris", day, time.Date(2025, 3, 30, 0, 0, 0, 0, paris), 23 * time.Hour},
		{"24H in Paris", hours, time.Date(2025, 3, 30, 0, 0, 0, 0, paris), 24 * time.Hour},
		{"1d in Paris, autumn", day, time.Date(2025, 10, 26, 0, 0, 0, 0, paris), 25 * time.Hour},
	} {
		if got := tc.e.After(tc.from).Sub(tc.from); got != tc.want {
			t.Errorf("%s: expires %s after, want %s", tc.name, got, tc.want)
		}
	}
}
