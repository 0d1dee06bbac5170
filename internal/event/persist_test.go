package event

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// fakeSeqStore is an in-memory SequenceStore counting its writes.
type fakeSeqStore struct {
	mu     sync.Mutex
	v      uint64
	evs    []Event
	writes int
	fail   error
}

func (f *fakeSeqStore) SaveEvents(_ context.Context, evs []Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.evs = append([]Event(nil), evs...)
	return nil
}

func (f *fakeSeqStore) TakeEvents(context.Context) ([]Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	evs := f.evs
	f.evs = nil
	return evs, nil
}

func (f *fakeSeqStore) LoadSequence(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v, nil
}

func (f *fakeSeqStore) SaveSequence(_ context.Context, v uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.v = v
	f.writes++
	return nil
}

func persisted(t *testing.T, st *fakeSeqStore, ring int, block uint64) *Hub {
	t.Helper()
	h := New(ring, "")
	if err := h.Persist(context.Background(), st, block); err != nil {
		t.Fatal(err)
	}
	return h
}

func publishN(h *Hub, n int) (last uint64) {
	for range n {
		last = h.Publish(api.EventTypeLifecycle, nil).Sequence
	}
	return last
}

func TestPersistAcrossRestart(t *testing.T) {
	tests := []struct {
		name      string
		events    int
		block     uint64
		clean     bool   // Save at shutdown
		wantNext  uint64 // the restarted hub's first sequence
		sinceOK   bool   // a client that saw every event resumes
		wantWrite int    // writes during the first run, its Persist included
	}{
		{"clean restart continues without a jump", 3, 4, true, 4, true, 2},
		{"crash jumps above every number sent", 6, 4, false, 9, false, 2},
		{"crash at a block's end", 4, 4, false, 5, true, 1},
		{"clean restart after many blocks", 10, 4, true, 11, true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeSeqStore{}
			h := persisted(t, st, 16, tt.block)
			last := publishN(h, tt.events)
			if last != uint64(tt.events) {
				t.Fatalf("first run's last sequence %d, want %d", last, tt.events)
			}
			if tt.clean {
				if err := h.Save(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if st.writes != tt.wantWrite {
				t.Errorf("%d writes, want %d", st.writes, tt.wantWrite)
			}
			h2 := persisted(t, st, 16, tt.block)
			sub, err := h2.Subscribe(nil, last)
			if tt.sinceOK != (err == nil) {
				t.Fatalf("resume since %d: %v, want ok %v", last, err, tt.sinceOK)
			}
			if err != nil {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "before the daemon restarted") {
					t.Fatalf("resume error %v does not say restart", err)
				}
				if sub, err = h2.Subscribe(nil, 0); err != nil {
					t.Fatal(err)
				}
			}
			defer sub.Close()
			if got := h2.Publish(api.EventTypeLifecycle, nil).Sequence; got != tt.wantNext {
				t.Fatalf("restarted hub's first sequence %d, want %d", got, tt.wantNext)
			}
			if ev := recv(t, sub); ev.Sequence != tt.wantNext {
				t.Fatalf("resumed subscription got %d, want %d", ev.Sequence, tt.wantNext)
			}
		})
	}
}

// A gap inside one run (the ring overflowed) and a restart are told apart.
func TestPersistGapVersusRestart(t *testing.T) {
	st := &fakeSeqStore{v: 100}
	h := persisted(t, st, 4, 8)
	publishN(h, 10) // 101..110; the ring keeps 107..110
	tests := []struct {
		since uint64
		want  string // "" = ok
	}{
		{99, "before the daemon restarted"},
		{100, "no longer retained"},
		{105, "no longer retained"},
		{106, ""},
		{110, ""},
		{111, "beyond the latest"},
	}
	for _, tt := range tests {
		sub, err := h.Subscribe(nil, tt.since)
		if tt.want == "" {
			if err != nil {
				t.Errorf("since %d: %v", tt.since, err)
				continue
			}
			sub.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("since %d: %v, want %q", tt.since, err, tt.want)
		}
	}
}

func TestPersistErrors(t *testing.T) {
	h := New(4, "")
	h.Publish(api.EventTypeLifecycle, nil)
	if err := h.Persist(context.Background(), &fakeSeqStore{}, 4); err == nil {
		t.Error("Persist after a Publish succeeded")
	}
	// A store that fails later: events still flow, Save says so.
	st := &fakeSeqStore{}
	h = persisted(t, st, 4, 2)
	st.fail = errors.New("disk full")
	if got := publishN(h, 5); got != 5 {
		t.Fatalf("last sequence %d with a failing store", got)
	}
	if err := h.Save(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Save: %v", err)
	}
	// A hub without persistence saves nothing and says nothing.
	if err := New(4, "").Save(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A clean shutdown keeps the retained events: a client that filtered by
// type (and so saw an older sequence than the last) replays across the
// restart. Events published after Save void them: the gap is reported.
func TestPersistReplaysAcrossCleanRestart(t *testing.T) {
	tests := []struct {
		name        string
		afterSave   int // events published after Save, before the "exit"
		since       uint64
		wantReplay  []uint64
		wantErrText string
	}{
		{"replay the previous run", 0, 2, []uint64{3, 4, 5}, ""},
		{"what the ring held is all kept", 0, 1, []uint64{2, 3, 4, 5}, ""},
		{"published after save", 1, 2, nil, "before the daemon restarted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeSeqStore{}
			h := persisted(t, st, 4, 8)
			publishN(h, 5)
			if err := h.Save(context.Background()); err != nil {
				t.Fatal(err)
			}
			publishN(h, tt.afterSave)
			h2 := persisted(t, st, 4, 8)
			sub, err := h2.Subscribe(nil, tt.since)
			if tt.wantErrText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErrText) {
					t.Fatalf("since %d: %v, want %q", tt.since, err, tt.wantErrText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			for _, want := range tt.wantReplay {
				if ev := recv(t, sub); ev.Sequence != want || ev.Type != api.EventTypeLifecycle {
					t.Fatalf("replayed %d (%s), want %d", ev.Sequence, ev.Type, want)
				}
			}
			if next := h2.Publish(api.EventTypeLifecycle, nil).Sequence; next != 6 {
				t.Fatalf("next sequence %d, want 6", next)
			}
			if ev := recv(t, sub); ev.Sequence != 6 {
				t.Fatalf("live event %d, want 6", ev.Sequence)
			}
		})
	}
}
