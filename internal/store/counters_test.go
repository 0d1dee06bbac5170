package store_test

import (
	"context"
	"math"
	"testing"
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
