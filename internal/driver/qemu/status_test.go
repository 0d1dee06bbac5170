package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/digitalocean/go-qemu/qmp"

	"github.com/hangar-dev/hangar/internal/driver"
)

func ev(name string, data map[string]any) qmp.Event { return qmp.Event{Event: name, Data: data} }

func TestApplyEvent(t *testing.T) {
	tests := []struct {
		name       string
		from       vmState
		event      qmp.Event
		want       vmState
		wantReason bool
	}{
		{"stop pauses", stateRunning, ev("STOP", nil), statePaused, false},
		{"resume runs", statePaused, ev("RESUME", nil), stateRunning, false},
		{"resume after boot", stateBooting, ev("RESUME", nil), stateRunning, false},
		{"powerdown asked", stateRunning, ev("POWERDOWN", nil), statePoweringDown, false},
		{"guest shutdown", statePoweringDown, ev("SHUTDOWN", map[string]any{"guest": true, "reason": "guest-shutdown"}), stateShutdown, false},
		{"quit", stateRunning, ev("SHUTDOWN", map[string]any{"guest": false, "reason": "host-qmp-quit"}), stateShutdown, false},
		{"panic through shutdown", stateRunning, ev("SHUTDOWN", map[string]any{"guest": true, "reason": "guest-panic"}), stateCrashed, true},
		{"panic event", stateRunning, ev("GUEST_PANICKED", map[string]any{"action": "pause"}), stateCrashed, true},
		{"off stays off", stateShutdown, ev("RESUME", nil), stateShutdown, false},
		{"crashed stays crashed", stateCrashed, ev("STOP", nil), stateCrashed, false},
		{"unrelated event", stateRunning, ev("BLOCK_JOB_COMPLETED", nil), stateRunning, false},
		{"reset keeps running", stateRunning, ev("RESET", nil), stateRunning, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := applyEvent(tt.from, tt.event)
			if got != tt.want || (reason != "") != tt.wantReason {
				t.Fatalf("applyEvent(%s, %s) = %s %q, want %s (reason %v)", tt.from, tt.event.Event, got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestStatusOfStates(t *testing.T) {
	tests := []struct {
		s    vmState
		want driver.Status
	}{
		{stateBooting, driver.StatusRunning},
		{stateRunning, driver.StatusRunning},
		{statePoweringDown, driver.StatusRunning},
		{statePaused, driver.StatusFrozen},
		{stateShutdown, driver.StatusStopped},
		{stateCrashed, driver.StatusError},
	}
	for _, tt := range tests {
		if got := tt.s.status(); got != tt.want {
			t.Errorf("%s.status() = %v, want %v", tt.s, got, tt.want)
		}
	}
	for st, want := range map[string]vmState{"running": stateRunning, "paused": statePaused, "inmigrate": statePaused, "shutdown": stateShutdown, "guest-panicked": stateCrashed} {
		if got, _ := stateOfQueryStatus(st); got != want {
			t.Errorf("stateOfQueryStatus(%q) = %s, want %s", st, got, want)
		}
	}
}

// fakeMonitor is a QMP monitor in memory: commands that change the run
// state emit the event QEMU would, as QEMU does, before answering.
type fakeMonitor struct {
	mu     sync.Mutex
	events chan qmp.Event
	ran    []string
	fail   map[string]bool
}

func newFakeMonitor() *fakeMonitor {
	return &fakeMonitor{events: make(chan qmp.Event, 16), fail: map[string]bool{}}
}

func (f *fakeMonitor) Connect() error    { return nil }
func (f *fakeMonitor) Disconnect() error { close(f.events); return nil }
func (f *fakeMonitor) Events(context.Context) (<-chan qmp.Event, error) {
	return f.events, nil
}

func (f *fakeMonitor) Run(cmd []byte) ([]byte, error) {
	var req struct {
		Execute string `json:"execute"`
	}
	if err := json.Unmarshal(cmd, &req); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.ran = append(f.ran, req.Execute)
	fail := f.fail[req.Execute]
	f.mu.Unlock()
	if fail {
		return nil, errors.New("command failed")
	}
	switch req.Execute {
	case "stop":
		f.events <- ev("STOP", nil)
	case "cont":
		f.events <- ev("RESUME", nil)
	case "quit":
		f.events <- ev("SHUTDOWN", map[string]any{"guest": false, "reason": "host-qmp-quit"})
	case "query-status":
		return []byte(`{"return":{"status":"running","running":true}}`), nil
	}
	return []byte(`{"return":{}}`), nil
}

// fakeVM registers a VM driven by a fake monitor with a driver.
func fakeVM(t *testing.T) (*Driver, *vm, *fakeMonitor) {
	t.Helper()
	d, err := New(Config{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	v := &vm{id: "h1", dir: t.TempDir(), pid: 1, cg: &cgroup{}, state: stateRunning, changed: make(chan struct{}), done: make(chan struct{})}
	fm := newFakeMonitor()
	mon, err := newMonitor(fm, v.onEvent)
	if err != nil {
		t.Fatal(err)
	}
	v.mon = mon
	d.vms["h1"] = v
	t.Cleanup(func() { fm.Disconnect() })
	return d, v, fm
}

func TestFreezeFollowsEvents(t *testing.T) {
	d, _, fm := fakeVM(t)
	ctx := context.Background()
	if err := d.Freeze(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.State(ctx, "h1"); st.Status != driver.StatusFrozen {
		t.Fatalf("after freeze: %v", st.Status)
	}
	if err := d.Unfreeze(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if st, _ := d.State(ctx, "h1"); st.Status != driver.StatusRunning {
		t.Fatalf("after unfreeze: %v", st.Status)
	}
	fm.fail["stop"] = true
	if err := d.Freeze(ctx, "h1"); err == nil {
		t.Fatal("a failed QMP stop was reported as a freeze")
	}
	if st, _ := d.State(ctx, "h1"); st.Status != driver.StatusRunning {
		t.Fatalf("after a failed freeze: %v", st.Status)
	}
	if err := d.Freeze(ctx, "nope"); !errors.Is(err, driver.ErrNotRunning) {
		t.Fatalf("freeze of an unknown VM: %v", err)
	}
}

func TestPanicIsError(t *testing.T) {
	d, _, fm := fakeVM(t)
	fm.events <- ev("GUEST_PANICKED", map[string]any{"action": "pause"})
	ctx := context.Background()
	v := d.get("h1")
	if err := v.waitState(ctx, func(s vmState) bool { return s == stateCrashed }); err != nil {
		t.Fatal(err)
	}
	st, _ := d.State(ctx, "h1")
	if st.Status != driver.StatusError || st.Error == "" {
		t.Fatalf("after a panic: %v %q", st.Status, st.Error)
	}
}
