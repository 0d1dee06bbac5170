package cuid

import "testing"

func TestNewIsValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		id := New()
		if !Valid(id) {
			t.Fatalf("New() = %q: not a valid id", id)
		}
		if seen[id] {
			t.Fatalf("New() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"abcdefghijklmnopqrstuvwx", true},
		{"a12345678901234567890123", true},
		{"z00000000000000000000000", true},
		{"", false},
		{"1bcdefghijklmnopqrstuvwx", false},           // first a digit
		{"Abcdefghijklmnopqrstuvwx", false},           // upper case
		{"abcdefghijklmnopqrstuvw", false},            // 23
		{"abcdefghijklmnopqrstuvwxy", false},          // 25
		{"abcdefghijklmnopqrstuv-x", false},           // dash
		{"abcdefghijklmnopqrstuv\x00x", false},        // NUL
		{"abcdefghijklmnopqrstuvw\u00e9"[:24], false}, // non-ASCII
	} {
		if got := Valid(tc.in); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
