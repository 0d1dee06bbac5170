package instance

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
)

// TestAcknowledgedStopStaysStopped kills the daemon (takes the database as
// it is) at each point of a stop, and recovers a new service from it: an
// instance whose stop had reached the runtime stays stopped, whatever its
// boot.autostart, exactly as if the stop had completed; one whose stop had
// not stays running.
func TestAcknowledgedStopStaysStopped(t *testing.T) {
	tests := []struct {
		name      string
		autostart string // "" unset
		restart   bool   // the stop of a restart: the instance is to run
		crash     string // "after kill" or "before kill"
		wantStart bool   // recovery starts it
		wantLive  bool   // recovery finds it running
	}{
		{"stop, autostart unset, killed after the kill", "", false, "after kill", false, false},
		{"stop, autostart false, killed after the kill", "false", false, "after kill", false, false},
		// boot.autostart=true starts an instance with every daemon start,
		// stopped or not (LXD's rule): a completed stop behaves the same.
		{"stop, autostart true, killed after the kill", "true", false, "after kill", true, false},
		{"restart, killed between its stop and start", "", true, "after kill", true, false},
		{"stop, killed before the kill", "", false, "before kill", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, drv, db, _ := newTestService(t)
			ctx := context.Background()
			req := imageReq("c1")
			if tt.autostart != "" {
				req.Config = map[string]string{"boot.autostart": tt.autostart}
			}
			if err := launch(t, s, req); err != nil {
				t.Fatal(err)
			}
			// What the killed daemon leaves: its database, and the
			// containers the runtime runs.
			var crashed *fakeDB
			live := newFakeDriver()
			snapshotRuntime := func() {
				drv.mu.Lock()
				defer drv.mu.Unlock()
				for id, pid := range drv.running {
					live.running[id] = pid
				}
			}
			switch tt.crash {
			case "after kill":
				drv.afterKill = func(string) {
					crashed = db.clone()
					snapshotRuntime()
				}
			case "before kill":
				// The intent is written, then the runtime is slow: the
				// daemon dies while the container still runs.
				drv.failStop = errors.New("daemon killed")
				db.onUpdate = func() {
					if crashed == nil {
						crashed = db.cloneLocked()
						snapshotRuntime()
					}
				}
			}
			var err error
			if tt.restart {
				err = s.Restart(ctx, "c1", StopOptions{Timeout: -1})
			} else {
				err = s.Stop(ctx, "c1", StopOptions{Timeout: -1})
			}
			if tt.crash == "after kill" && err != nil {
				t.Fatal(err)
			}
			if crashed == nil {
				t.Fatal("the crash point was never reached")
			}
			wantPower := powerStopped
			if tt.restart {
				wantPower = powerRunning
			}
			if p := crashed.instances[1].Config[keyLastPower]; p != wantPower {
				t.Errorf("power recorded at the crash %q, want %q", p, wantPower)
			}

			s2 := New(Config{DB: crashed, Images: fakeImages{}, Storage: &fakeStorage{}, Drivers: map[Type]driver.Driver{TypeContainer: live}, Events: &fakeEvents{}, Architecture: "x86_64"})
			if err := s2.Load(ctx); err != nil {
				t.Fatal(err)
			}
			toStart, err := s2.Recover(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(toStart, Ref{Project: "default", Name: "c1"}); got != tt.wantStart {
				t.Errorf("recovery starts c1: %v, want %v", got, tt.wantStart)
			}
			got, _ := s2.Get(ctx, "c1")
			if live := got.Status == StatusRunning; live != tt.wantLive {
				t.Errorf("after recovery c1 is %s", got.Status)
			}
		})
	}
}

// TestFailedStopKeepsRunningState: a stop the runtime could not do leaves
// the instance running and recorded as running.
func TestFailedStopKeepsRunningState(t *testing.T) {
	s, drv, db, _ := newTestService(t)
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	drv.failStop = errors.New("runc is out to lunch")
	if err := s.Stop(context.Background(), "c1", StopOptions{Timeout: -1}); err == nil {
		t.Fatal("stop succeeded")
	}
	if got, _ := s.Get(context.Background(), "c1"); got.Status != StatusRunning {
		t.Fatalf("status %s after a failed stop", got.Status)
	}
	if p := db.instances[1].Config[keyLastPower]; p != powerRunning {
		t.Fatalf("recorded power %q after a failed stop, want RUNNING", p)
	}
}

// TestStopAllKeepsRunningIntent: a daemon shutdown with --stop-instances
// stops every instance but records them as running, so the next daemon
// start brings them back; a user's stop before it is not undone.
func TestStopAllKeepsRunningIntent(t *testing.T) {
	s, _, db, _ := newTestService(t)
	ctx := context.Background()
	for _, name := range []string{"c1", "c2"} {
		if err := launch(t, s, imageReq(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Stop(ctx, "c2", StopOptions{Timeout: -1}); err != nil {
		t.Fatal(err)
	}
	s.StopAll(ctx)
	for id, want := range map[int64]string{1: powerRunning, 2: powerStopped} {
		if p := db.instances[id].Config[keyLastPower]; p != want {
			t.Errorf("instance %d: recorded power %q, want %q", id, p, want)
		}
	}
	for _, name := range []string{"c1", "c2"} {
		if got, _ := s.Get(ctx, name); got.Status != StatusStopped {
			t.Errorf("%s is %s after StopAll", name, got.Status)
		}
	}
}
