package lxd

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/instance"
)

// TestWriteSyncBytes pins writeSync's answer to the bytes of the envelope
// encoding/json writes for api.Response, which it writes by hand.
func TestWriteSyncBytes(t *testing.T) {
	tests := []struct {
		name     string
		metadata any
		etag     string
	}{
		{"nil", nil, ""},
		{"empty list", []api.Instance{}, ""},
		{"html and unicode escapes", map[string]string{"k": "<a&b> \u2028 é \x01"}, "abc"},
		{"raw message with spaces", json.RawMessage(`{ "a" : [1, 2] }`), ""},
		{"instance", toAPIFull(fullFixture()), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.metadata)
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			if err := json.NewEncoder(&want).Encode(api.Response{
				Type: api.SyncResponse, Status: api.Success.String(), StatusCode: int(api.Success), Metadata: raw,
			}); err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second answer comes from a reused buffer
				rec := httptest.NewRecorder()
				writeSync(rec, tt.metadata, tt.etag)
				if rec.Code != http.StatusOK || rec.Body.String() != want.String() {
					t.Fatalf("answer %d\n%s\nwant\n%s", rec.Code, rec.Body, want.String())
				}
				if got := rec.Header().Get("Content-Length"); got != strconv.Itoa(want.Len()) {
					t.Errorf("Content-Length %q, want %d", got, want.Len())
				}
				if tt.etag != "" && rec.Header().Get("ETag") != `"`+tt.etag+`"` {
					t.Errorf("ETag %q", rec.Header().Get("ETag"))
				}
			}
		})
	}
}

func TestWriteSyncEncodeError(t *testing.T) {
	rec := httptest.NewRecorder()
	writeSync(rec, map[string]any{"f": func() {}}, "x")
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("ETag") != "" {
		t.Fatalf("answer %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}

// fullFixture is a running container with an address, as a list shows it.
func fullFixture() instance.Full {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	return instance.Full{
		Instance: instance.Instance{
			Name: "c1", Type: instance.TypeContainer, Architecture: "x86_64", Description: "<web>",
			Config: map[string]string{"user.a": "x & y", "volatile.uuid": "u"}, Devices: instance.Devices{},
			ExpandedConfig: map[string]string{"user.a": "x & y"}, ExpandedDevices: instance.Devices{"root": {"type": "disk"}},
			Profiles: []string{"default"}, Status: instance.StatusRunning, CreatedAt: at, LastUsedAt: at,
		},
		State: instance.State{Status: instance.StatusRunning, Pid: 42, Network: map[string]instance.NetworkState{
			"lo": {Addresses: []instance.NetworkAddress{{Family: "inet", Address: "127.0.0.1", Netmask: "8", Scope: "local"}}, State: "up", Type: "loopback"},
		}},
	}
}
