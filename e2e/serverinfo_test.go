package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/api"
)

// TestLXCServerInfo reads /1.0 and an image through the real lxc: the
// environment LXD always sends, with the host's values, and an image's
// properties with what is true of it.
func TestLXCServerInfo(t *testing.T) {
	requireLXC(t)
	d := startDaemon(t, "")
	d.must("image", "import", imageTarball, "--alias", "busybox", "--os", "busybox")

	var env map[string]any
	var info struct {
		Environment json.RawMessage `json:"environment"`
	}
	if err := json.Unmarshal([]byte(d.mustLXC("query", "/1.0")), &info); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(info.Environment, &env); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"kernel_features", "lxc_features", "driver", "driver_version", "storage", "storage_version",
		"storage_supported_drivers", "firewall", "os_name", "os_version", "kernel", "kernel_architecture", "kernel_version",
		"server", "server_name", "server_pid", "server_version", "server_clustered", "server_event_mode", "project",
		"addresses", "certificate", "certificate_fingerprint", "architectures"} {
		if v, ok := env[k]; !ok || v == nil {
			t.Errorf("environment.%s missing", k)
		}
	}
	var uts unix.Utsname
	_ = unix.Uname(&uts)
	if env["kernel_version"] != unix.ByteSliceToString(uts.Release[:]) || env["kernel_architecture"] != unix.ByteSliceToString(uts.Machine[:]) {
		t.Errorf("kernel %v %v", env["kernel_version"], env["kernel_architecture"])
	}
	if feats, _ := env["kernel_features"].(map[string]any); len(feats) != 7 {
		t.Errorf("kernel_features %v", env["kernel_features"])
	}
	// lxc info prints the same through its own types.
	if out := d.mustLXC("info"); !strings.Contains(out, "kernel_features:") || !strings.Contains(out, "driver: runc") {
		t.Errorf("lxc info:\n%s", out)
	}

	// lxc image show prints the writable fields only.
	var img api.ImagePut
	if err := yaml.Unmarshal([]byte(d.mustLXC("image", "show", "busybox")), &img); err != nil {
		t.Fatal(err)
	}
	p, arch := img.Properties, unix.ByteSliceToString(uts.Machine[:])
	if p["os"] != "busybox" || p["architecture"] != arch || p["serial"] == "" || p["description"] != "busybox "+arch+" ("+p["serial"]+")" {
		t.Errorf("image properties %v", p)
	}
	// An instance copies them into its config, as LXD does.
	d.mustLXC("init", "busybox", "c1")
	if out := d.mustLXC("config", "get", "c1", "image.serial"); strings.TrimSpace(out) != p["serial"] {
		t.Errorf("image.serial %q, want %q", out, p["serial"])
	}
}
