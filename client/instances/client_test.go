package instances

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	wire "github.com/hangar-dev/hangar/api/instances"
)

// Each method sends the seed's method, path, query and body, with the
// bearer token, and decodes the answer; errors come back typed.
func TestClientRequests(t *testing.T) {
	type seen struct{ method, path, query, body, auth string }
	var got seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = seen{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Get("Authorization")}
		switch {
		case strings.HasSuffix(r.URL.Path, "/missing"):
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"code":"not_found","message":"instance \"missing\" not found"}`))
		case strings.HasSuffix(r.URL.Path, "/logs"):
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = w.Write([]byte("data: one\n\ndata: two\n\nevent: error\ndata: cut\n\n"))
		case r.URL.Path == "/base/instances" && r.Method == "GET":
			_, _ = w.Write([]byte(`[{"name":"vm"}]`))
		case r.Method == "DELETE" && !strings.Contains(r.URL.Path, "volumes"):
			w.WriteHeader(204)
		default:
			_, _ = w.Write([]byte(`{"name":"vm","state":"Running","exists":true,"timed_out":true,"interval":"1h"}`))
		}
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/base", WithBearerToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tail := 5
	tests := []struct {
		name                      string
		call                      func() error
		method, path, query, body string
	}{
		{"new", func() error { _, err := c.New(ctx, wire.InstanceNewParams{Name: "vm", Image: "alpine"}); return err }, "POST", "/base/instances", "", `{"image":"alpine","name":"vm"}`},
		{"update", func() error {
			_, err := c.Update(ctx, "vm", wire.InstanceUpdateParams{Env: map[string]string{"K": "v"}})
			return err
		}, "PATCH", "/base/instances/vm", "", `{"env":{"K":"v"}}`},
		{"list", func() error {
			_, err := c.List(ctx, ListParams{State: wire.StateRunning, Tags: map[string]string{"b": "2", "a": "1"}})
			return err
		}, "GET", "/base/instances", "state=Running&tags%5Ba%5D=1&tags%5Bb%5D=2", ""},
		{"get", func() error { _, err := c.Get(ctx, "vm"); return err }, "GET", "/base/instances/vm", "", ""},
		{"delete", func() error { return c.Delete(ctx, "vm") }, "DELETE", "/base/instances/vm", "", ""},
		{"fork", func() error {
			_, err := c.Fork(ctx, "vm", wire.InstanceForkParams{Name: "f", TargetState: wire.StateStopped})
			return err
		}, "POST", "/base/instances/vm/fork", "", `{"name":"f","target_state":"Stopped"}`},
		{"restore", func() error { _, err := c.Restore(ctx, "vm"); return err }, "POST", "/base/instances/vm/restore", "", ""},
		{"standby", func() error { _, err := c.Standby(ctx, "vm", wire.InstanceStandbyParams{}); return err }, "POST", "/base/instances/vm/standby", "", `{}`},
		{"start", func() error {
			_, err := c.Start(ctx, "vm", wire.InstanceStartParams{Cmd: []string{"sleep", "1"}})
			return err
		}, "POST", "/base/instances/vm/start", "", `{"cmd":["sleep","1"]}`},
		{"stop", func() error { _, err := c.Stop(ctx, "vm"); return err }, "POST", "/base/instances/vm/stop", "", ""},
		{"stat", func() error { _, err := c.Stat(ctx, "vm", "/etc", true); return err }, "GET", "/base/instances/vm/stat", "follow_links=true&path=%2Fetc", ""},
		{"stats", func() error { _, err := c.Stats(ctx, "vm"); return err }, "GET", "/base/instances/vm/stats", "", ""},
		{"wait", func() error { _, err := c.Wait(ctx, "vm", wire.StateRunning, "30s"); return err }, "GET", "/base/instances/vm/wait", "state=Running&timeout=30s", ""},
		{"autostandby status", func() error { _, err := c.AutoStandby.Status(ctx, "vm"); return err }, "GET", "/base/instances/vm/auto-standby/status", "", ""},
		{"autostandby hold", func() error { _, err := c.AutoStandby.Hold(ctx, "vm"); return err }, "POST", "/base/instances/vm/auto-standby/hold", "", ""},
		{"snapshot new", func() error {
			_, err := c.Snapshots.New(ctx, "vm", wire.InstanceSnapshotNewParams{Kind: wire.SnapshotKindStandby})
			return err
		}, "POST", "/base/instances/vm/snapshots", "", `{"kind":"Standby"}`},
		{"snapshot restore", func() error {
			_, err := c.Snapshots.Restore(ctx, "vm", "s1", wire.InstanceSnapshotRestoreParams{TargetState: wire.StateRunning})
			return err
		}, "POST", "/base/instances/vm/snapshots/s1/restore", "", `{"target_state":"Running"}`},
		{"schedule get", func() error { _, err := c.SnapshotSchedule.Get(ctx, "vm"); return err }, "GET", "/base/instances/vm/snapshot-schedule", "", ""},
		{"schedule update", func() error {
			n := int64(2)
			_, err := c.SnapshotSchedule.Update(ctx, "vm", wire.SetSnapshotScheduleRequest{Interval: "1h", Retention: &wire.SnapshotScheduleRetentionParams{MaxCount: &n}})
			return err
		}, "PUT", "/base/instances/vm/snapshot-schedule", "", `{"interval":"1h","retention":{"max_count":2}}`},
		{"schedule delete", func() error { return c.SnapshotSchedule.Delete(ctx, "vm") }, "DELETE", "/base/instances/vm/snapshot-schedule", "", ""},
		{"attach", func() error {
			_, err := c.Volumes.Attach(ctx, "vm", "data", wire.InstanceVolumeAttachParams{MountPath: "/d"})
			return err
		}, "POST", "/base/instances/vm/volumes/data", "", `{"mount_path":"/d"}`},
		{"detach", func() error { _, err := c.Volumes.Detach(ctx, "vm", "data"); return err }, "DELETE", "/base/instances/vm/volumes/data", "", ""},
		{"logs", func() error {
			s, err := c.Logs(ctx, "vm", LogsParams{Follow: true, Tail: &tail, Source: "app"})
			if err != nil {
				return err
			}
			defer s.Close()
			var lines []string
			for s.Next() {
				lines = append(lines, s.Line())
			}
			if strings.Join(lines, ",") != "one,two" || s.Err() == nil || !strings.Contains(s.Err().Error(), "cut") {
				t.Errorf("lines %v, err %v", lines, s.Err())
			}
			return nil
		}, "GET", "/base/instances/vm/logs", "follow=true&source=app&tail=5", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got = seen{}
			if err := tc.call(); err != nil {
				t.Fatal(err)
			}
			want := seen{tc.method, tc.path, tc.query, tc.body, "Bearer tok"}
			if got != want {
				t.Fatalf("sent %+v, want %+v", got, want)
			}
		})
	}
	_, err = c.Get(ctx, "missing")
	var e *Error
	if StatusOf(err) != 404 || !errorsAs(err, &e) || e.Code != "not_found" || !strings.Contains(e.Message, "missing") {
		t.Fatalf("error %#v", err)
	}
	if _, err := c.Get(ctx, ""); err == nil {
		t.Fatal("an empty id was sent")
	}
	if _, err := New("ftp://x"); err == nil {
		t.Fatal("ftp base URL accepted")
	}
}

func errorsAs(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}
