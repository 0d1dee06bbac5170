package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
)

func snapshotRoutes() map[string]http.HandlerFunc {
	const vol = "/1.0/storage-pools/default/volumes/custom/data"
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	expires := created.Add(24 * time.Hour)
	return map[string]http.HandlerFunc{
		"POST /1.0/instances/c1/snapshots":             fakeOp("op", nil),
		"DELETE /1.0/instances/c1/snapshots/s1":        fakeOp("op", nil),
		"DELETE /1.0/instances/c1/snapshots/ghost":     fakeFail(404, `snapshot "ghost" of instance "c1" not found`),
		"POST /1.0/instances/c1/snapshots/s1":          fakeOp("op", nil),
		"PUT /1.0/instances/c1":                        fakeOp("op", nil),
		"GET /1.0/operations/op/wait":                  fakeOpDone("op", api.Success, "", nil),
		"POST /1.0/instances/c2/snapshots":             fakeOp("bad", nil),
		"GET /1.0/operations/bad/wait":                 fakeOpDone("bad", api.Failure, "snapshot c2: no space", nil),
		"GET /1.0/instances/c1/snapshots/s1":           fakeOK(api.InstanceSnapshot{Name: "s1", Size: -1}, `"e"`),
		"POST " + vol + "/snapshots":                   fakeOp("op", nil),
		"POST " + vol + "/snapshots/s1":                fakeOp("op", nil),
		"DELETE " + vol + "/snapshots/s1":              fakeOp("op", nil),
		"PUT " + vol:                                   fakeOK(map[string]any{}, ""),
		"GET " + vol + "/snapshots/s1":                 fakeOK(api.StorageVolumeSnapshot{Name: "s1", ContentType: "filesystem"}, `"e"`),
		"GET /1.0/instances/c1/snapshots":              fakeOK([]api.InstanceSnapshot{{Name: "s1", CreatedAt: created, InstanceSnapshotPut: api.InstanceSnapshotPut{ExpiresAt: expires}}, {Name: "s2", CreatedAt: created, Stateful: true}}, ""),
		"GET " + vol + "/snapshots":                    fakeOK([]api.StorageVolumeSnapshot{{Name: "s1", CreatedAt: created, StorageVolumeSnapshotPut: api.StorageVolumeSnapshotPut{Description: "nightly", ExpiresAt: &expires}}}, ""),
		"GET /1.0/storage-pools/default/volumes/x/any": fakeFail(500, "unused"),
	}
}

// TestSnapshotCommands checks the requests each snapshot command sends,
// what it prints and its usage errors.
func TestSnapshotCommands(t *testing.T) {
	const vol = "/1.0/storage-pools/default/volumes/custom/data"
	wait := "GET /1.0/operations/op/wait?timeout=-1"
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantOut   string
		wantErr   string
		wantCalls []string
		// wantBody is the body of the first call's request.
		wantBody string
	}{
		{name: "create with the pattern's name", args: []string{"snapshot", "create", "c1"},
			wantCalls: []string{"POST /1.0/instances/c1/snapshots", wait}, wantBody: `{"name":"","stateful":false,"expires_at":null}`},
		{name: "create named, stateful, never expiring", args: []string{"snap", "create", "c1", "s1", "--stateful", "--no-expiry"},
			wantCalls: []string{"POST /1.0/instances/c1/snapshots", wait}, wantBody: `{"name":"s1","stateful":true,"expires_at":"0001-01-01T00:00:00Z"}`},
		{name: "create as lxc names it", args: []string{"snapshot", "create", "c1/s1"},
			wantCalls: []string{"POST /1.0/instances/c1/snapshots", wait}, wantBody: `{"name":"s1","stateful":false,"expires_at":null}`},
		{name: "create reusing a name", args: []string{"snapshot", "create", "c1", "s1", "--reuse"},
			wantCalls: []string{"DELETE /1.0/instances/c1/snapshots/s1", wait, "POST /1.0/instances/c1/snapshots", wait}},
		{name: "create reusing a free name", args: []string{"snapshot", "create", "c1", "ghost", "--reuse"},
			wantCalls: []string{"DELETE /1.0/instances/c1/snapshots/ghost", "POST /1.0/instances/c1/snapshots", wait}},
		{name: "create failing", args: []string{"snapshot", "create", "c2"}, wantCode: 1, wantErr: "Error: snapshot c2: no space\n",
			wantCalls: []string{"POST /1.0/instances/c2/snapshots", "GET /1.0/operations/bad/wait?timeout=-1"}},
		{name: "create with both expiries", args: []string{"snapshot", "create", "c1", "--expiry", "1d", "--no-expiry"}, wantCode: 1,
			wantErr: "Error: --expiry and --no-expiry cannot be used together\nUsage: hangar snapshot create INSTANCE [SNAPSHOT] [flags]\n"},
		{name: "create with a bad expiry", args: []string{"snapshot", "create", "c1", "--expiry", "soon"}, wantCode: 1,
			wantErr: "Error: --expiry: expiry \"soon\": \"soon\" is not a number followed by one of S (seconds), M (minutes), H (hours), d (days), w (weeks), m (months), y (years)\nUsage: hangar snapshot create INSTANCE [SNAPSHOT] [flags]\n"},
		{name: "create reuse without name", args: []string{"snapshot", "create", "c1", "--reuse"}, wantCode: 1,
			wantErr: "Error: --reuse needs a snapshot name\nUsage: hangar snapshot create INSTANCE [SNAPSHOT] [flags]\n"},
		{name: "create two names", args: []string{"snapshot", "create", "c1/a", "b"}, wantCode: 1,
			wantErr: "Error: invalid instance name \"c1/a\"\nUsage: hangar snapshot create INSTANCE [SNAPSHOT] [flags]\n"},
		{name: "list", args: []string{"snapshot", "list", "c1"}, wantCalls: []string{"GET /1.0/instances/c1/snapshots?recursion=1"},
			wantOut: "+------+----------------------+----------------------+----------+\n" +
				"| NAME |       TAKEN AT       |      EXPIRES AT      | STATEFUL |\n" +
				"+------+----------------------+----------------------+----------+\n" +
				"| s1   | 2024/05/01 12:00 UTC | 2024/05/02 12:00 UTC | NO       |\n" +
				"+------+----------------------+----------------------+----------+\n" +
				"| s2   | 2024/05/01 12:00 UTC |                      | YES      |\n" +
				"+------+----------------------+----------------------+----------+\n"},
		{name: "show", args: []string{"snapshot", "show", "c1", "s1"}, wantCalls: []string{"GET /1.0/instances/c1/snapshots/s1"}},
		{name: "show as lxc names it", args: []string{"snapshot", "show", "c1/s1"}, wantCalls: []string{"GET /1.0/instances/c1/snapshots/s1"}},
		{name: "restore", args: []string{"snapshot", "restore", "c1", "s1", "--stateful"},
			wantCalls: []string{"PUT /1.0/instances/c1", wait},
			wantBody:  `{"architecture":"","config":null,"devices":null,"ephemeral":false,"profiles":null,"restore":"c1/s1","stateful":true,"description":""}`},
		{name: "restore as lxc names it", args: []string{"snapshot", "restore", "c1", "c1/s1"},
			wantCalls: []string{"PUT /1.0/instances/c1", wait}},
		{name: "rename", args: []string{"snapshot", "rename", "c1", "s1", "s9"},
			wantCalls: []string{"POST /1.0/instances/c1/snapshots/s1", wait}, wantBody: `{"name":"s9","migration":false}`},
		{name: "delete several", args: []string{"snapshot", "delete", "c1", "s1", "ghost"}, wantCode: 1,
			wantErr:   "Error: ghost: snapshot \"ghost\" of instance \"c1\" not found\n",
			wantCalls: []string{"DELETE /1.0/instances/c1/snapshots/s1", wait, "DELETE /1.0/instances/c1/snapshots/ghost"}},
		{name: "volume snapshot create", args: []string{"storage", "volume", "snapshot", "create", "default", "data", "s1", "--no-expiry"},
			wantCalls: []string{"POST " + vol + "/snapshots", wait}, wantBody: `{"name":"s1","expires_at":"0001-01-01T00:00:00Z"}`},
		{name: "volume snapshot create unnamed", args: []string{"storage", "volume", "snapshot", "create", "default", "custom/data"},
			wantCalls: []string{"POST " + vol + "/snapshots", wait}, wantBody: `{"name":"","expires_at":null}`},
		{name: "volume snapshot list", args: []string{"storage", "volume", "snapshot", "list", "default", "data", "-f", "csv"},
			wantCalls: []string{"GET " + vol + "/snapshots?recursion=1"}, wantOut: "s1,nightly,2024/05/01 12:00 UTC,2024/05/02 12:00 UTC\n"},
		{name: "volume snapshot show", args: []string{"storage", "volume", "snapshot", "show", "default", "data", "s1"},
			wantCalls: []string{"GET " + vol + "/snapshots/s1"}},
		{name: "volume snapshot restore", args: []string{"storage", "volume", "snapshot", "restore", "default", "data", "s1"},
			wantCalls: []string{"PUT " + vol}, wantBody: `{"config":null,"description":"","restore":"s1"}`},
		{name: "volume snapshot rename", args: []string{"storage", "volume", "snapshot", "rename", "default", "data", "s1", "s2"},
			wantCalls: []string{"POST " + vol + "/snapshots/s1", wait}, wantBody: `{"name":"s2"}`},
		{name: "volume snapshot delete", args: []string{"storage", "volume", "snapshot", "delete", "default", "data", "s1"},
			wantCalls: []string{"DELETE " + vol + "/snapshots/s1", wait}},
		{name: "volume snapshot create too many", args: []string{"storage", "volume", "snapshot", "create", "default", "data", "a", "b"}, wantCode: 1,
			wantErr: "Error: too many arguments: expected at most 3, got 4\nUsage: hangar storage volume snapshot create POOL [custom/]VOLUME [SNAPSHOT] [flags]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHangard(t, snapshotRoutes())
			code, out, errOut := runCLI(t, f.socket, "", tt.args...)
			if code != tt.wantCode || errOut != tt.wantErr || (tt.wantOut != "" && out != tt.wantOut) {
				t.Errorf("code %d out %q err %q; want %d %q %q", code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantCalls, f.calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if tt.wantBody != "" {
				method, uri, _ := strings.Cut(tt.wantCalls[0], " ")
				if got := f.request(t, method, uri).Body; got != tt.wantBody {
					t.Errorf("body\n got %s\nwant %s", got, tt.wantBody)
				}
			}
		})
	}
}

// TestSnapshotExpiryFlag checks that --expiry is sent as a time that far
// from now.
func TestSnapshotExpiryFlag(t *testing.T) {
	f := newFakeHangard(t, snapshotRoutes())
	before := time.Now()
	if code, _, errOut := runCLI(t, f.socket, "", "snapshot", "create", "c1", "s1", "--expiry", "1d 2H"); code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	after := time.Now()
	var req api.InstanceSnapshotsPost
	if err := json.Unmarshal([]byte(f.request(t, "POST", "/1.0/instances/c1/snapshots").Body), &req); err != nil || req.ExpiresAt == nil {
		t.Fatalf("body: %+v %v", req, err)
	}
	span := 26 * time.Hour
	if got := *req.ExpiresAt; got.Before(before.Add(span).Truncate(time.Second)) || got.After(after.Add(span)) {
		t.Fatalf("expires_at %s, want 26h after %s", got, before)
	}
}
