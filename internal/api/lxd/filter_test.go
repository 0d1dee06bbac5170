package lxd

import (
	"testing"

	"github.com/hangar-dev/hangar/api"
)

func TestFilter(t *testing.T) {
	c1 := api.Instance{Name: "c1", Status: "Running", Type: "container", InstancePut: api.InstancePut{Config: map[string]string{"user.role": "db"}}}
	c2 := api.Instance{Name: "c2", Status: "Stopped", Type: "container", InstancePut: api.InstancePut{Ephemeral: true}}
	tests := []struct {
		expr   string
		c1, c2 bool
	}{
		{"", true, true},
		{"name eq c1", true, false},
		{"name ne c1", false, true},
		{"status eq Running or status eq Stopped", true, true},
		{"status eq Running and config.user.role eq db", true, false},
		{"not status eq Running", false, true},
		{"(name eq c1 or name eq c2) and ephemeral eq true", false, true},
		{`config.user.role eq "db"`, true, false},
		// lxc sends what the user typed: LXD compares case-insensitively,
		// the value being an anchored regular expression.
		{"status eq running", true, false},
		{"STATUS eq stopped", false, false},
		{"name eq c.", true, true},
		{"name eq ^c", true, true},
		{"name eq 1", false, false},
		{"name ne C2", true, false},
		{"ephemeral eq True", false, true},
		{"stateful eq false", true, true},
		{"config.user.role eq [db", false, false}, // no regexp: text
	}
	for _, tt := range tests {
		f, err := parseFilter(tt.expr)
		if err != nil {
			t.Fatalf("%q: %v", tt.expr, err)
		}
		if got := f.match(instanceFields(c1)); got != tt.c1 {
			t.Errorf("%q on c1 = %v", tt.expr, got)
		}
		if got := f.match(instanceFields(c2)); got != tt.c2 {
			t.Errorf("%q on c2 = %v", tt.expr, got)
		}
	}
	for _, bad := range []string{"name", "name eq", "name eq c1 and", "not", "name gt c1", "(name eq c1", "name eq c1 extra"} {
		if _, err := parseFilter(bad); err == nil {
			t.Errorf("%q parsed, want error", bad)
		}
	}
}

func TestFilterImages(t *testing.T) {
	img := api.Image{Fingerprint: "abc123", Architecture: "x86_64", Type: "container", ImagePut: api.ImagePut{Public: false, Properties: map[string]string{"os": "busybox"}}}
	tests := []struct {
		expr string
		want bool
	}{
		{"public eq true", false},
		{"public eq false", true},
		{"architecture eq X86_64", true},
		{"fingerprint eq abc.*", true},
		{"type eq virtual-machine", false},
		{"properties.os eq busybox", true},
		{"unknown eq x", false},
	}
	for _, tt := range tests {
		f, err := parseFilter(tt.expr)
		if err != nil {
			t.Fatalf("%q: %v", tt.expr, err)
		}
		if got := f.match(imageFields(img)); got != tt.want {
			t.Errorf("%q = %v, want %v", tt.expr, got, tt.want)
		}
	}
}
