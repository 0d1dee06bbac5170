package client

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hangar-dev/hangar/api"
)

func TestGetEvents(t *testing.T) {
	tests := []struct {
		name      string
		types     []string
		since     uint64
		wantQuery string
	}{
		{"all", nil, 0, ""},
		{"filtered and replayed", []string{"lifecycle", "operation"}, 41, "since=41&type=lifecycle%2Coperation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotQuery := make(chan string, 1)
			c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/1.0/events" {
					fakeError(w, 404, "not found")
					return
				}
				gotQuery <- r.URL.RawQuery
				conn, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer conn.CloseNow()
				for i := uint64(1); i <= 2; i++ {
					data, _ := json.Marshal(api.Event{
						Type: api.EventTypeLifecycle, Sequence: tt.since + i,
						Metadata: json.RawMessage(`{"action":"instance-started","source":"/1.0/instances/c1"}`),
					})
					if err := conn.Write(r.Context(), websocket.MessageText, data); err != nil {
						return
					}
				}
				// Hold the stream open until the client goes away.
				conn.Read(r.Context())
			}))
			l, err := c.GetEvents(context.Background(), tt.types, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			if q := <-gotQuery; q != tt.wantQuery {
				t.Errorf("query %q, want %q", q, tt.wantQuery)
			}
			for i := uint64(1); i <= 2; i++ {
				select {
				case ev := <-l.Events():
					var md api.EventLifecycle
					if err := json.Unmarshal(ev.Metadata, &md); err != nil {
						t.Fatal(err)
					}
					if ev.Sequence != tt.since+i || md.Action != "instance-started" {
						t.Errorf("event %d: %+v %+v", i, ev, md)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("no event")
				}
			}
			l.Close()
			if _, ok := <-l.Events(); ok {
				t.Error("channel open after Close")
			}
			if l.Err() != nil {
				t.Errorf("Err after Close = %v", l.Err())
			}
		})
	}
}

func TestGetEventsDaemonGoesAway(t *testing.T) {
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		conn.Close(websocket.StatusGoingAway, "shutting down")
	}))
	l, err := c.GetEvents(context.Background(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("listener did not end")
	}
	if l.Err() == nil {
		t.Error("no error when the daemon closed the stream")
	}
}

func TestGetEventsErrorEnvelope(t *testing.T) {
	c := fakeDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fakeError(w, 400, `Invalid event type "bogus"`)
	}))
	_, err := c.GetEvents(context.Background(), []string{"bogus"}, 0)
	if !IsBadRequest(err) || err.Error() != `Invalid event type "bogus"` {
		t.Fatalf("err %v", err)
	}
}
