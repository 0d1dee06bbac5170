package store_test

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// TestStoragePools: pools are created pending, updated, listed by name, and
// a pool with volumes cannot go.
func TestStoragePools(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	p := store.StoragePool{Name: "fast", Driver: "btrfs", Config: map[string]string{"size": "5GiB"}}
	wantKind(t, s.CreateStoragePool(ctx, &p), nil, "")
	if p.ID == 0 || p.State != "pending" {
		t.Fatalf("created pool %+v: want an id and state pending", p)
	}
	wantKind(t, s.CreateStoragePool(ctx, &store.StoragePool{Name: "fast", Driver: "dir"}), errdefs.ErrConflict, `storage pool "fast" already exists`)
	wantKind(t, s.CreateStoragePool(ctx, &store.StoragePool{Name: "", Driver: "dir"}), errdefs.ErrInvalidArgument, "")
	p.State, p.Config["source"] = "created", "/x"
	wantKind(t, s.UpdateStoragePool(ctx, p), nil, "")
	wantKind(t, s.CreateStoragePool(ctx, &store.StoragePool{Name: "default", Driver: "dir", State: "created"}), nil, "")
	got, err := s.ListStoragePools(ctx)
	wantKind(t, err, nil, "")
	names := []string{got[0].Name, got[1].Name}
	if diff := cmp.Diff([]string{"default", "fast"}, names); diff != "" {
		t.Fatalf("pools by name (-want +got):\n%s", diff)
	}
	one, err := s.GetStoragePool(ctx, "fast")
	wantKind(t, err, nil, "")
	if diff := cmp.Diff(p, one); diff != "" {
		t.Fatalf("pool (-want +got):\n%s", diff)
	}
	_, err = s.GetStoragePool(ctx, "nope")
	wantKind(t, err, errdefs.ErrNotFound, `storage pool "nope" not found`)

	v := store.StorageVolume{Pool: "fast", Type: "custom", Name: "v1", DiskName: "v1", Content: "filesystem"}
	wantKind(t, s.CreateStorageVolume(ctx, &v), nil, "")
	wantKind(t, s.DeleteStoragePool(ctx, "fast"), errdefs.ErrConflict, `storage pool "fast" still has volumes`)
	wantKind(t, s.DeleteStorageVolume(ctx, v.ID), nil, "")
	wantKind(t, s.DeleteStoragePool(ctx, "fast"), nil, "")
	wantKind(t, s.DeleteStoragePool(ctx, "fast"), errdefs.ErrNotFound, "")
}

// TestStorageVolumes: names are unique per pool and type except images
// (one volume per id map, told apart by disk name); an instance has one
// root volume; bad types and contents are refused by the schema.
func TestStorageVolumes(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		wantKind(t, s.CreateStoragePool(ctx, &store.StoragePool{Name: name, Driver: "dir", State: "created"}), nil, "")
	}
	addProjects(t, s)
	tests := []struct {
		name string
		v    store.StorageVolume
		kind error
	}{
		{"custom", store.StorageVolume{Pool: "a", Type: "custom", Name: "v", DiskName: "v", Content: "filesystem"}, nil},
		{"same name on another pool", store.StorageVolume{Pool: "b", Type: "custom", Name: "v", DiskName: "v", Content: "block"}, nil},
		{"same name twice", store.StorageVolume{Pool: "a", Type: "custom", Name: "v", DiskName: "v2", Content: "filesystem"}, errdefs.ErrConflict},
		{"same name in another project", store.StorageVolume{Pool: "a", Project: "p1", Type: "custom", Name: "v", DiskName: "p1_v", Content: "filesystem"}, nil},
		{"same name twice in that project", store.StorageVolume{Pool: "a", Project: "p1", Type: "custom", Name: "v", DiskName: "p1_v2", Content: "filesystem"}, errdefs.ErrConflict},
		{"project missing", store.StorageVolume{Pool: "a", Project: "nosuch", Type: "custom", Name: "w", DiskName: "nosuch_w", Content: "filesystem"}, errdefs.ErrNotFound},
		{"image unshifted", store.StorageVolume{Pool: "a", Type: "image", Name: fp("ab"), DiskName: fp("ab"), Content: "filesystem"}, nil},
		{"image shifted", store.StorageVolume{Pool: "a", Type: "image", Name: fp("ab"), DiskName: fp("ab") + "@1000000-65536", Content: "filesystem"}, nil},
		{"image for VMs", store.StorageVolume{Pool: "a", Type: "image", Name: fp("ab"), DiskName: fp("ab"), Content: "block"}, nil},
		{"image twice", store.StorageVolume{Pool: "a", Type: "image", Name: fp("ab"), DiskName: fp("ab"), Content: "block"}, errdefs.ErrConflict},
		{"instance root", store.StorageVolume{Pool: "a", Type: "container", Name: "c1", DiskName: "i1", Content: "filesystem", InstanceID: 7}, nil},
		{"second root of one instance", store.StorageVolume{Pool: "b", Type: "container", Name: "c1", DiskName: "i1", Content: "filesystem", InstanceID: 7}, errdefs.ErrConflict},
		{"bad type", store.StorageVolume{Pool: "a", Type: "snapshot", Name: "s", DiskName: "s", Content: "filesystem"}, errdefs.ErrInvalidArgument},
		{"bad content", store.StorageVolume{Pool: "a", Type: "custom", Name: "w", DiskName: "w", Content: "tape"}, errdefs.ErrInvalidArgument},
		{"ISO", store.StorageVolume{Pool: "a", Type: "custom", Name: "iso", DiskName: "iso", Content: "iso"}, nil},
		{"no pool", store.StorageVolume{Pool: "zz", Type: "custom", Name: "w", DiskName: "w", Content: "block"}, errdefs.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.v
			wantKind(t, s.CreateStorageVolume(ctx, &v), tc.kind, "")
		})
	}
	// A project's custom volumes: every pool, no images, roots or
	// other projects' volumes.
	for proj, want := range map[string][]string{"default": {"a/iso", "a/v", "b/v"}, "p1": {"a/v"}, "p2": nil} {
		vols, err := s.ListProjectCustomVolumes(ctx, proj)
		wantKind(t, err, nil, "")
		var got []string
		for _, v := range vols {
			got = append(got, v.Pool+"/"+v.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("custom volumes of %s: %v, want %v", proj, got, want)
		}
	}
	root, err := s.GetInstanceVolume(ctx, 7)
	wantKind(t, err, nil, "")
	if root.Name != "c1" || root.Pool != "a" || root.State != "pending" || root.CreatedAt.IsZero() {
		t.Fatalf("root volume %+v", root)
	}
	root.State, root.Name, root.DiskName = "created", "renamed", "i1-renamed"
	wantKind(t, s.UpdateStorageVolume(ctx, root), nil, "")
	got, err := s.GetStorageVolume(ctx, "a", "default", "container", "renamed")
	wantKind(t, err, nil, "")
	if diff := cmp.Diff(root, got, cmpopts.EquateApproxTime(0), equate); diff != "" {
		t.Fatalf("volume (-want +got):\n%s", diff)
	}
	shifted, err := s.GetStorageVolumeByDisk(ctx, "a", "image", "filesystem", fp("ab")+"@1000000-65536")
	wantKind(t, err, nil, "")
	if shifted.Name != fp("ab") || shifted.Content != "filesystem" {
		t.Fatalf("image volume by disk name %+v", shifted)
	}
	_, err = s.GetStorageVolumeByDisk(ctx, "b", "image", "filesystem", fp("ab"))
	wantKind(t, err, errdefs.ErrNotFound, "")
	_, err = s.GetInstanceVolume(ctx, 8)
	wantKind(t, err, errdefs.ErrNotFound, "")
	all, err := s.ListStorageVolumes(ctx, "")
	wantKind(t, err, nil, "")
	if len(all) != 8 {
		t.Fatalf("%d volumes, want 8: %+v", len(all), all)
	}
	onA, err := s.ListStorageVolumes(ctx, "a")
	wantKind(t, err, nil, "")
	if len(onA) != 7 {
		t.Fatalf("%d volumes on a, want 7", len(onA))
	}
	for _, tt := range []struct {
		project, disk string // disk "": not found
	}{{"default", "v"}, {"p1", "p1_v"}, {"p2", ""}} {
		v, err := s.GetStorageVolume(ctx, "a", tt.project, "custom", "v")
		if tt.disk == "" {
			wantKind(t, err, errdefs.ErrNotFound, "")
			continue
		}
		if err != nil || v.DiskName != tt.disk || v.Project != tt.project {
			t.Errorf("volume v of %s: %+v, %v", tt.project, v, err)
		}
	}
}
