package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// recv returns the next event or fails the test after a second.
func recv(t *testing.T, s *Subscription) Event {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription closed: %v", s.Err())
		}
		return ev
	case <-time.After(time.Second):
		t.Fatal("no event within 1s")
	}
	return Event{}
}

// expectNone fails if an event is already waiting.
func expectNone(t *testing.T, s *Subscription) {
	t.Helper()
	select {
	case ev := <-s.C():
		t.Fatalf("unexpected event %d (%s)", ev.Sequence, ev.Type)
	default:
	}
}

func TestPublishFields(t *testing.T) {
	tests := []struct {
		name     string
		location string
		want     string
	}{
		{"standalone", "", "none"},
		{"clustered", "node1", "node1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(16, tt.location)
			before := time.Now()
			ev := h.Lifecycle("instance-started", Entity{Kind: EntityInstance, Name: "c1"}, map[string]any{"n": 1})
			if ev.Sequence != 1 || ev.Type != api.EventTypeLifecycle || ev.Location != tt.want {
				t.Errorf("event = %+v", ev)
			}
			if ev.Timestamp.Location() != time.UTC || ev.Timestamp.Before(before.Add(-time.Second)) {
				t.Errorf("timestamp %v not UTC now", ev.Timestamp)
			}
			want := &Lifecycle{Action: "instance-started", Entity: Entity{Kind: EntityInstance, Name: "c1"}, Context: json.RawMessage(`{"n":1}`)}
			if diff := cmp.Diff(want, ev.Lifecycle); diff != "" {
				t.Errorf("lifecycle (-want +got):\n%s", diff)
			}
			if ev.Metadata != nil {
				t.Errorf("a lifecycle event has metadata %s", ev.Metadata)
			}
		})
	}
}

func TestPublishMetadataEncoding(t *testing.T) {
	h := New(16, "")
	tests := []struct {
		name string
		md   any
		want string
	}{
		{"raw passes through", json.RawMessage(`{"a":1}`), `{"a":1}`},
		{"nil", nil, `null`},
		{"logging without context", api.EventLogging{Message: "m", Level: "info"}, `{"message":"m","level":"info","context":null}`},
		{"unmarshallable", make(chan int), `{"error":"marshal event metadata: json: unsupported type: chan int"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(h.Publish("x", tt.md).Metadata); got != tt.want {
				t.Errorf("metadata %s, want %s", got, tt.want)
			}
		})
	}
	if got := string(h.Logging("info", "m", nil).Metadata); got != `{"message":"m","level":"info","context":{}}` {
		t.Errorf("Logging with nil context: %s", got)
	}
}

func TestSequenceMonotonic(t *testing.T) {
	h := New(8, "") // smaller than the count: wrapping must not matter
	for i := uint64(1); i <= 100; i++ {
		if ev := h.Publish("x", i); ev.Sequence != i {
			t.Fatalf("event %d has sequence %d", i, ev.Sequence)
		}
	}
}

func TestSubscribeSince(t *testing.T) {
	const ring = 40
	tests := []struct {
		name      string
		published int
		since     uint64
		want      []uint64 // replayed sequences, in order
		wantErr   bool
	}{
		{"live only", 50, 0, nil, false},
		{"nothing published yet", 0, 5, nil, true},
		{"since at latest", 50, 50, nil, false},
		{"since beyond latest (daemon restarted)", 50, 70, nil, true},
		{"tail", 50, 45, seqs(46, 50), false},
		{"oldest retained is next", 50, 10, seqs(11, 50), false},
		{"one too old", 50, 9, nil, true},
		{"far too old", 50, 1, nil, true},
		{"ring not yet full", 30, 1, seqs(2, 30), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(ring, "")
			for i := range tt.published {
				h.Publish("x", i)
			}
			s, err := h.Subscribe(nil, tt.since)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid-argument kind", err)
				}
				want := fmt.Sprintf("events before sequence %d are no longer retained (oldest is 11)", tt.since+1)
				if tt.since > uint64(tt.published) {
					want = fmt.Sprintf("sequence %d is beyond the latest event (%d): the daemon restarted and earlier events are gone; reconnect without since", tt.since, tt.published)
				}
				if err.Error() != want {
					t.Errorf("err = %q, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var got []uint64
			for range tt.want {
				got = append(got, recv(t, s).Sequence)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("replay (-want +got):\n%s", diff)
			}
			expectNone(t, s)
			// The first live event follows the replay without a gap.
			live := h.Publish("x", "live")
			if ev := recv(t, s); ev.Sequence != live.Sequence {
				t.Errorf("first live event %d, want %d", ev.Sequence, live.Sequence)
			}
		})
	}
}

// The brief's scenario: publish 50, subscribe since 20 → 21..50 then 51.
func TestReplayThenLive(t *testing.T) {
	h := New(DefaultRingSize, "")
	for i := range 50 {
		h.Publish(api.EventTypeLifecycle, i)
	}
	s, err := h.Subscribe(nil, 20)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.C()); n != 30 {
		t.Errorf("%d events replayed, want 30", n)
	}
	h.Publish(api.EventTypeLifecycle, 50)
	for want := uint64(21); want <= 51; want++ {
		if ev := recv(t, s); ev.Sequence != want {
			t.Fatalf("got sequence %d, want %d", ev.Sequence, want)
		}
	}
	expectNone(t, s)
}

// Replay and live must join with no gap and no duplicate even while
// publishers are running.
func TestReplaySeamUnderConcurrentPublish(t *testing.T) {
	const publishers, each = 4, 200 // a round stays within one live buffer
	h := New(DefaultRingSize, "")
	for range 300 {
		h.Publish("x", nil)
	}
	for range 50 {
		var wg sync.WaitGroup
		for range publishers {
			wg.Go(func() {
				for range each {
					h.Publish("x", nil)
				}
			})
		}
		// Subscribe while they publish; since is well inside the ring.
		since := h.Publish("x", nil).Sequence - 200
		s, err := h.Subscribe(nil, since)
		if err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		last := h.Publish("x", nil).Sequence
		for want := since + 1; want <= last; want++ {
			if ev := recv(t, s); ev.Sequence != want {
				t.Fatalf("got %d, want %d", ev.Sequence, want)
			}
		}
		expectNone(t, s)
		s.Close()
	}
}

func TestTypeFilter(t *testing.T) {
	tests := []struct {
		name  string
		types []string
		since uint64
		want  []string // "type:seq"
	}{
		{"all", nil, 0, []string{"lifecycle:4", "operation:5", "logging:6"}},
		{"empty slice is all", []string{}, 0, []string{"lifecycle:4", "operation:5", "logging:6"}},
		{"one", []string{"operation"}, 0, []string{"operation:5"}},
		{"two", []string{"lifecycle", "logging"}, 0, []string{"lifecycle:4", "logging:6"}},
		{"replay filtered too", []string{"operation"}, 1, []string{"operation:2", "operation:5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(16, "")
			h.Publish("lifecycle", nil)
			h.Publish("operation", nil)
			h.Publish("logging", nil)
			s, err := h.Subscribe(tt.types, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			h.Publish("lifecycle", nil)
			h.Publish("operation", nil)
			h.Publish("logging", nil)
			var got []string
			for range tt.want {
				ev := recv(t, s)
				got = append(got, fmt.Sprintf("%s:%d", ev.Type, ev.Sequence))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			expectNone(t, s)
		})
	}
}

func TestSlowSubscriberDropped(t *testing.T) {
	h := New(DefaultRingSize, "")
	h.Publish("x", nil)
	slow, err := h.Subscribe(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := h.Subscribe(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	var fastLast atomic.Uint64
	fastGot := make(chan uint64)
	go func() {
		for ev := range fast.C() {
			fastLast.Store(ev.Sequence)
			if ev.Sequence == 1+3*SubscriberBuffer {
				break
			}
		}
		fastGot <- fastLast.Load()
	}()

	// Nobody reads slow: Publish must go on regardless. Publishing is paced
	// so that the reading subscriber keeps up even on a loaded test machine;
	// only the one that never reads overflows.
	published := make(chan struct{})
	go func() {
		for i := range 3 * SubscriberBuffer {
			if i > 0 && i%(SubscriberBuffer/4) == 0 {
				for fastLast.Load() < uint64(i+1) && fast.Err() == nil {
					time.Sleep(100 * time.Microsecond)
				}
			}
			h.Publish("x", nil)
		}
		close(published)
	}()
	select {
	case <-published:
	case <-time.After(10 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}

	select {
	case <-slow.Done():
	default:
		t.Fatal("slow subscriber still open")
	}
	if !errors.Is(slow.Err(), ErrTooSlow) || slow.Err().Error() != "too slow" {
		t.Errorf("Err = %v, want too slow", slow.Err())
	}
	// What was buffered is still delivered, in order, then the channel
	// closes: the client resumes from the last one it saw.
	var n int
	want := uint64(2)
	for ev := range slow.C() {
		if ev.Sequence != want {
			t.Fatalf("drained %d, want %d", ev.Sequence, want)
		}
		want++
		n++
	}
	if n != SubscriberBuffer {
		t.Errorf("drained %d events, want %d", n, SubscriberBuffer)
	}
	if got := <-fastGot; got != 1+3*SubscriberBuffer {
		t.Errorf("fast subscriber reached %d", got)
	}
	if fast.Err() != nil {
		t.Errorf("fast subscriber ended: %v", fast.Err())
	}
	// Resuming with since = last seen works.
	again, err := h.Subscribe(nil, want-1)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if ev := recv(t, again); ev.Sequence != want {
		t.Errorf("resumed at %d, want %d", ev.Sequence, want)
	}
}

func TestReplayDoesNotCountAgainstBuffer(t *testing.T) {
	h := New(DefaultRingSize, "")
	for range 5000 {
		h.Publish("x", nil)
	}
	s, err := h.Subscribe(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range SubscriberBuffer {
		h.Publish("x", nil)
	}
	if s.Err() != nil {
		t.Fatalf("dropped with a full replay plus a full live buffer: %v", s.Err())
	}
	h.Publish("x", nil)
	if !errors.Is(s.Err(), ErrTooSlow) {
		t.Fatalf("Err = %v after overflowing the live buffer", s.Err())
	}
}

func TestConcurrentPublishGapFree(t *testing.T) {
	const publishers, each = 8, 5000
	h := New(publishers*each, "")
	s, err := h.Subscribe(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make(chan []uint64)
	go func() {
		var seqs []uint64
		for ev := range s.C() {
			seqs = append(seqs, ev.Sequence)
			if len(seqs) == publishers*each {
				break
			}
		}
		got <- seqs
	}()
	var wg sync.WaitGroup
	returned := make([][]uint64, publishers)
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				returned[p] = append(returned[p], h.Publish("x", i).Sequence)
			}
		})
	}
	wg.Wait()

	seqs := <-got
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("delivered[%d] = %d, want %d", i, seq, i+1)
		}
	}
	seen := make([]bool, publishers*each+1)
	for _, r := range returned {
		for _, seq := range r {
			if seen[seq] {
				t.Fatalf("sequence %d returned twice", seq)
			}
			seen[seq] = true
		}
	}
	// A retained replay of everything is gap-free as well.
	all, err := h.Subscribe(nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	for want := uint64(2); want <= publishers*each; want++ {
		if ev := recv(t, all); ev.Sequence != want {
			t.Fatalf("replay %d, want %d", ev.Sequence, want)
		}
	}
}

func TestCloseSubscription(t *testing.T) {
	h := New(16, "")
	s, err := h.Subscribe([]string{api.EventTypeLogging}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !h.WantsLogging() {
		t.Error("WantsLogging false with a logging subscriber")
	}
	if s.Err() != nil {
		t.Errorf("Err = %v on a live subscription", s.Err())
	}
	s.Close()
	s.Close() // idempotent
	if !errors.Is(s.Err(), ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", s.Err())
	}
	if _, ok := <-s.C(); ok {
		t.Error("channel open after Close")
	}
	if h.WantsLogging() {
		t.Error("WantsLogging true after the only logging subscriber closed")
	}
	h.Publish(api.EventTypeLogging, nil) // must not send on the closed channel
}

func TestHubClose(t *testing.T) {
	h := New(16, "")
	var subs []*Subscription
	for range 3 {
		s, err := h.Subscribe(nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	h.Close()
	for _, s := range subs {
		<-s.Done()
		if !errors.Is(s.Err(), ErrHubClosed) {
			t.Errorf("Err = %v, want ErrHubClosed", s.Err())
		}
		s.Close() // no effect, no panic
		if !errors.Is(s.Err(), ErrHubClosed) {
			t.Errorf("Err changed to %v by a late Close", s.Err())
		}
	}
	if _, err := h.Subscribe(nil, 0); !errors.Is(err, ErrHubClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
	if ev := h.Publish("x", nil); ev.Sequence != 1 {
		t.Errorf("Publish after Close: sequence %d", ev.Sequence)
	}
}

func TestCloseRacesPublish(t *testing.T) {
	h := New(1024, "")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				h.Publish("x", nil)
			}
		}
	})
	for range 200 {
		s, err := h.Subscribe(nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		go s.Close()
		for range s.C() {
		}
	}
	close(stop)
	wg.Wait()
}

func seqs(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}
