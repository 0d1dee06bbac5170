package store_test

import (
	"context"
	"math"
	"testing"

	"github.com/hangar-dev/hangar/internal/store"
)

func TestCounters(t *testing.T) {
	st, _ := openStore(t)
	ctx := context.Background()
	if v, err := st.Counter(ctx, "events"); err != nil || v != 0 {
		t.Fatalf("unset counter: %d, %v", v, err)
	}
	tests := []struct {
		name    string
		set     uint64
		wantErr bool
	}{
		{"first", 1024, false},
		{"overwrite", 7, false},
		{"large", math.MaxInt64, false},
		{"beyond SQLite", math.MaxInt64 + 1, true},
	}
	last := uint64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.SetCounter(ctx, "events", tt.set)
			if (err != nil) != tt.wantErr {
				t.Fatalf("set %d: %v", tt.set, err)
			}
			if err == nil {
				last = tt.set
			}
			if v, err := st.Counter(ctx, "events"); err != nil || v != last {
				t.Fatalf("counter %d, %v; want %d", v, err, last)
			}
		})
	}
	if v, _ := st.Counter(ctx, "other"); v != 0 {
		t.Fatalf("counters are not separate: %d", v)
	}
}

func TestKeptEvents(t *testing.T) {
	st, _ := openStore(t)
	ctx := context.Background()
	if got, err := st.TakeEvents(ctx); err != nil || len(got) != 0 {
		t.Fatalf("nothing kept: %v, %v", got, err)
	}
	evs := []store.StoredEvent{{Sequence: 7, Data: []byte(`{"a":1}`)}, {Sequence: 5, Data: []byte("x")}}
	if err := st.SaveEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// A second save replaces the first.
	if err := st.SaveEvents(ctx, evs[:1]); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveEvents(ctx, append(evs, store.StoredEvent{Sequence: 0})); err == nil {
		t.Fatal("sequence 0 was saved")
	}
	got, err := st.TakeEvents(ctx)
	if err != nil || len(got) != 1 || got[0].Sequence != 7 || string(got[0].Data) != `{"a":1}` {
		t.Fatalf("took %+v, %v", got, err)
	}
	if got, err := st.TakeEvents(ctx); err != nil || len(got) != 0 {
		t.Fatalf("taken twice: %v, %v", got, err)
	}
}
