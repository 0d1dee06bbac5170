package instance

import (
	"context"
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestCopy(t *testing.T) {
	s, _, db, _ := newTestService(t)
	ctx := context.Background()
	st := s.cfg.Storage.(*fakeStorage)
	req := imageReq("c1")
	req.Config = map[string]string{"user.note": "old"}
	if err := launch(t, s, req); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{Name: "s0"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Patch(ctx, "c1", Patch{Config: map[string]string{"user.note": "new"}}, nil); err != nil {
		t.Fatal(err)
	}
	src, _ := db.instanceByName("c1")
	tests := []struct {
		name      string
		source    Source
		typ       Type
		config    map[string]string
		kind      error
		wantNote  string
		wantSnaps int
	}{
		{"whole", Source{Type: SourceCopy, Instance: "c1"}, "", nil, nil, "new", 1},
		{"instance only", Source{Type: SourceCopy, Instance: "c1", InstanceOnly: true}, "", nil, nil, "new", 0},
		{"from a snapshot", Source{Type: SourceCopy, Instance: "c1/s0"}, "", nil, nil, "old", 0},
		// lxc sends the source's config back, volatile keys and all: the
		// copy keeps the request's user keys and drops the identity.
		{"echoed config", Source{Type: SourceCopy, Instance: "c1"}, "", map[string]string{"user.note": "mine", keyUUID: src.Config[keyUUID]}, nil, "mine", 1},
		{"missing source", Source{Type: SourceCopy, Instance: "nope"}, "", nil, errdefs.ErrNotFound, "", 0},
		{"missing snapshot", Source{Type: SourceCopy, Instance: "c1/nope"}, "", nil, errdefs.ErrNotFound, "", 0},
		{"no source", Source{Type: SourceCopy}, "", nil, errdefs.ErrInvalidArgument, "", 0},
		{"wrong type", Source{Type: SourceCopy, Instance: "c1"}, TypeVM, nil, errdefs.ErrInvalidArgument, "", 0},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "copy" + string(rune('a'+i))
			err := launch(t, s, CreateRequest{Name: name, Type: tc.typ, Source: tc.source, Config: tc.config})
			if !errors.Is(err, tc.kind) || (err != nil) != (tc.kind != nil) {
				t.Fatalf("err = %v, want %v", err, tc.kind)
			}
			if tc.kind != nil {
				if _, ok := db.instanceByName(name); ok {
					t.Fatal("a refused copy left a record")
				}
				return
			}
			got, _ := db.instanceByName(name)
			if got.Config["user.note"] != tc.wantNote {
				t.Errorf("user.note = %q, want %q", got.Config["user.note"], tc.wantNote)
			}
			if got.Config[keyUUID] == "" || got.Config[keyUUID] == src.Config[keyUUID] {
				t.Errorf("copy uuid %q, source's %q: want a new one", got.Config[keyUUID], src.Config[keyUUID])
			}
			if got.Config[keyBaseImage] != src.Config[keyBaseImage] {
				t.Errorf("base image not carried: %v", got.Config)
			}
			snaps, err := s.Snapshots(ctx, name)
			if err != nil || len(snaps) != tc.wantSnaps || len(st.snaps[got.ID]) != tc.wantSnaps {
				t.Errorf("snapshots %+v (roots %v), %v; want %d", snaps, st.snaps[got.ID], err, tc.wantSnaps)
			}
		})
	}
}

// TestCopyKilled: a daemon killed while a copy makes its root leaves a
// record marked as creating; the next daemon removes it, root and all,
// rather than give it a fresh root from its image.
func TestCopyKilled(t *testing.T) {
	s, _, db, _ := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	st := s.cfg.Storage.(*fakeStorage)
	var crashed *fakeDB
	c, err := s.Create(ctx, CreateRequest{Name: "c2", Source: Source{Type: SourceCopy, Instance: "c1"}})
	if err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	st.beforeCopy = func() { crashed = db.clone() }
	st.mu.Unlock()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if crashed == nil {
		t.Fatal("the crash point was never reached")
	}
	rec, ok := crashed.instanceByName("c2")
	if !ok || rec.Config[keyCreating] != SourceCopy {
		t.Fatalf("record at the crash: %+v (found %v)", rec.Config, ok)
	}
	s2 := New(Config{DB: crashed, Images: fakeImages{}, Storage: st, Drivers: s.cfg.Drivers, Events: &fakeEvents{}, Architecture: "x86_64"})
	if err := s2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(ctx, "c2"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("the unfinished copy survived the restart: %v", err)
	}
	if _, ok := crashed.instanceByName("c2"); ok {
		t.Error("its record is still stored")
	}
	st.mu.Lock()
	_, hasRoot := st.roots[rec.ID]
	st.mu.Unlock()
	if hasRoot {
		t.Error("its root is still there")
	}
	if _, err := s2.Get(ctx, "c1"); err != nil {
		t.Errorf("the source: %v", err)
	}
}
