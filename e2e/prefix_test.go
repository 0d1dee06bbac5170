package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// TestLXCPrefixes drives a real container through LXD 5.0's older
// /1.0/containers endpoints with the real lxc's raw queries, as scripts
// written for LXD 3 and 4 do: create, state, exec with recorded output,
// files, logs, delete; and checks that /1.0/virtual-machines does not see
// it.
func TestLXCPrefixes(t *testing.T) {
	requireLXC(t)
	d := startDaemon(t, "")
	d.must("image", "import", imageTarball, "--alias", "busybox", "--os", "busybox")

	d.mustLXC("query", "--wait", "-X", "POST", "-d", `{"name":"old","source":{"type":"image","alias":"busybox"},"start":true}`, "/1.0/containers")
	var urls []string
	if err := json.Unmarshal([]byte(d.mustLXC("query", "/1.0/containers")), &urls); err != nil || strings.Join(urls, ",") != "/1.0/containers/old" {
		t.Fatalf("GET /1.0/containers: %v %v", urls, err)
	}
	if out := d.mustLXC("query", "/1.0/virtual-machines"); strings.TrimSpace(out) != "[]" {
		t.Errorf("GET /1.0/virtual-machines: %s", out)
	}
	var st api.InstanceState
	if err := json.Unmarshal([]byte(d.mustLXC("query", "/1.0/containers/old/state")), &st); err != nil || st.Status != "Running" || st.Pid <= 0 {
		t.Fatalf("state: %+v %v", st, err)
	}

	var op api.Operation
	if err := json.Unmarshal([]byte(d.mustLXC("query", "--wait", "-X", "POST", "-d", `{"command":["sh","-c","echo old > /tmp/h; cat /tmp/h"],"record-output":true}`, "/1.0/containers/old/exec")), &op); err != nil {
		t.Fatal(err)
	}
	out, _ := op.Metadata["output"].(map[string]any)
	stdout, _ := out["1"].(string)
	// lxc query reads JSON only: the raw bodies through the socket.
	for _, path := range []string{stdout, "/1.0/containers/old/files?path=/tmp/h"} {
		if got := d.rawGet(path); strings.TrimSpace(got) != "old" {
			t.Errorf("GET %s: %q", path, got)
		}
	}
	if got := d.mustLXC("query", "/1.0/containers/old/logs"); !strings.Contains(got, "/logs/") {
		t.Errorf("logs: %s", got)
	}

	d.mustLXCFail([]string{"query", "/1.0/virtual-machines/old"}, "Instance not found")
	d.mustLXCFail([]string{"query", "-X", "DELETE", "/1.0/containers/old"}, "Instance is running")
	d.mustLXC("query", "--wait", "-X", "PUT", "-d", `{"action":"stop","force":true}`, "/1.0/containers/old/state")
	d.mustLXC("query", "--wait", "-X", "DELETE", "/1.0/containers/old")
	if names := d.instanceNames(); len(names) != 0 {
		t.Errorf("instances left: %v", names)
	}
}

// rawGet returns the body of a GET through the daemon's socket, failing
// the test on any status but 200.
func (d *daemon) rawGet(path string) string {
	d.t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	resp, err := hc.Get("http://hangar" + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("GET %s: %d %s %v", path, resp.StatusCode, b, err)
	}
	return string(b)
}
