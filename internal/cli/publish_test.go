package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

func TestPublish(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		errHas  string
		srcType string
		srcName string
		check   func(t *testing.T, req api.ImagesPost)
	}{
		{name: "instance with everything", args: []string{"c1", "--alias", "a1", "--alias", "a2", "--compression", "zstd", "--public", "--expire", "2031-01-02", "description=my app", "os=Debian"},
			srcType: "instance", srcName: "c1", check: func(t *testing.T, req api.ImagesPost) {
				if len(req.Aliases) != 2 || req.Aliases[0].Name != "a1" || req.Aliases[1].Name != "a2" || req.CompressionAlgorithm != "zstd" || !req.Public ||
					!req.ExpiresAt.Equal(time.Date(2031, 1, 2, 0, 0, 0, 0, time.UTC)) || req.Properties["description"] != "my app" || req.Properties["os"] != "Debian" {
					t.Errorf("request %+v", req)
				}
			}},
		{name: "snapshot, no properties", args: []string{"c1/snap0"}, srcType: "snapshot", srcName: "c1/snap0", check: func(t *testing.T, req api.ImagesPost) {
			if req.Properties != nil || req.CompressionAlgorithm != "" || req.Public || !req.ExpiresAt.IsZero() {
				t.Errorf("request %+v", req)
			}
		}},
		{name: "bad property", args: []string{"c1", "novalue"}, code: 1, errHas: `property "novalue": want KEY=VALUE`},
		{name: "bad expiry", args: []string{"c1", "--expire", "tomorrow"}, code: 1, errHas: "--expire"},
		{name: "no name", args: nil, code: 1, errHas: "Usage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"POST /1.0/images":             fakeOp("pub", nil),
				"GET /1.0/operations/pub":      fakeOpDone("pub", api.Running, "", nil),
				"GET /1.0/operations/pub/wait": fakeOpDone("pub", api.Success, "", map[string]any{"fingerprint": "abc123", "size": 10}),
			})
			code, out, errOut := runCLI(t, f.socket, "", append([]string{"publish"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("code %d, want %d; out %q err %q", code, tt.code, out, errOut)
			}
			if tt.code != 0 {
				if !strings.Contains(errOut, tt.errHas) {
					t.Errorf("stderr %q, want it to say %q", errOut, tt.errHas)
				}
				if calls := f.calls(); len(calls) != 0 {
					t.Errorf("requests sent for a bad command: %v", calls)
				}
				return
			}
			if !strings.Contains(out, "Instance published with fingerprint: abc123\n") {
				t.Errorf("stdout %q", out)
			}
			var req api.ImagesPost
			if err := json.Unmarshal([]byte(f.request(t, "POST", "/1.0/images").Body), &req); err != nil {
				t.Fatal(err)
			}
			if req.Source == nil || req.Source.Type != tt.srcType || req.Source.Name != tt.srcName {
				t.Fatalf("source %+v", req.Source)
			}
			tt.check(t, req)
		})
	}
}

func TestPublishFailureIsOneLine(t *testing.T) {
	f := newFakeHangard(t, map[string]http.HandlerFunc{
		"POST /1.0/images": fakeFail(http.StatusConflict, `alias "a1" already exists`),
	})
	code, _, errOut := runCLI(t, f.socket, "", "publish", "c1", "--alias", "a1")
	if code == 0 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, `alias "a1" already exists`) {
		t.Errorf("code %d stderr %q", code, errOut)
	}
}
