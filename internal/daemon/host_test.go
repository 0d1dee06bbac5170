package daemon

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestServerInfo checks GET /1.0's body as LXD 5.0.2 shapes it
// (shared/api/server.go): every field present, and each value the host's
// own, read here independently of the probe.
func TestServerInfo(t *testing.T) {
	info := probeHost(t.TempDir()).serverInfo()()
	raw, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"config", "api_extensions", "api_status", "api_version", "auth", "public", "auth_methods", "environment"} {
		if _, ok := top[k]; !ok {
			t.Errorf("/1.0 lacks %q", k)
		}
	}
	var env map[string]any
	if err := json.Unmarshal(top["environment"], &env); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"addresses", "architectures", "certificate", "certificate_fingerprint", "driver", "driver_version",
		"firewall", "kernel", "kernel_architecture", "kernel_features", "kernel_version", "lxc_features", "os_name", "os_version",
		"project", "server", "server_clustered", "server_event_mode", "server_name", "server_pid", "server_version",
		"storage", "storage_version", "storage_supported_drivers"} {
		if v, ok := env[k]; !ok || v == nil {
			t.Errorf("environment.%s is missing or null", k)
		}
	}

	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	hostname, _ := os.Hostname()
	osRelease, _ := os.ReadFile("/etc/os-release")
	e := info.Environment
	tests := []struct {
		field, got, want string
	}{
		{"kernel", e.Kernel, unix.ByteSliceToString(uts.Sysname[:])},
		{"kernel_version", e.KernelVersion, unix.ByteSliceToString(uts.Release[:])},
		{"kernel_architecture", e.KernelArchitecture, unix.ByteSliceToString(uts.Machine[:])},
		{"server_name", e.ServerName, hostname},
		{"server", e.Server, "hangar"},
		{"storage", e.Storage, "dir"},
		{"auth", info.Auth, "trusted"},
		{"api_version", info.APIVersion, "1.0"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.field, tt.got, tt.want)
		}
	}
	if e.ServerPid != os.Getpid() {
		t.Errorf("server_pid %d, want %d", e.ServerPid, os.Getpid())
	}
	if e.OSName == "" || !strings.Contains(string(osRelease), e.OSName) || !strings.Contains(string(osRelease), `VERSION_ID="`+e.OSVersion+`"`) && !strings.Contains(string(osRelease), "VERSION_ID="+e.OSVersion+"\n") {
		t.Errorf("os %q %q not from /etc/os-release", e.OSName, e.OSVersion)
	}
	if len(e.KernelFeatures) != 7 {
		t.Errorf("kernel_features %v", e.KernelFeatures)
	}
	// driver and driver_version pair up, one entry per runtime present.
	names, versions := strings.Split(e.Driver, " | "), strings.Split(e.DriverVersion, " | ")
	if names[0] != "runc" || len(names) != len(versions) {
		t.Errorf("driver %q, driver_version %q", e.Driver, e.DriverVersion)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); (err == nil) != strings.Contains(e.Driver, "qemu") {
		t.Errorf("driver %q, qemu installed: %v", e.Driver, err == nil)
	}
	for i, n := range names {
		if out, err := exec.Command(map[string]string{"runc": "runc", "qemu": "qemu-system-x86_64"}[n], "--version").Output(); err != nil || !strings.Contains(string(out), versions[i]) || versions[i] == "" {
			t.Errorf("%s version %q not in its --version: %s %v", n, versions[i], out, err)
		}
	}
	_, btrfsErr := exec.LookPath("btrfs")
	if want := map[bool]int{true: 2, false: 1}[btrfsErr == nil]; len(e.StorageSupportedDrivers) != want || e.StorageSupportedDrivers[0].Name != "dir" {
		t.Errorf("storage_supported_drivers %+v, want dir and btrfs when btrfs-progs is installed", e.StorageSupportedDrivers)
	}
	if !strings.Contains(string(top["environment"]), `"storage_supported_drivers":[{"Name":"dir","Version":"1","Remote":false}`) {
		t.Errorf("storage_supported_drivers not in LXD's wire form: %s", top["environment"])
	}
}

func TestQEMUVersionParse(t *testing.T) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		if v := qemuVersion(); v != "" {
			t.Errorf("no QEMU installed, version %q", v)
		}
		t.Skip("no qemu-system-x86_64")
	}
	v := qemuVersion()
	if v == "" || strings.ContainsAny(v, " (") {
		t.Errorf("qemu version %q", v)
	}
}
