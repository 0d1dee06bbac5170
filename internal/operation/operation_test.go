package operation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
)

// recorder is a Publisher that keeps every operation event.
type recorder struct {
	mu     sync.Mutex
	events []api.Operation
}

func (r *recorder) PublishIn(_, eventType string, metadata any) event.Event {
	if eventType != api.EventTypeOperation {
		panic("unexpected event type " + eventType)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, metadata.(api.Operation))
	return event.Event{Type: eventType}
}

// of returns the events of one operation.
func (r *recorder) of(id string) []api.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []api.Operation
	for _, e := range r.events {
		if e.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// statuses returns the status sequence of one operation's events.
func (r *recorder) statuses(id string) []api.StatusCode {
	var out []api.StatusCode
	for _, e := range r.of(id) {
		out = append(out, e.StatusCode)
	}
	return out
}

func newTestRegistry(t *testing.T) (*Registry, *recorder) {
	t.Helper()
	rec := &recorder{}
	r := New(rec, 0)
	t.Cleanup(r.Close)
	return r, rec
}

// waitFinal waits for the operation without limit, failing after 5s.
func waitFinal(t *testing.T, r *Registry, id string) api.Operation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	op, err := r.Wait(ctx, id, -1)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	return op
}

func TestStartFields(t *testing.T) {
	r, _ := newTestRegistry(t)
	release := make(chan struct{})
	res := map[string][]string{"instances": {"/1.0/instances/c1"}}
	before := time.Now()
	op := r.Start(Spec{
		Description: "Creating instance",
		Resources:   res,
		Metadata:    map[string]any{"progress": "0%"},
		Cancelable:  true,
		Run: func(ctx context.Context, op *Op) error {
			<-release
			return nil
		},
	})
	res["instances"][0] = "mutated by caller" // Start copied it

	got := op.Snapshot()
	if got.ID != op.ID() || got.ID == "" {
		t.Errorf("id %q, want %q", got.ID, op.ID())
	}
	if got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Before(got.CreatedAt) {
		t.Errorf("created %v, updated %v", got.CreatedAt, got.UpdatedAt)
	}
	want := api.Operation{
		ID:          op.ID(),
		Class:       api.OperationClassTask,
		Description: "Creating instance",
		CreatedAt:   got.CreatedAt,
		UpdatedAt:   got.UpdatedAt,
		Status:      "Running",
		StatusCode:  api.Running,
		Resources:   map[string][]string{"instances": {"/1.0/instances/c1"}},
		Metadata:    map[string]any{"progress": "0%"},
		MayCancel:   true,
		Location:    "none",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	close(release)
	final := waitFinal(t, r, op.ID())
	if final.MayCancel || final.StatusCode != api.Success || final.Status != "Success" {
		t.Errorf("final %+v", final)
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		run     func(ctx context.Context, op *Op) error
		status  api.StatusCode
		wantErr string
	}{
		{"success", func(context.Context, *Op) error { return nil }, api.Success, ""},
		{"failure", func(context.Context, *Op) error { return errors.New("unpack image: disk full") }, api.Failure, "unpack image: disk full"},
		{"context cancelled from elsewhere", func(context.Context, *Op) error {
			return fmt.Errorf("download: %w", context.Canceled)
		}, api.Cancelled, "download: context canceled"},
		{"cancelled kind", func(context.Context, *Op) error {
			return fmt.Errorf("stop c1: %w", errdefs.ErrCancelled)
		}, api.Cancelled, "stop c1: cancelled"},
		{"own deadline is a failure", func(context.Context, *Op) error {
			return fmt.Errorf("wait for agent: %w", context.DeadlineExceeded)
		}, api.Failure, "wait for agent: context deadline exceeded"},
		{"panic", func(context.Context, *Op) error { panic("nil map") }, api.Failure, "internal error: operation panicked: nil map"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			quietDefaultLogger(t) // the panic case logs its stack
			r, rec := newTestRegistry(t)
			op := r.Start(Spec{Run: tt.run})
			got := waitFinal(t, r, op.ID())
			if got.StatusCode != tt.status || got.Status != tt.status.String() || got.Err != tt.wantErr {
				t.Errorf("got %v %q, want %v %q", got.StatusCode, got.Err, tt.status, tt.wantErr)
			}
			select {
			case <-op.Done():
			default:
				t.Error("Done not closed")
			}
			// Events for each transition, the last one carrying the result.
			want := []api.StatusCode{api.Pending, api.Running, tt.status}
			if diff := cmp.Diff(want, rec.statuses(op.ID())); diff != "" {
				t.Errorf("event statuses (-want +got):\n%s", diff)
			}
			evs := rec.of(op.ID())
			if last := evs[len(evs)-1]; last.Err != tt.wantErr {
				t.Errorf("final event err %q", last.Err)
			}
		})
	}
}

// quietDefaultLogger discards slog's default output for the test's duration.
func quietDefaultLogger(t *testing.T) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { slog.SetDefault(prev) })
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name       string
		cancelable bool
		// honour: once cancelled, Run returns ctx.Err(); otherwise it
		// finishes its work and returns nil.
		honour     bool
		wantErr    error
		wantFinal  api.StatusCode
		wantEvents []api.StatusCode
	}{
		{"cancelable", true, true, nil, api.Cancelled,
			[]api.StatusCode{api.Pending, api.Running, api.Cancelling, api.Cancelled}},
		{"cancelable but completes anyway", true, false, nil, api.Success,
			[]api.StatusCode{api.Pending, api.Running, api.Cancelling, api.Success}},
		{"not cancelable", false, true, errdefs.ErrConflict, api.Success,
			[]api.StatusCode{api.Pending, api.Running, api.Success}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, rec := newTestRegistry(t)
			started, finish := make(chan struct{}), make(chan struct{})
			op := r.Start(Spec{
				Cancelable: tt.cancelable,
				Run: func(ctx context.Context, op *Op) error {
					close(started)
					select {
					case <-ctx.Done():
						// Stay in Cancelling until the test has looked.
						<-finish
						if tt.honour {
							return ctx.Err()
						}
					case <-finish:
					}
					return nil
				},
			})
			<-started
			err := r.Cancel(op.ID())
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Cancel = %v, want %v", err, tt.wantErr)
			}
			if err != nil && err.Error() != "operation cannot be cancelled" {
				t.Errorf("Cancel message %q", err)
			}
			if err == nil {
				// Cancelling until Run returns; a second Cancel is harmless.
				if s := op.Snapshot(); s.StatusCode != api.Cancelling || s.MayCancel {
					t.Errorf("after Cancel: %v may_cancel=%v", s.StatusCode, s.MayCancel)
				}
				if err := r.Cancel(op.ID()); err != nil {
					t.Errorf("second Cancel: %v", err)
				}
			}
			close(finish)
			got := waitFinal(t, r, op.ID())
			if got.StatusCode != tt.wantFinal {
				t.Errorf("final %v, want %v", got.StatusCode, tt.wantFinal)
			}
			if diff := cmp.Diff(tt.wantEvents, rec.statuses(op.ID())); diff != "" {
				t.Errorf("event statuses (-want +got):\n%s", diff)
			}
			// Finished: cancelling now is a conflict, whatever the kind.
			if err := r.Cancel(op.ID()); !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("Cancel after finish = %v", err)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	r, _ := newTestRegistry(t)
	const id = "3f1e-missing"
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, errdefs.ErrNotFound) || err.Error() != `operation "3f1e-missing" not found` {
			t.Errorf("%s: %v", what, err)
		}
	}
	_, err := r.Get(id)
	check("Get", err)
	_, err = r.Wait(context.Background(), id, time.Second)
	check("Wait", err)
	check("Cancel", r.Cancel(id))
	if l := r.List(); l == nil || len(l) != 0 {
		t.Errorf("List = %#v, want empty non-nil", l)
	}
}

func TestWait(t *testing.T) {
	r, _ := newTestRegistry(t)
	release := make(chan struct{})
	op := r.Start(Spec{Run: func(ctx context.Context, op *Op) error { <-release; return nil }})

	t.Run("timeout returns current state", func(t *testing.T) {
		start := time.Now()
		got, err := r.Wait(context.Background(), op.ID(), 50*time.Millisecond)
		if err != nil || got.StatusCode != api.Running {
			t.Errorf("Wait = %v, %v; want Running, nil", got.StatusCode, err)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("returned after %v", d)
		}
	})
	t.Run("zero timeout returns at once", func(t *testing.T) {
		got, err := r.Wait(context.Background(), op.ID(), 0)
		if err != nil || got.StatusCode != api.Running {
			t.Errorf("Wait = %v, %v", got.StatusCode, err)
		}
	})
	t.Run("context ends first", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		got, err := r.Wait(ctx, op.ID(), -1)
		if !errors.Is(err, context.DeadlineExceeded) || got.StatusCode != api.Running {
			t.Errorf("Wait = %v, %v", got.StatusCode, err)
		}
	})
	t.Run("wakes on completion", func(t *testing.T) {
		type result struct {
			op  api.Operation
			err error
		}
		res := make(chan result)
		for range 3 {
			go func() {
				got, err := r.Wait(context.Background(), op.ID(), time.Minute)
				res <- result{got, err}
			}()
		}
		time.Sleep(10 * time.Millisecond)
		close(release)
		for range 3 {
			select {
			case got := <-res:
				if got.err != nil || got.op.StatusCode != api.Success {
					t.Errorf("Wait = %v, %v", got.op.StatusCode, got.err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("waiter not woken")
			}
		}
	})
	t.Run("after completion returns immediately", func(t *testing.T) {
		start := time.Now()
		got, err := r.Wait(context.Background(), op.ID(), time.Minute)
		if err != nil || got.StatusCode != api.Success {
			t.Errorf("Wait = %v, %v", got.StatusCode, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %v", d)
		}
	})
}

func TestList(t *testing.T) {
	r, _ := newTestRegistry(t)
	var ids []string
	for i := range 5 {
		op := r.Start(Spec{Description: fmt.Sprint(i), Run: func(context.Context, *Op) error { return nil }})
		ids = append(ids, op.ID())
	}
	var got []string
	for _, op := range r.List() {
		got = append(got, op.ID)
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("List order (-want +got):\n%s", diff)
	}
}

// clock is a settable clock safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestRetention(t *testing.T) {
	const retention = time.Minute
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	r := newRegistry(nil, retention, c.now) // nil hub: nobody listens
	defer r.Close()

	done := r.Start(Spec{Run: func(context.Context, *Op) error { return nil }})
	<-done.Done()
	release := make(chan struct{})
	defer close(release)
	running := r.Start(Spec{Run: func(context.Context, *Op) error { <-release; return nil }})

	c.advance(retention - time.Nanosecond)
	r.prune()
	if _, err := r.Get(done.ID()); err != nil {
		t.Fatalf("finished op gone before its retention: %v", err)
	}
	if n := len(r.List()); n != 2 {
		t.Fatalf("List has %d ops", n)
	}

	c.advance(time.Nanosecond)
	// Hidden at once, before any sweep.
	if _, err := r.Get(done.ID()); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after retention: %v", err)
	}
	if _, err := r.Wait(context.Background(), done.ID(), 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Wait after retention: %v", err)
	}
	if l := r.List(); len(l) != 1 || l[0].ID != running.ID() {
		t.Errorf("List after retention: %+v", l)
	}
	r.prune()
	r.mu.RLock()
	_, kept := r.ops[done.ID()]
	n := len(r.ops)
	r.mu.RUnlock()
	if kept || n != 1 {
		t.Errorf("prune kept the expired op (kept=%v, %d ops)", kept, n)
	}

	// Running operations are never pruned, however old.
	c.advance(100 * retention)
	r.prune()
	if _, err := r.Get(running.ID()); err != nil {
		t.Errorf("running op pruned: %v", err)
	}
}

// The janitor sweeps on its own with a real clock.
func TestJanitor(t *testing.T) {
	r := New(nil, 30*time.Millisecond)
	defer r.Close()
	op := r.Start(Spec{Run: func(context.Context, *Op) error { return nil }})
	<-op.Done()
	if _, err := r.Get(op.ID()); err != nil {
		t.Fatalf("gone at once: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.RLock()
		n := len(r.ops)
		r.mu.RUnlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("janitor never pruned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.Close() // idempotent
}

func TestMetadata(t *testing.T) {
	r, rec := newTestRegistry(t)
	step, finish := make(chan struct{}), make(chan struct{})
	input := map[string]any{"return": 0, "fds": map[string]any{"0": "secret0"}}
	op := r.Start(Spec{
		Metadata: map[string]any{"command": []any{"sh", "-c", "true"}},
		Run: func(ctx context.Context, op *Op) error {
			if err := op.SetMetadata(input); err != nil {
				return err
			}
			close(step)
			<-finish
			return nil
		},
	})
	<-step
	// The caller may reuse its map; the op kept a copy.
	input["return"] = 99
	input["fds"].(map[string]any)["0"] = "changed"

	want := map[string]any{"command": []any{"sh", "-c", "true"}, "return": 0, "fds": map[string]any{"0": "secret0"}}
	got := op.Snapshot()
	if diff := cmp.Diff(want, got.Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	// Snapshots are copies too.
	got.Metadata["fds"].(map[string]any)["0"] = "scribbled"
	got.Metadata["command"].([]any)[0] = "scribbled"
	if diff := cmp.Diff(want, op.Snapshot().Metadata); diff != "" {
		t.Errorf("metadata after modifying a snapshot (-want +got):\n%s", diff)
	}
	// The update was published, with the merged metadata.
	evs := rec.of(op.ID())
	if last := evs[len(evs)-1]; last.StatusCode != api.Running || !cmp.Equal(want, last.Metadata) {
		t.Errorf("update event %v %v", last.StatusCode, last.Metadata)
	}

	close(finish)
	waitFinal(t, r, op.ID())
	if err := op.SetMetadata(map[string]any{"late": true}); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("SetMetadata after finish = %v", err)
	}
	if _, ok := op.Snapshot().Metadata["late"]; ok {
		t.Error("metadata changed after finish")
	}
}

// Progress updates racing readers that keep and modify their snapshots:
// meaningful under -race.
func TestMetadataConcurrent(t *testing.T) {
	r, rec := newTestRegistry(t)
	const updates = 500
	op := r.Start(Spec{
		Cancelable: true,
		Run: func(ctx context.Context, op *Op) error {
			for i := range updates {
				if err := op.SetMetadata(map[string]any{"progress": i, "detail": map[string]any{"i": i}}); err != nil {
					return err
				}
			}
			return nil
		},
	})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				s, err := r.Get(op.ID())
				if err != nil {
					t.Error(err)
					return
				}
				if d, ok := s.Metadata["detail"].(map[string]any); ok {
					d["i"] = -1 // must not reach the op
				}
				r.List()
				if _, err := json.Marshal(s); err != nil {
					t.Error(err)
				}
				if s.StatusCode.IsFinal() {
					return
				}
			}
		})
	}
	wg.Wait()
	final := waitFinal(t, r, op.ID())
	if final.Metadata["progress"] != updates-1 || final.Metadata["detail"].(map[string]any)["i"] != updates-1 {
		t.Errorf("final metadata %v", final.Metadata)
	}
	// Pending, Running, one per update, Success; progress never goes back.
	evs := rec.of(op.ID())
	if len(evs) != updates+3 {
		t.Fatalf("%d events, want %d", len(evs), updates+3)
	}
	for i, e := range evs[2 : 2+updates] {
		if e.Metadata["progress"] != i {
			t.Fatalf("update event %d has progress %v", i, e.Metadata["progress"])
		}
	}
}

// The event hub is a Publisher, and subscribers see each transition as an
// "operation" event carrying the api.Operation.
func TestWithEventHub(t *testing.T) {
	hub := event.New(100, "")
	sub, err := hub.Subscribe([]string{api.EventTypeOperation}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	r := New(hub, 0)
	defer r.Close()
	op := r.Start(Spec{Run: func(ctx context.Context, op *Op) error {
		return op.SetMetadata(map[string]any{"progress": "50%"})
	}})
	waitFinal(t, r, op.ID())

	var got []string
	for range 4 {
		ev := <-sub.C()
		var o api.Operation
		if err := json.Unmarshal(ev.Metadata, &o); err != nil {
			t.Fatal(err)
		}
		if o.ID != op.ID() || o.Location != "none" {
			t.Errorf("event for %q at %q", o.ID, o.Location)
		}
		got = append(got, fmt.Sprintf("%s %v", o.Status, o.Metadata["progress"]))
	}
	want := []string{"Pending <nil>", "Running <nil>", "Running 50%", "Success 50%"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestStartNilRunPanics(t *testing.T) {
	r, _ := newTestRegistry(t)
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	r.Start(Spec{})
}
