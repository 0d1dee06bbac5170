package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// stopClean stops the daemon with SIGTERM, as a service manager does.
func (d *daemon) stopClean() {
	d.t.Helper()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		d.t.Fatal("hangard did not stop on SIGTERM")
	}
	d.log.Close()
}

// nextLifecycle reads events until a lifecycle one with the given action.
func nextLifecycle(t *testing.T, ctx context.Context, l *client.EventListener, action string) api.Event {
	t.Helper()
	for {
		select {
		case ev := <-l.Events():
			var lc api.EventLifecycle
			_ = json.Unmarshal(ev.Metadata, &lc)
			if lc.Action == action {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("no %s event", action)
		}
	}
}

// Event sequences across real daemon restarts: a clean restart replays
// what a lifecycle-only client missed (its last sequence is not the
// daemon's last: operation events came after it) and sequences continue
// without a jump; after kill -9 they continue above every number sent and
// a since from before is a 400 that says the daemon restarted.
func TestEventsAcrossRestart(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c := d.client()
	l, err := c.GetEvents(ctx, []string{"lifecycle"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d.must("launch", "busybox", "ev1")
	started := nextLifecycle(t, ctx, l, "instance-started")
	l.Close()
	d.must("freeze", "ev1") // missed by the client: the daemon stops meanwhile
	c.Close()

	d.stopClean()
	d.start()
	c = d.client()
	l, err = c.GetEvents(ctx, []string{"lifecycle"}, started.Sequence)
	if err != nil {
		t.Fatalf("since %d after a clean restart: %v", started.Sequence, err)
	}
	paused := nextLifecycle(t, ctx, l, "instance-paused")
	if paused.Sequence <= started.Sequence {
		t.Fatalf("replayed pause has sequence %d, not after %d", paused.Sequence, started.Sequence)
	}
	d.must("unfreeze", "ev1")
	resumed := nextLifecycle(t, ctx, l, "instance-resumed")
	l.Close()
	// No jump: the freeze's own operation events come between, no more.
	if resumed.Sequence > paused.Sequence+10 {
		t.Errorf("sequence jumped across a clean restart: pause %d, resume %d", paused.Sequence, resumed.Sequence)
	}
	c.Close()

	d.kill9()
	d.start()
	c = d.client()
	defer c.Close()
	_, err = c.GetEvents(ctx, []string{"lifecycle"}, resumed.Sequence)
	if err == nil || !strings.Contains(err.Error(), "before the daemon restarted") {
		t.Fatalf("since %d after kill -9: %v, want a restart error", resumed.Sequence, err)
	}
	l, err = c.GetEvents(ctx, []string{"lifecycle"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d.must("freeze", "ev1")
	again := nextLifecycle(t, ctx, l, "instance-paused")
	if again.Sequence <= resumed.Sequence {
		t.Fatalf("after kill -9 sequence %d is not above %d: numbers were reused", again.Sequence, resumed.Sequence)
	}
	d.must("unfreeze", "ev1")
}
