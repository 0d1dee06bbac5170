package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

func TestInstanceBackups(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	in := newInstance("c1")
	wantKind(t, s.CreateInstance(ctx, &in), nil, "")
	other := newInstance("c2")
	wantKind(t, s.CreateInstance(ctx, &other), nil, "")
	backup := func(inst int64, name string) store.InstanceBackup {
		return store.InstanceBackup{InstanceID: inst, Name: name, CreatedAt: ts(3), ExpiresAt: ts(9),
			InstanceOnly: true, OptimizedStorage: true, Compression: "zstd"}
	}
	tests := []struct {
		name string
		b    store.InstanceBackup
		kind error
	}{
		{"first", backup(in.ID, "backup0"), nil},
		{"same name on another instance", backup(other.ID, "backup0"), nil},
		{"same name twice", backup(in.ID, "backup0"), errdefs.ErrConflict},
		{"slash", backup(in.ID, "a/b"), errdefs.ErrInvalidArgument},
		{"empty", backup(in.ID, ""), errdefs.ErrInvalidArgument},
		{"bad state", store.InstanceBackup{InstanceID: in.ID, Name: "x", CreatedAt: ts(4), State: "half"}, errdefs.ErrInvalidArgument},
		{"no such instance", backup(in.ID+100, "b"), errdefs.ErrNotFound},
		{"no expiry", store.InstanceBackup{InstanceID: in.ID, Name: "backup1", CreatedAt: ts(4), State: "created"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			wantKind(t, s.CreateInstanceBackup(ctx, &b), tc.kind, "")
			if tc.kind == nil && b.ID == 0 {
				t.Fatal("no id set")
			}
		})
	}
	got, err := s.GetInstanceBackup(ctx, in.ID, "backup0")
	wantKind(t, err, nil, "")
	want := backup(in.ID, "backup0")
	want.ID, want.State = got.ID, "pending"
	if diff := cmp.Diff(want, got, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Fatalf("backup (-want +got):\n%s", diff)
	}
	list, err := s.ListInstanceBackups(ctx, in.ID)
	wantKind(t, err, nil, "")
	if len(list) != 2 || list[0].Name != "backup0" || list[1].Name != "backup1" || !list[1].ExpiresAt.IsZero() || list[1].State != "created" {
		t.Fatalf("backups of c1: %+v", list)
	}
	got.Name = "backup1"
	wantKind(t, s.UpdateInstanceBackup(ctx, got), errdefs.ErrConflict, "")
	got.Name, got.State = "renamed", "created"
	wantKind(t, s.UpdateInstanceBackup(ctx, got), nil, "")
	got.State = "gone"
	wantKind(t, s.UpdateInstanceBackup(ctx, got), errdefs.ErrInvalidArgument, "")
	_, err = s.GetInstanceBackup(ctx, in.ID, "backup0")
	wantKind(t, err, errdefs.ErrNotFound, "")
	if r, err := s.GetInstanceBackup(ctx, in.ID, "renamed"); err != nil || r.State != "created" {
		t.Fatalf("renamed backup: %+v, %v", r, err)
	}
	missing := got
	missing.ID += 1000
	wantKind(t, s.UpdateInstanceBackup(ctx, missing), errdefs.ErrNotFound, "")
	wantKind(t, s.DeleteInstanceBackup(ctx, got.ID), nil, "")
	wantKind(t, s.DeleteInstanceBackup(ctx, got.ID), nil, "")
	// Deleting the instance takes its backup records with it.
	wantKind(t, s.DeleteInstance(ctx, in.ID), nil, "")
	all, err := s.ListInstanceBackups(ctx, 0)
	wantKind(t, err, nil, "")
	if len(all) != 1 || all[0].InstanceID != other.ID {
		t.Fatalf("backups left: %+v", all)
	}
}
