package serverconfig

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// fakeDB keeps the config in memory.
type fakeDB struct{ cfg map[string]string }

func (f *fakeDB) GetServerConfig(context.Context) (map[string]string, error) {
	return maps.Clone(f.cfg), nil
}

func (f *fakeDB) SetServerConfig(_ context.Context, cfg map[string]string) error {
	f.cfg = maps.Clone(cfg)
	return nil
}

func TestUpdate(t *testing.T) {
	const key = ImagesRemoteCacheExpiry
	tests := []struct {
		name     string
		stored   map[string]string
		replace  bool
		cfg      map[string]any
		wantErr  string
		wantGet  map[string]string
		wantDays int64
	}{
		{name: "default", cfg: map[string]any{}, wantGet: map[string]string{}, wantDays: 10},
		{name: "set as string", cfg: map[string]any{key: "5"}, wantGet: map[string]string{key: "5"}, wantDays: 5},
		{name: "set as number", cfg: map[string]any{key: float64(30)}, wantGet: map[string]string{key: "30"}, wantDays: 30},
		{name: "zero keeps for ever", cfg: map[string]any{key: "0"}, wantGet: map[string]string{key: "0"}, wantDays: 0},
		{name: "empty unsets", stored: map[string]string{key: "3"}, cfg: map[string]any{key: ""}, wantGet: map[string]string{}, wantDays: 10},
		{name: "null unsets", stored: map[string]string{key: "3"}, cfg: map[string]any{key: nil}, wantGet: map[string]string{}, wantDays: 10},
		{name: "patch keeps others", stored: map[string]string{key: "3"}, cfg: map[string]any{}, wantGet: map[string]string{key: "3"}, wantDays: 3},
		{name: "put resets others", stored: map[string]string{key: "3"}, replace: true, cfg: map[string]any{}, wantGet: map[string]string{}, wantDays: 10},
		{name: "unknown stored key kept, hidden", stored: map[string]string{"core.future": "x"}, replace: true, cfg: map[string]any{key: "1"},
			wantGet: map[string]string{key: "1"}, wantDays: 1},
		{name: "negative", cfg: map[string]any{key: "-1"}, wantErr: `server config images.remote_cache_expiry: "-1" is not a whole number of 0 or more`},
		{name: "not a number", cfg: map[string]any{key: "ten"}, wantErr: `"ten" is not a whole number`},
		{name: "fraction", cfg: map[string]any{key: 1.5}, wantErr: `"1.5" is not a whole number`},
		{name: "object", cfg: map[string]any{key: map[string]any{}}, wantErr: "is not a string"},
		{name: "unknown key", cfg: map[string]any{"core.proxy_https": "http://proxy"}, wantErr: `unknown server config key "core.proxy_https"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := &fakeDB{cfg: maps.Clone(tc.stored)}
			if db.cfg == nil {
				db.cfg = map[string]string{}
			}
			s, err := New(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			before := maps.Clone(db.cfg)
			if tc.replace {
				err = s.Replace(context.Background(), tc.cfg)
			} else {
				err = s.Patch(context.Background(), tc.cfg)
			}
			if tc.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want invalid argument containing %q", err, tc.wantErr)
				}
				if !maps.Equal(before, db.cfg) {
					t.Errorf("stored config changed: %v", db.cfg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantGet, s.Get()); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}
			if got := s.ImagesRemoteCacheExpiryDays(); got != tc.wantDays {
				t.Errorf("expiry %d days, want %d", got, tc.wantDays)
			}
			// What is stored is what a restart loads.
			s2, _ := New(context.Background(), db)
			if diff := cmp.Diff(s.Get(), s2.Get()); diff != "" {
				t.Errorf("after reload (-before +after):\n%s", diff)
			}
			if tc.stored["core.future"] != "" && db.cfg["core.future"] != "x" {
				t.Errorf("unknown stored key dropped: %v", db.cfg)
			}
		})
	}
}

func TestMaxUnpackedSize(t *testing.T) {
	const key = ImagesMaxUnpackedSize
	tests := []struct {
		name    string
		stored  map[string]string
		value   any
		want    int64
		wantErr string
	}{
		{name: "unset is the store's default", value: nil, want: 0},
		{name: "binary unit", value: "10GiB", want: 10 << 30},
		{name: "decimal unit", value: "500MB", want: 500e6},
		{name: "bytes", value: "1048576", want: 1 << 20},
		{name: "bytes as a JSON number", value: float64(2 << 20), want: 2 << 20},
		{name: "B suffix", value: "3145728B", want: 3 << 20},
		{name: "empty unsets", stored: map[string]string{key: "1GiB"}, value: "", want: 0},
		{name: "largest", value: "8EiB", wantErr: "too large"},
		{name: "overflow", value: "99999999999999999999", wantErr: "too large"},
		{name: "below the minimum", value: "1KiB", wantErr: `server config images.max_unpacked_size: "1KiB" is below the minimum of 1MiB`},
		{name: "zero", value: "0", wantErr: "below the minimum"},
		{name: "negative", value: "-1GiB", wantErr: `server config images.max_unpacked_size: "-1GiB" is not a size`},
		{name: "fraction", value: "1.5GiB", wantErr: "is not a size"},
		{name: "unknown unit", value: "10GiBs", wantErr: "is not a size"},
		{name: "unit alone", value: "GiB", wantErr: "is not a size"},
		{name: "boolean", value: true, wantErr: `"true" is not a size`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := &fakeDB{cfg: maps.Clone(tc.stored)}
			if db.cfg == nil {
				db.cfg = map[string]string{}
			}
			s, err := New(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Patch(context.Background(), map[string]any{key: tc.value})
			if tc.wantErr != "" {
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), key) {
					t.Fatalf("error %v, want invalid argument naming %s and containing %q", err, key, tc.wantErr)
				}
				if _, ok := db.cfg[key]; ok {
					t.Errorf("bad value stored: %v", db.cfg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.ImagesMaxUnpackedSize(); got != tc.want {
				t.Errorf("ImagesMaxUnpackedSize() = %d, want %d", got, tc.want)
			}
		})
	}
	// A bad value stored by hand reads as unset, not as a tiny cap.
	s, err := New(context.Background(), &fakeDB{cfg: map[string]string{key: "lots"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ImagesMaxUnpackedSize(); got != 0 {
		t.Errorf("hand-stored bad value: %d, want 0 (default)", got)
	}
}
