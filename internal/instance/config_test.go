package instance

import (
	"errors"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		key, value string
		ok         bool
	}{
		{"limits.cpu", "2", true},
		{"limits.cpu", "0-1,3", true},
		{"limits.cpu", "0", false},
		{"limits.cpu", "two", false},
		{"limits.cpu", "3-1", false},
		{"limits.memory", "512MiB", true},
		{"limits.memory", "1GB", true},
		{"limits.memory", "1073741824", true},
		{"limits.memory", "50%", true},
		{"limits.memory", "0%", false},
		{"limits.memory", "512 MiB", false},
		{"limits.memory", "12XB", false},
		{"limits.memory", "100kB", false}, // below what any process needs
		{"limits.memory", "5MiB", false},  // below what runc's init needs
		{"limits.memory", "6MiB", true},
		{"limits.memory", "", false},
		{"limits.memory", "-1", false},
		{"limits.memory", "NaN%", false},
		{"limits.memory", "1e9", false},
		{"limits.memory", "0x10000000", false},
		{"limits.memory", "99999999999999999999EiB", false},
		{"limits.memory", "1.5.5GiB", false},
		{"limits.processes", "100", true},
		{"limits.processes", "0", false},
		{"limits.processes", "-3", false},
		{"limits.processes", "4194304", true}, // PID_MAX_LIMIT
		{"limits.processes", "4194305", false},
		{"limits.processes", "99999999999999999999", false},
		{"limits.cpu", "0-999", true}, // syntax only: checkHost knows the host
		{"limits.cpu", "8192", true},
		{"limits.cpu", "8193", false},
		{"limits.cpu", "0-99999", false},
		{"limits.cpu", "+1", false},
		{"limits.cpu", "1-", false},
		{"limits.cpu", "1,,2", false},
		{"limits.cpu", " 1", false},
		{"limits.cpu", "-1", false},
		{"environment.FOO", "a\x00b", false},
		{"environment.FO\x00O", "x", false},
		{"environment.FOO", strings.Repeat("x", 131060), true},
		{"environment.FOO", strings.Repeat("x", 131068), false}, // MAX_ARG_STRLEN with "FOO="
		{"user.note", "a\x00b", false},
		{"oci.cmd", `["sleep","1"]`, true},
		{"oci.cmd", `["a\u0000b"]`, false},
		{"oci.entrypoint", `["` + strings.Repeat("x", 131072) + `"]`, false},
		{"oci.cwd", "relative", false},
		{"oci.uid", "4294967295", false},
		{"oci.uid", "-1", false},
		{"boot.autostart", "true", true},
		{"boot.autostart", "maybe", false},
		{"boot.autostart.delay", "5", true},
		{"boot.autostart.delay", "-1", false},
		{"boot.autostart.priority", "-10", true},
		{"boot.stop.priority", "x", false},
		{"security.privileged", "false", true},
		{"security.privileged", "2", false},
		{"security.protection.delete", "true", true},
		{"environment.FOO", "bar baz", true},
		{"environment.1FOO", "x", false},
		{"environment.FOO=BAR", "x", false},
		{"user.anything.at.all", "x", true},
		{"user.", "x", false},
		{"limits.cpus", "2", false}, // typo: unknown key
		{"raw.lxc", "x", false},
		{"autostandby.enabled", "true", true},
		{"autostandby.enabled", "maybe", false},
		{"autostandby.idle_timeout", "30s", true},
		{"autostandby.idle_timeout", "1h30m", true},
		{"autostandby.idle_timeout", "500ms", false}, // below the 1s minimum
		{"autostandby.idle_timeout", "0s", false},
		{"autostandby.idle_timeout", "-5s", false},
		{"autostandby.idle_timeout", "5", false}, // no unit
		{"autostandby.ignore_destination_ports", "22, 9100", true},
		{"autostandby.ignore_destination_ports", "0", false},
		{"autostandby.ignore_destination_ports", "65536", false},
		{"autostandby.ignore_destination_ports", "22,,80", false},
		{"autostandby.ignore_source_cidrs", "10.0.0.0/8,fd00::/8", true},
		{"autostandby.ignore_source_cidrs", "10.0.0.1", false}, // no prefix length
		{"autostandby.ignore_source_cidrs", "10.0.0.0/33", false},
		{"autostandby.idle_time", "30s", false}, // typo: unknown key
	}
	for _, tt := range tests {
		err := validateKey(tt.key, tt.value)
		if (err == nil) != tt.ok {
			t.Errorf("validateKey(%q, %q) = %v, want ok=%v", tt.key, tt.value, err, tt.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("validateKey(%q, %q): error %v is not invalid-argument kind", tt.key, tt.value, err)
		}
	}
}

func TestValidateUserConfigReadOnlyKeys(t *testing.T) {
	current := map[string]string{"volatile.base_image": "abc", "image.os": "busybox"}
	tests := []struct {
		name string
		cfg  map[string]string
		ok   bool
	}{
		{"echo back unchanged", map[string]string{"volatile.base_image": "abc", "image.os": "busybox", "limits.cpu": "1"}, true},
		{"change volatile", map[string]string{"volatile.base_image": "def"}, false},
		{"change image key", map[string]string{"image.os": "debian"}, false},
		{"new volatile", map[string]string{"volatile.other": "x"}, false},
		{"omit read-only keys", map[string]string{"limits.cpu": "1"}, true},
	}
	for _, tt := range tests {
		err := validateUserConfig(tt.cfg, current)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int64
	}{
		{"512MiB", 512 << 20},
		{"1GiB", 1 << 30},
		{"1GB", 1e9},
		{"6291456", 6 << 20},
		{"1.5GiB", 3 << 29},
		{"50%", 4 << 30},
	}
	for _, tt := range tests {
		got, err := parseMemory(tt.in, 8<<30)
		if err != nil || got != tt.want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"c1", true},
		{"web-01", true},
		{"A", true},
		{"", false},
		{"1c", false},
		{"-c", false},
		{"c-", false},
		{"c_1", false},
		{"c.1", false},
		{"c 1", false},
		{"a234567890123456789012345678901234567890123456789012345678901234", false},
		{"a23456789012345678901234567890123456789012345678901234567890123", true},
	}
	for _, tt := range tests {
		if err := validateName(tt.name); (err == nil) != tt.ok {
			t.Errorf("validateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	for range 50 {
		if n := randomName(); validateName(n) != nil {
			t.Fatalf("random name %q is not valid", n)
		}
	}
}

func TestValidateDevices(t *testing.T) {
	tests := []struct {
		name string
		devs map[string]map[string]string
		ok   bool
	}{
		{"none", nil, true},
		{"mask", map[string]map[string]string{"eth0": {"type": "none"}}, true},
		{"missing type", map[string]map[string]string{"eth0": {"nictype": "bridged"}}, false},
		{"root disk", map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default", "size": "1GiB"}}, true},
		{"root disk with a device key", map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default", "readonly": "true"}}, false},
		{"other disk", map[string]map[string]string{"data": {"type": "disk", "path": "/data", "source": "/srv"}}, false},
		{"nic without device layer", map[string]map[string]string{"eth0": {"type": "nic", "network": "br0"}}, false},
		{"unknown", map[string]map[string]string{"x": {"type": "teleporter"}}, false},
		{"bad name", map[string]map[string]string{"a/b": {"type": "none"}}, false},
	}
	for _, tt := range tests {
		if err := validateDevicesAlone(tt.devs); (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}
