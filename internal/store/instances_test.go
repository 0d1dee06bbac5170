package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/cuid"
	"github.com/hangar-dev/hangar/internal/errdefs"

	"github.com/hangar-dev/hangar/internal/store"
)

func newInstance(name string) store.Instance {
	return store.Instance{
		Name:         name,
		Type:         "container",
		Architecture: "x86_64",
		Description:  "test " + name,
		Config:       map[string]string{"limits.cpu": "2", "volatile.base_image": fp("ab")},
		Devices:      map[string]map[string]string{"root": {"type": "disk", "path": "/"}},
		Profiles:     []string{"default"},
		CreatedAt:    ts(1),
		LastUsedAt:   ts(2),
	}
}

func TestInstanceCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	if err := s.CreateProfile(ctx, &store.Profile{Name: "big"}); err != nil {
		t.Fatal(err)
	}

	c1 := newInstance("c1")
	c1.Profiles = []string{"big", "default"} // order is kept, not sorted
	if err := s.CreateInstance(ctx, &c1); err != nil {
		t.Fatalf("CreateInstance: %v", err)
	}
	if c1.ID == 0 {
		t.Fatal("CreateInstance did not set ID")
	}
	got, err := s.GetInstance(ctx, "c1")
	if err != nil {
		t.Fatalf("GetInstance: %v", err)
	}
	diff(t, "GetInstance", got, c1)
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt in %v, want UTC", got.CreatedAt.Location())
	}

	// A bare record reads back with non-nil maps: callers write into them.
	bare := store.Instance{Name: "bare", Type: "container"}
	if err := s.CreateInstance(ctx, &bare); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetInstance(ctx, "bare")
	if err != nil {
		t.Fatal(err)
	}
	if got.Config == nil || got.Devices == nil || got.Profiles == nil {
		t.Errorf("nil collections in %+v", got)
	}
	if !got.CreatedAt.IsZero() || !got.LastUsedAt.IsZero() {
		t.Errorf("zero times read back as %v, %v", got.CreatedAt, got.LastUsedAt)
	}

	// Update replaces the mutable fields, rename included; Type and
	// CreatedAt stay.
	up := c1
	up.Name = "c1-renamed"
	up.Type = "virtual-machine"
	up.CreatedAt = ts(50)
	up.Architecture = "aarch64"
	up.Description = "changed"
	up.Config = map[string]string{"user.x": "y"}
	up.Devices = nil
	up.Profiles = []string{"default", "big"}
	up.Ephemeral, up.Stateful = true, true
	up.LastUsedAt = ts(9)
	if err := s.UpdateInstance(ctx, up); err != nil {
		t.Fatalf("UpdateInstance: %v", err)
	}
	want := up
	want.Type, want.CreatedAt = c1.Type, c1.CreatedAt
	got, err = s.GetInstance(ctx, "c1-renamed")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "after update", got, want)
	_, err = s.GetInstance(ctx, "c1")
	wantKind(t, err, errNotFound, `instance "c1" not found`)

	list, err := s.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "bare" || list[1].Name != "c1-renamed" {
		t.Errorf("ListInstances = %+v, want bare, c1-renamed", list)
	}

	if err := s.DeleteInstance(ctx, up.ID); err != nil {
		t.Fatalf("DeleteInstance: %v", err)
	}
	_, err = s.GetInstance(ctx, "c1-renamed")
	wantKind(t, err, errNotFound, "")
	// Its profile links went with it, so "big" can go now.
	if err := s.DeleteProfile(ctx, "default", "big"); err != nil {
		t.Errorf("DeleteProfile after instance delete: %v", err)
	}
}

func TestInstanceErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	c1 := newInstance("c1")
	if err := s.CreateInstance(ctx, &c1); err != nil {
		t.Fatal(err)
	}
	c2 := newInstance("c2")
	if err := s.CreateInstance(ctx, &c2); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		op   func() error
		kind error
		msg  string
	}{
		{"get missing", func() error { _, err := s.GetInstance(ctx, "nope"); return err },
			errNotFound, `instance "nope" not found`},
		{"create duplicate", func() error { c := newInstance("c1"); return s.CreateInstance(ctx, &c) },
			errConflict, `instance "c1" already exists`},
		{"create empty name", func() error { c := newInstance(""); return s.CreateInstance(ctx, &c) },
			errInvalid, ""},
		{"create unknown profile", func() error {
			c := newInstance("c3")
			c.Profiles = []string{"default", "ghost"}
			return s.CreateInstance(ctx, &c)
		}, errNotFound, `profile "ghost" not found`},
		{"create profile twice", func() error {
			c := newInstance("c3")
			c.Profiles = []string{"default", "default"}
			return s.CreateInstance(ctx, &c)
		}, errInvalid, `profile "default" is listed more than once`},
		{"rename onto existing", func() error { c := c2; c.Name = "c1"; return s.UpdateInstance(ctx, c) },
			errConflict, `instance "c1" already exists`},
		{"update missing id", func() error { c := c1; c.ID = 999; return s.UpdateInstance(ctx, c) },
			errNotFound, `instance "c1" (id 999) not found`},
		{"update unknown profile", func() error {
			c := c1
			c.Profiles = []string{"ghost"}
			return s.UpdateInstance(ctx, c)
		}, errNotFound, `profile "ghost" not found`},
		{"delete missing", func() error { return s.DeleteInstance(ctx, 999) },
			errNotFound, `instance with id 999 not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantKind(t, tt.op(), tt.kind, tt.msg)
		})
	}

	// Failed creates left nothing behind (no instance row without its
	// profiles), and failed updates changed nothing.
	list, err := s.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "instances after failures", list, []store.Instance{c1, c2})
}

// IDs are the runtime ids of containers, so a deleted instance's ID must
// never be handed out again, not even the highest one.
func TestInstanceIDsNotReused(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(t)
	var ids []int64
	for _, name := range []string{"a", "b"} {
		c := newInstance(name)
		if err := s.CreateInstance(ctx, &c); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	if err := s.DeleteInstance(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	// Reopen too: the high-water mark is persistent, not in memory.
	s.Close()
	s2, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c := newInstance("c")
	if err := s2.CreateInstance(ctx, &c); err != nil {
		t.Fatal(err)
	}
	if c.ID <= ids[1] {
		t.Errorf("new ID %d reuses or precedes deleted ID %d", c.ID, ids[1])
	}
}

// CreateInstance gives each row an id (cuid's shape) unless handed one,
// refuses a malformed one, and two rows never share one.
func TestInstanceUID(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	a := newInstance("a")
	if err := s.CreateInstance(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if !cuid.Valid(a.UID) {
		t.Fatalf("CreateInstance set uid %q", a.UID)
	}
	for _, tc := range []struct {
		name, uid string
		wantErr   error
	}{
		{"given", "k000000000000000000000000"[:24], nil},
		{"bad", "1abc", errdefs.ErrInvalidArgument},
		{"dup", a.UID, errdefs.ErrConflict},
	} {
		in := newInstance(tc.name)
		in.UID = tc.uid
		err := s.CreateInstance(ctx, &in)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: CreateInstance with uid %q: %v, want %v", tc.name, tc.uid, err, tc.wantErr)
		}
		if tc.wantErr == nil && in.UID != tc.uid {
			t.Errorf("%s: uid %q, want %q", tc.name, in.UID, tc.uid)
		}
	}
}
