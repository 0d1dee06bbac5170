package cli

import (
	"os"
	"testing"
)

func TestInstancePath(t *testing.T) {
	tests := []struct {
		arg, name, path string
		bad             bool
	}{
		{arg: "c1/etc/hosts", name: "c1", path: "/etc/hosts"},
		{arg: "c1/", name: "c1", path: "/"},
		{arg: "c1//etc/", name: "c1", path: "//etc/"},
		// Not cleaned: the daemon refuses what climbs out.
		{arg: "c1/../etc", name: "c1", path: "/../etc"},
		{arg: "c1", bad: true},
		{arg: "/etc/hosts", bad: true},
	}
	for _, tt := range tests {
		name, p, err := instancePath(tt.arg)
		if (err != nil) != tt.bad || name != tt.name || p != tt.path {
			t.Errorf("instancePath(%q) = %q, %q, %v", tt.arg, name, p, err)
		}
	}
	if got := joinPath("/srv/", "a.txt"); got != "/srv/a.txt" {
		t.Errorf("joinPath = %q", got)
	}
}

func TestParseMode(t *testing.T) {
	tests := []struct {
		in   string
		want os.FileMode
		bad  bool
	}{
		{in: "0644", want: 0o644},
		{in: "644", want: 0o644},
		{in: "0o600", want: 0o600},
		{in: "4755", want: 0o755 | os.ModeSetuid},
		{in: "1777", want: 0o777 | os.ModeSticky},
		{in: "0999", bad: true},
		{in: "rw-r--r--", bad: true},
		{in: "10000", bad: true},
	}
	for _, tt := range tests {
		got, err := parseMode(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("parseMode(%q) = %v, %v", tt.in, got, err)
		}
	}
}
