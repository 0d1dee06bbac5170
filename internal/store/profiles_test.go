package store_test

import (
	"context"
	"testing"

	"github.com/hangar-dev/hangar/internal/store"
)

func TestDefaultProfile(t *testing.T) {
	s, _ := openStore(t)
	got, err := s.GetProfile(context.Background(), "default", "default")
	if err != nil {
		t.Fatalf("GetProfile(default): %v", err)
	}
	want := store.Profile{ID: got.ID, Project: "default", Name: "default", Description: "Default Hangar profile"}
	diff(t, "default profile", got, want)
	if got.Config == nil || got.Devices == nil {
		t.Errorf("default profile has nil maps: %+v", got)
	}
}

func TestProfileCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)

	p := store.Profile{
		Name:        "web",
		Description: "web servers",
		Config:      map[string]string{"limits.memory": "1GiB"},
		Devices:     map[string]map[string]string{"eth0": {"type": "nic", "network": "br0"}},
	}
	if err := s.CreateProfile(ctx, &p); err != nil {
		t.Fatalf("CreateProfile: %v", err)
	}
	if p.ID == 0 {
		t.Fatal("CreateProfile did not set ID")
	}
	got, err := s.GetProfile(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetProfile", got, p)

	// An instance uses it; a rename must show in the instance's list.
	c := newInstance("c1")
	c.Profiles = []string{"default", "web"}
	if err := s.CreateInstance(ctx, &c); err != nil {
		t.Fatal(err)
	}
	p.Name = "www"
	p.Description = "renamed"
	p.Config = nil
	if err := s.UpdateProfile(ctx, p); err != nil {
		t.Fatalf("UpdateProfile: %v", err)
	}
	got, err = s.GetProfile(ctx, "default", "www")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "after update", got, p)
	inst, err := s.GetInstance(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "instance profiles after rename", inst.Profiles, []string{"default", "www"})

	list, err := s.ListProfiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list {
		names = append(names, p.Name)
	}
	diff(t, "ListProfiles names", names, []string{"default", "www"})

	// In use: refused, and nothing changed.
	wantKind(t, s.DeleteProfile(ctx, "default", "www"), errConflict, `profile "www" is in use by an instance`)
	if err := s.DeleteInstance(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProfile(ctx, "default", "www"); err != nil {
		t.Fatalf("DeleteProfile: %v", err)
	}
	_, err = s.GetProfile(ctx, "default", "www")
	wantKind(t, err, errNotFound, `profile "www" not found`)
}

func TestProfileErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	def, err := s.GetProfile(ctx, "default", "default")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		op   func() error
		kind error
		msg  string
	}{
		{"get missing", func() error { _, err := s.GetProfile(ctx, "default", "x"); return err },
			errNotFound, `profile "x" not found`},
		{"create duplicate", func() error { return s.CreateProfile(ctx, &store.Profile{Name: "default"}) },
			errConflict, `profile "default" already exists`},
		{"create empty name", func() error { return s.CreateProfile(ctx, &store.Profile{}) },
			errInvalid, ""},
		{"update missing", func() error { return s.UpdateProfile(ctx, store.Profile{ID: 99, Name: "x"}) },
			errNotFound, `profile "x" (id 99) not found`},
		{"rename onto existing", func() error {
			p := store.Profile{Name: "other"}
			if err := s.CreateProfile(ctx, &p); err != nil {
				return err
			}
			p.Name = "default"
			return s.UpdateProfile(ctx, p)
		}, errConflict, `profile "default" already exists`},
		{"delete missing", func() error { return s.DeleteProfile(ctx, "default", "x") },
			errNotFound, `profile "x" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantKind(t, tt.op(), tt.kind, tt.msg)
		})
	}
	got, err := s.GetProfile(ctx, "default", "default")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "default after failures", got, def)
}
