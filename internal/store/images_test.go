package store_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/store"
)

func newImage(fingerprint string) store.Image {
	return store.Image{
		Fingerprint:  fingerprint,
		Filename:     "alpine.tar.xz",
		Size:         3 << 20,
		Architecture: "x86_64",
		Type:         "container",
		Properties:   map[string]string{"os": "Alpine", "release": "3.20"},
		Public:       true,
		CreatedAt:    ts(1),
		UploadedAt:   ts(2),
		LastUsedAt:   ts(3),
		Source:       "file",
		Format:       "rootfs-tarball",
	}
}

func TestImageCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)

	img := newImage(fp("abc1"))
	if err := s.CreateImage(ctx, img); err != nil {
		t.Fatalf("CreateImage: %v", err)
	}
	got, err := s.GetImage(ctx, img.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetImage", got, img)

	// Update keeps the facts of the file, replaces the rest.
	up := img
	up.Filename, up.Size, up.Architecture, up.Type = "other", 1, "aarch64", "virtual-machine"
	up.CreatedAt, up.UploadedAt = ts(40), ts(41)
	up.Properties = map[string]string{"os": "Alpine"}
	up.Public, up.AutoUpdate, up.Cached = false, true, true
	up.LastUsedAt, up.ExpiresAt = ts(7), ts(8)
	up.Source = "simplestreams"
	if err := s.UpdateImage(ctx, up); err != nil {
		t.Fatalf("UpdateImage: %v", err)
	}
	want := up
	want.Filename, want.Size, want.Architecture, want.Type = img.Filename, img.Size, img.Architecture, img.Type
	want.CreatedAt, want.UploadedAt = img.CreatedAt, img.UploadedAt
	got, err = s.GetImage(ctx, img.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "after update", got, want)

	other := newImage(fp("0f"))
	if err := s.CreateImage(ctx, other); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListImages", list, []store.Image{other, want})

	if err := s.DeleteImage(ctx, img.Fingerprint); err != nil {
		t.Fatalf("DeleteImage: %v", err)
	}
	_, err = s.GetImage(ctx, img.Fingerprint)
	wantKind(t, err, errNotFound, "")
}

func TestImageErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	if err := s.CreateImage(ctx, newImage(fp("ab"))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		op   func() error
		kind error
		msg  string
	}{
		{"create duplicate", func() error { return s.CreateImage(ctx, newImage(fp("ab"))) },
			errConflict, `image "` + fp("ab") + `" already exists`},
		{"create short fingerprint", func() error { return s.CreateImage(ctx, newImage("abcd")) },
			errInvalid, ""},
		{"create uppercase fingerprint", func() error { return s.CreateImage(ctx, newImage(fp("AB"))) },
			errInvalid, ""},
		{"update missing", func() error { return s.UpdateImage(ctx, newImage(fp("cd"))) },
			errNotFound, `image "` + fp("cd") + `" not found`},
		{"update by prefix is not a thing", func() error { i := newImage("ab"); return s.UpdateImage(ctx, i) },
			errNotFound, ""},
		{"delete missing", func() error { return s.DeleteImage(ctx, fp("cd")) },
			errNotFound, ""},
		{"delete by prefix is not a thing", func() error { return s.DeleteImage(ctx, "ab") },
			errNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantKind(t, tt.op(), tt.kind, tt.msg)
		})
	}
}

func TestImagePrefix(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	fps := []string{
		"abc1" + strings.Repeat("1", 60),
		"abc2" + strings.Repeat("2", 60),
		"abd0" + strings.Repeat("3", 60),
		"f" + strings.Repeat("f", 63),
	}
	for _, f := range fps {
		if err := s.CreateImage(ctx, newImage(f)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		ref  string
		want string // fingerprint, or "" for an error of kind
		kind error
	}{
		{fps[0], fps[0], nil},
		{"abc1", fps[0], nil},
		{"abd", fps[2], nil},
		{"f", fps[3], nil},
		{"abc2" + strings.Repeat("2", 59), fps[1], nil},
		{"abc", "", errInvalid},
		{"a", "", errInvalid},
		{"abe", "", errNotFound},
		{"", "", errNotFound},
		{"ABC1", "", errNotFound},
		{fps[0] + "0", "", errNotFound},
		// Characters LIKE or GLOB would treat as wildcards match nothing.
		{"ab%", "", errNotFound},
		{"ab_", "", errNotFound},
		{"ab*", "", errNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := s.GetImage(ctx, tt.ref)
			wantKind(t, err, tt.kind, "")
			if tt.kind == nil && got.Fingerprint != tt.want {
				t.Errorf("GetImage(%q) = %s, want %s", tt.ref, got.Fingerprint, tt.want)
			}
		})
	}
	_, err := s.GetImage(ctx, "abc")
	wantKind(t, err, errInvalid, `image fingerprint prefix "abc" matches more than one image`)
}

func TestAliasCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	a1, a2 := fp("a1"), fp("a2")
	for _, f := range []string{a1, a2} {
		if err := s.CreateImage(ctx, newImage(f)); err != nil {
			t.Fatal(err)
		}
	}

	al := store.Alias{Name: "alpine", Description: "Alpine", Target: a1, Type: "container"}
	if err := s.CreateAlias(ctx, al); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	got, err := s.GetAlias(ctx, "alpine")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetAlias", got, al)

	al.Description, al.Target, al.Type = "moved", a2, "virtual-machine"
	if err := s.UpdateAlias(ctx, al); err != nil {
		t.Fatalf("UpdateAlias: %v", err)
	}
	got, err = s.GetAlias(ctx, "alpine")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "after update", got, al)

	if err := s.RenameAlias(ctx, "alpine", "alpine/3.20"); err != nil {
		t.Fatalf("RenameAlias: %v", err)
	}
	_, err = s.GetAlias(ctx, "alpine")
	wantKind(t, err, errNotFound, `image alias "alpine" not found`)
	al.Name = "alpine/3.20"

	other := store.Alias{Name: "a-other", Target: a1}
	if err := s.CreateAlias(ctx, other); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListAliases", list, []store.Alias{other, al})

	if err := s.DeleteAlias(ctx, "a-other"); err != nil {
		t.Fatalf("DeleteAlias: %v", err)
	}
	_, err = s.GetAlias(ctx, "a-other")
	wantKind(t, err, errNotFound, "")
}

func TestAliasErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	f := fp("a1")
	if err := s.CreateImage(ctx, newImage(f)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"x", "y"} {
		if err := s.CreateAlias(ctx, store.Alias{Name: n, Target: f}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		op   func() error
		kind error
		msg  string
	}{
		{"create duplicate", func() error { return s.CreateAlias(ctx, store.Alias{Name: "x", Target: f}) },
			errConflict, `image alias "x" already exists`},
		{"create missing image", func() error { return s.CreateAlias(ctx, store.Alias{Name: "z", Target: fp("b")}) },
			errNotFound, `image "` + fp("b") + `" not found`},
		{"create with prefix target", func() error { return s.CreateAlias(ctx, store.Alias{Name: "z", Target: "a1"}) },
			errNotFound, `image "a1" not found`},
		{"update missing alias", func() error { return s.UpdateAlias(ctx, store.Alias{Name: "z", Target: f}) },
			errNotFound, `image alias "z" not found`},
		{"update to missing image", func() error { return s.UpdateAlias(ctx, store.Alias{Name: "x", Target: fp("b")}) },
			errNotFound, `image "` + fp("b") + `" not found`},
		{"rename missing", func() error { return s.RenameAlias(ctx, "z", "w") },
			errNotFound, `image alias "z" not found`},
		{"rename onto existing", func() error { return s.RenameAlias(ctx, "x", "y") },
			errConflict, `image alias "y" already exists`},
		{"delete missing", func() error { return s.DeleteAlias(ctx, "z") },
			errNotFound, `image alias "z" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantKind(t, tt.op(), tt.kind, tt.msg)
		})
	}
	list, err := s.ListAliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "aliases after failures", list, []store.Alias{{Name: "x", Target: f}, {Name: "y", Target: f}})
}

func TestDeleteImageCascadesAliases(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	keep, drop := fp("1"), fp("2")
	for _, f := range []string{keep, drop} {
		if err := s.CreateImage(ctx, newImage(f)); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []store.Alias{{Name: "d1", Target: drop}, {Name: "d2", Target: drop}, {Name: "k", Target: keep}} {
		if err := s.CreateAlias(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteImage(ctx, drop); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "aliases after image delete", list, []store.Alias{{Name: "k", Target: keep}})
}
