package driver

import (
	"strings"
	"testing"
)

func TestTrustCA(t *testing.T) {
	const (
		ca1    = "-----BEGIN CERTIFICATE-----\nONE\n-----END CERTIFICATE-----\n"
		ca2    = "-----BEGIN CERTIFICATE-----\nTWO\n-----END CERTIFICATE-----\n"
		distro = "-----BEGIN CERTIFICATE-----\nDISTRO\n-----END CERTIFICATE-----\n"
	)
	block := func(ca string) string { return guestCABegin + ca + guestCAEnd }
	tests := []struct {
		name, bundle, ca string
		want             string
		changed          bool
	}{
		{"no bundle", "", ca1, block(ca1), true},
		{"appended to a distribution's", distro, ca1, distro + block(ca1), true},
		{"bundle without a final newline", strings.TrimSuffix(distro, "\n"), ca1, distro + block(ca1), true},
		{"CA without a final newline", distro, strings.TrimSuffix(ca1, "\n"), distro + block(ca1), true},
		{"already there: not twice", distro + block(ca1), ca1, distro + block(ca1), false},
		{"a new CA replaces the old", distro + block(ca1), ca2, distro + block(ca2), true},
		{"an old block in the middle moves to the end", block(ca1) + distro, ca1, distro + block(ca1), true},
		{"two old blocks become one", block(ca1) + distro + block(ca2), ca2, distro + block(ca2), true},
		{"removed", distro + block(ca1), "", distro, true},
		{"nothing to remove", distro, "", distro, false},
		{"empty stays empty", "", "", "", false},
		{"a begin line without its end is kept", distro + guestCABegin + "x\n", "", distro + guestCABegin + "x\n", false},
		{"the marker inside a line is not ours", distro + "x" + block(ca1), "", distro + "x" + block(ca1), false},
		{"a block after a marker inside a line", distro + "x" + block(ca1) + block(ca2), ca2, distro + "x" + block(ca1) + block(ca2), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := TrustCA([]byte(tc.bundle), []byte(tc.ca))
			if string(got) != tc.want || changed != tc.changed {
				t.Fatalf("TrustCA = %q, %v\nwant      %q, %v", got, changed, tc.want, tc.changed)
			}
			// Applying it again changes nothing.
			if again, changed := TrustCA(got, []byte(tc.ca)); changed || string(again) != tc.want {
				t.Fatalf("second TrustCA changed the bundle: %q", again)
			}
		})
	}
}
