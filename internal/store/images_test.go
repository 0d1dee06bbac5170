package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
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
		Projects:     []string{"default"},
	}
}

func TestImageCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)

	img := newImage(fp("abc1"))
	if err := s.CreateImage(ctx, img, "default"); err != nil {
		t.Fatalf("CreateImage: %v", err)
	}
	got, err := s.GetImage(ctx, "default", img.Fingerprint)
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
	got, err = s.GetImage(ctx, "default", img.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "after update", got, want)

	other := newImage(fp("0f"))
	if err := s.CreateImage(ctx, other, "default"); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListImages(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListImages", list, []store.Image{other, want})

	if err := s.DeleteImage(ctx, img.Fingerprint); err != nil {
		t.Fatalf("DeleteImage: %v", err)
	}
	_, err = s.GetImage(ctx, "default", img.Fingerprint)
	wantKind(t, err, errNotFound, "")
}

func TestImageErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	if err := s.CreateImage(ctx, newImage(fp("ab")), "default"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		op   func() error
		kind error
		msg  string
	}{
		{"create duplicate", func() error { return s.CreateImage(ctx, newImage(fp("ab")), "default") },
			errConflict, `image "` + fp("ab") + `" already exists`},
		{"create short fingerprint", func() error { return s.CreateImage(ctx, newImage("abcd"), "default") },
			errInvalid, ""},
		{"create uppercase fingerprint", func() error { return s.CreateImage(ctx, newImage(fp("AB")), "default") },
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
		if err := s.CreateImage(ctx, newImage(f), "default"); err != nil {
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
			got, err := s.GetImage(ctx, "default", tt.ref)
			wantKind(t, err, tt.kind, "")
			if tt.kind == nil && got.Fingerprint != tt.want {
				t.Errorf("GetImage(%q) = %s, want %s", tt.ref, got.Fingerprint, tt.want)
			}
		})
	}
	_, err := s.GetImage(ctx, "default", "abc")
	wantKind(t, err, errInvalid, `image fingerprint prefix "abc" matches more than one image`)
}

func TestAliasCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	a1, a2 := fp("a1"), fp("a2")
	for _, f := range []string{a1, a2} {
		if err := s.CreateImage(ctx, newImage(f), "default"); err != nil {
			t.Fatal(err)
		}
	}

	al := store.Alias{Project: "default", Name: "alpine", Description: "Alpine", Target: a1, Type: "container"}
	if err := s.CreateAlias(ctx, al); err != nil {
		t.Fatalf("CreateAlias: %v", err)
	}
	got, err := s.GetAlias(ctx, "default", "alpine")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetAlias", got, al)

	al.Description, al.Target, al.Type = "moved", a2, "virtual-machine"
	if err := s.UpdateAlias(ctx, al); err != nil {
		t.Fatalf("UpdateAlias: %v", err)
	}
	got, err = s.GetAlias(ctx, "default", "alpine")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "after update", got, al)

	if err := s.RenameAlias(ctx, "default", "alpine", "alpine/3.20"); err != nil {
		t.Fatalf("RenameAlias: %v", err)
	}
	_, err = s.GetAlias(ctx, "default", "alpine")
	wantKind(t, err, errNotFound, `image alias "alpine" not found`)
	al.Name = "alpine/3.20"

	other := store.Alias{Project: "default", Name: "a-other", Target: a1}
	if err := s.CreateAlias(ctx, other); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAliases(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListAliases", list, []store.Alias{other, al})

	if err := s.DeleteAlias(ctx, "default", "a-other"); err != nil {
		t.Fatalf("DeleteAlias: %v", err)
	}
	_, err = s.GetAlias(ctx, "default", "a-other")
	wantKind(t, err, errNotFound, "")
}

func TestAliasErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	f := fp("a1")
	if err := s.CreateImage(ctx, newImage(f), "default"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"x", "y"} {
		if err := s.CreateAlias(ctx, store.Alias{Project: "default", Name: n, Target: f}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		op   func() error
		kind error
		msg  string
	}{
		{"create duplicate", func() error { return s.CreateAlias(ctx, store.Alias{Project: "default", Name: "x", Target: f}) },
			errConflict, `image alias "x" already exists`},
		{"create missing image", func() error { return s.CreateAlias(ctx, store.Alias{Project: "default", Name: "z", Target: fp("b")}) },
			errNotFound, `image "` + fp("b") + `" not found`},
		{"create with prefix target", func() error { return s.CreateAlias(ctx, store.Alias{Project: "default", Name: "z", Target: "a1"}) },
			errNotFound, `image "a1" not found`},
		{"update missing alias", func() error { return s.UpdateAlias(ctx, store.Alias{Project: "default", Name: "z", Target: f}) },
			errNotFound, `image alias "z" not found`},
		{"update to missing image", func() error { return s.UpdateAlias(ctx, store.Alias{Project: "default", Name: "x", Target: fp("b")}) },
			errNotFound, `image "` + fp("b") + `" not found`},
		{"rename missing", func() error { return s.RenameAlias(ctx, "default", "z", "w") },
			errNotFound, `image alias "z" not found`},
		{"rename onto existing", func() error { return s.RenameAlias(ctx, "default", "x", "y") },
			errConflict, `image alias "y" already exists`},
		{"delete missing", func() error { return s.DeleteAlias(ctx, "default", "z") },
			errNotFound, `image alias "z" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantKind(t, tt.op(), tt.kind, tt.msg)
		})
	}
	list, err := s.ListAliases(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "aliases after failures", list, []store.Alias{{Project: "default", Name: "x", Target: f}, {Project: "default", Name: "y", Target: f}})
}

func TestDeleteImageCascadesAliases(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	keep, drop := fp("1"), fp("2")
	for _, f := range []string{keep, drop} {
		if err := s.CreateImage(ctx, newImage(f), "default"); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []store.Alias{{Project: "default", Name: "d1", Target: drop}, {Project: "default", Name: "d2", Target: drop}, {Project: "default", Name: "k", Target: keep}} {
		if err := s.CreateAlias(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteImage(ctx, drop); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAliases(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "aliases after image delete", list, []store.Alias{{Project: "default", Name: "k", Target: keep}})
}

// addProjects stores projects p1 and p2 beside default.
func addProjects(t *testing.T, s *store.Store) {
	t.Helper()
	for _, p := range []string{"p1", "p2"} {
		if err := store.AddProjectForTest(context.Background(), s, p); err != nil {
			t.Fatal(err)
		}
	}
}

// TestImageProjects: an image is stored once and held by projects; each
// project sees only what it holds, has its own aliases, and letting go of
// an image in one project keeps it (and the other's aliases) for the other.
func TestImageProjects(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	addProjects(t, s)
	shared, own := fp("aa"), fp("ab")
	if err := s.CreateImage(ctx, newImage(shared), "p1"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddImageProject(ctx, shared, "p2"); err != nil {
		t.Fatalf("AddImageProject: %v", err)
	}
	if err := s.CreateImage(ctx, newImage(own), "p2"); err != nil {
		t.Fatal(err)
	}
	for _, a := range []store.Alias{
		{Project: "p1", Name: "x", Target: shared},
		{Project: "p2", Name: "x", Target: own}, // Same name, other project.
		{Project: "p2", Name: "y", Target: shared},
	} {
		if err := s.CreateAlias(ctx, a); err != nil {
			t.Fatalf("CreateAlias %+v: %v", a, err)
		}
	}

	for _, tt := range []struct {
		project, ref string
		want         string // fingerprint, "" for not found
	}{
		{"p1", shared, shared},
		{"p1", "a", shared}, // The prefix is unique in p1, though not in p2.
		{"p1", own, ""},     // Another project's image.
		{"p2", own, own},
		{"default", shared, ""},
		{"", own, own}, // Any project.
		{"nosuch", shared, ""},
	} {
		got, err := s.GetImage(ctx, tt.project, tt.ref)
		if tt.want == "" {
			wantKind(t, err, errNotFound, "")
			continue
		}
		if err != nil || got.Fingerprint != tt.want {
			t.Errorf("GetImage(%q, %q) = %s, %v; want %s", tt.project, tt.ref, got.Fingerprint, err, tt.want)
		}
	}
	if _, err := s.GetImage(ctx, "p2", "a"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ambiguous prefix in p2: %v, want invalid argument", err)
	}
	got, err := s.GetImage(ctx, "p1", shared)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "projects of the shared image", got.Projects, []string{"p1", "p2"})

	for _, tt := range []struct {
		name    string
		err     error
		wantErr error
	}{
		{"add again", s.AddImageProject(ctx, shared, "p1"), errdefs.ErrConflict},
		{"add missing image", s.AddImageProject(ctx, fp("b"), "p1"), errdefs.ErrNotFound},
		{"add to missing project", s.AddImageProject(ctx, own, "nosuch"), errdefs.ErrNotFound},
		{"create in missing project", s.CreateImage(ctx, newImage(fp("c")), "nosuch"), errdefs.ErrNotFound},
		{"alias in missing project", s.CreateAlias(ctx, store.Alias{Project: "nosuch", Name: "x", Target: own}), errdefs.ErrNotFound},
		{"same alias twice in a project", s.CreateAlias(ctx, store.Alias{Project: "p1", Name: "x", Target: shared}), errdefs.ErrConflict},
		{"remove from a project not holding it", s.RemoveImageProject(ctx, own, "p1"), errdefs.ErrNotFound},
		{"rename onto another project's name is fine", s.RenameAlias(ctx, "p1", "x", "y"), nil},
		{"delete another project's alias", s.DeleteAlias(ctx, "p1", "x"), errdefs.ErrNotFound},
	} {
		if !errors.Is(tt.err, tt.wantErr) && !(tt.err == nil && tt.wantErr == nil) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.wantErr)
		}
	}
	if _, err := s.GetImage(ctx, "", fp("c")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("an image created in a missing project was kept: %v", err)
	}

	lists := func() (map[string][]string, map[string][]string) {
		imgs, aliases := map[string][]string{}, map[string][]string{}
		for _, p := range []string{"default", "p1", "p2"} {
			l, err := s.ListImages(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range l {
				imgs[p] = append(imgs[p], i.Fingerprint[:2])
			}
			al, err := s.ListAliases(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range al {
				aliases[p] = append(aliases[p], a.Name+">"+a.Target[:2])
			}
		}
		return imgs, aliases
	}
	imgs, aliases := lists()
	diff(t, "images per project", imgs, map[string][]string{"p1": {"aa"}, "p2": {"aa", "ab"}})
	diff(t, "aliases per project", aliases, map[string][]string{"p1": {"y>aa"}, "p2": {"x>ab", "y>aa"}})

	// p2 lets go of the shared image: its alias of it goes, p1's stays.
	if err := s.RemoveImageProject(ctx, shared, "p2"); err != nil {
		t.Fatalf("RemoveImageProject: %v", err)
	}
	imgs, aliases = lists()
	diff(t, "images after p2 let go", imgs, map[string][]string{"p1": {"aa"}, "p2": {"ab"}})
	diff(t, "aliases after p2 let go", aliases, map[string][]string{"p1": {"y>aa"}, "p2": {"x>ab"}})
	all, err := s.ListAliases(ctx, "")
	if err != nil || len(all) != 2 {
		t.Errorf("ListAliases(all) = %v, %v; want 2", all, err)
	}
}
