package lxd

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/serverconfig"
	"github.com/hangar-dev/hangar/internal/store"
)

// TestServerETag checks /1.0's ETag as LXD sends it (over the config) and
// that PUT and PATCH honour If-Match with LXD's 412.
func TestServerETag(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "config.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if srv.Config, err = serverconfig.New(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	resp, env := call(t, ts, "GET", "/1.0", "", nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag == "" {
		t.Fatalf("GET /1.0: %d, ETag %q", resp.StatusCode, etag)
	}
	var info struct {
		Environment struct {
			Project string `json:"project"`
		} `json:"environment"`
	}
	_ = json.Unmarshal(env.Metadata, &info)
	if info.Environment.Project != "default" {
		t.Errorf("environment.project %q", info.Environment.Project)
	}
	tests := []struct {
		method, ifMatch, body string
		status                int
		errHas                string
	}{
		{"PATCH", `"stale"`, `{"config":{"images.remote_cache_expiry":"5"}}`, 412, "ETag doesn't match"},
		{"PUT", `"stale"`, `{"config":{}}`, 412, "ETag doesn't match"},
		{"PATCH", etag, `{"config":{"images.remote_cache_expiry":"5"}}`, 200, ""},
		// The change made the old ETag stale.
		{"PUT", etag, `{"config":{}}`, 412, "ETag doesn't match"},
		{"PUT", "", `{"config":{}}`, 200, ""},
	}
	for _, tt := range tests {
		resp, env := call(t, ts, tt.method, "/1.0", tt.body, map[string]string{"If-Match": tt.ifMatch})
		if resp.StatusCode != tt.status {
			t.Fatalf("%s If-Match %s: %d, want %d (%+v)", tt.method, tt.ifMatch, resp.StatusCode, tt.status, env)
		}
		if tt.errHas != "" && !strings.Contains(env.Error, tt.errHas) {
			t.Errorf("%s: error %q, want %q", tt.method, env.Error, tt.errHas)
		}
	}
	// The PUT restored the defaults: the ETag hashes the content.
	if resp, _ := call(t, ts, "GET", "/1.0", "", nil); resp.Header.Get("ETag") != etag {
		t.Errorf("ETag %s after restoring the config, want %s", resp.Header.Get("ETag"), etag)
	}
}
