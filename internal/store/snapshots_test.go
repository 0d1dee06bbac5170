package store_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

func TestInstanceSnapshots(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	in := newInstance("c1")
	wantKind(t, s.CreateInstance(ctx, &in), nil, "")
	other := newInstance("c2")
	wantKind(t, s.CreateInstance(ctx, &other), nil, "")
	snap := func(inst int64, name string) store.InstanceSnapshot {
		return store.InstanceSnapshot{InstanceID: inst, Name: name, Config: map[string]string{"limits.cpu": "2"},
			Devices:  map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}},
			Profiles: []string{"default"}, CreatedAt: ts(3), ExpiresAt: ts(9), Stateful: true}
	}
	tests := []struct {
		name string
		sn   store.InstanceSnapshot
		kind error
	}{
		{"first", snap(in.ID, "snap0"), nil},
		{"same name on another instance", snap(other.ID, "snap0"), nil},
		{"same name twice", snap(in.ID, "snap0"), errdefs.ErrConflict},
		{"slash", snap(in.ID, "a/b"), errdefs.ErrInvalidArgument},
		{"empty", snap(in.ID, ""), errdefs.ErrInvalidArgument},
		{"no expiry", store.InstanceSnapshot{InstanceID: in.ID, Name: "snap1", CreatedAt: ts(4)}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sn := tc.sn
			wantKind(t, s.CreateInstanceSnapshot(ctx, &sn), tc.kind, "")
		})
	}
	got, err := s.GetInstanceSnapshot(ctx, in.ID, "snap0")
	wantKind(t, err, nil, "")
	want := snap(in.ID, "snap0")
	want.ID = got.ID
	if diff := cmp.Diff(want, got, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Fatalf("snapshot (-want +got):\n%s", diff)
	}
	list, err := s.ListInstanceSnapshots(ctx, in.ID)
	wantKind(t, err, nil, "")
	if len(list) != 2 || list[0].Name != "snap0" || list[1].Name != "snap1" || !list[1].ExpiresAt.IsZero() || list[1].Profiles == nil {
		t.Fatalf("snapshots of c1: %+v", list)
	}
	got.Name, got.Description = "snap1", "taken"
	wantKind(t, s.UpdateInstanceSnapshot(ctx, got), errdefs.ErrConflict, "")
	got.Name = "renamed"
	wantKind(t, s.UpdateInstanceSnapshot(ctx, got), nil, "")
	_, err = s.GetInstanceSnapshot(ctx, in.ID, "snap0")
	wantKind(t, err, errdefs.ErrNotFound, "")
	wantKind(t, s.DeleteInstanceSnapshot(ctx, got.ID), nil, "")
	wantKind(t, s.DeleteInstanceSnapshot(ctx, got.ID), nil, "")
	// Deleting the instance takes its snapshot records with it.
	wantKind(t, s.DeleteInstance(ctx, in.ID), nil, "")
	all, err := s.ListInstanceSnapshots(ctx, 0)
	wantKind(t, err, nil, "")
	if len(all) != 1 || all[0].InstanceID != other.ID {
		t.Fatalf("snapshots left: %+v", all)
	}
}

func TestVolumeSnapshots(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	wantKind(t, s.CreateStoragePool(ctx, &store.StoragePool{Name: "a", Driver: "dir", State: "created"}), nil, "")
	parent := store.StorageVolume{Pool: "a", Type: "custom", Name: "v", DiskName: "v", Content: "filesystem", State: "created"}
	wantKind(t, s.CreateStorageVolume(ctx, &parent), nil, "")
	for i, name := range []string{"v/s0", "v/s1"} {
		sn := store.StorageVolume{Pool: "a", Type: "custom", Name: name, DiskName: "v@" + name[2:], Content: "filesystem",
			ParentID: parent.ID, CreatedAt: ts(i + 1), State: "created"}
		if i == 0 {
			sn.ExpiresAt = ts(5)
		}
		wantKind(t, s.CreateStorageVolume(ctx, &sn), nil, "")
	}
	dup := store.StorageVolume{Pool: "a", Type: "custom", Name: "v/s0", DiskName: "v@x", Content: "filesystem", ParentID: parent.ID}
	wantKind(t, s.CreateStorageVolume(ctx, &dup), errdefs.ErrConflict, "")
	snaps, err := s.ListVolumeSnapshots(ctx, parent.ID)
	wantKind(t, err, nil, "")
	if len(snaps) != 2 || snaps[0].Name != "v/s0" || snaps[0].ParentID != parent.ID || !snaps[0].ExpiresAt.Equal(ts(5)) || !snaps[1].ExpiresAt.IsZero() {
		t.Fatalf("snapshots %+v", snaps)
	}
	// A parent with snapshots cannot go first.
	if err := s.DeleteStorageVolume(ctx, parent.ID); err == nil {
		t.Fatal("deleted a volume that has snapshots")
	}
	parent.Name = "w"
	wantKind(t, s.UpdateStorageVolume(ctx, parent), nil, "")
	wantKind(t, s.RenameVolumeSnapshots(ctx, parent.ID, "w"), nil, "")
	if _, err := s.GetStorageVolume(ctx, "a", "default", "custom", "w/s1"); err != nil {
		t.Fatalf("renamed snapshot: %v", err)
	}
}
