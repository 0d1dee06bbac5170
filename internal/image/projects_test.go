package image

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
)

// inProject is a context acting in project name; withImages gives it its
// own images (features.images), else it sees the default project's.
func inProject(name string, withImages bool) context.Context {
	cfg := map[string]string{}
	if withImages {
		cfg[project.FeatureImages] = "true"
	}
	return project.WithProject(context.Background(), project.Project{Name: name, Config: cfg})
}

// TestImageProjects: an image is stored once and held by projects; each
// sees only its own images and aliases; deleting it in one keeps it for
// the others, and the last delete removes its files.
func TestImageProjects(t *testing.T) {
	s, db, em, dir := newTestService(t)
	var (
		p1, p2 = inProject("p1", true), inProject("p2", true)
		shared = inProject("p3", false) // Sees the default project's images.
		def    = context.Background()
	)
	data := compress(t, "none", basicRootfs(t))
	img1, err := s.Import(p1, bytes.NewReader(data), ImportMeta{Alias: "a"})
	if err != nil {
		t.Fatal(err)
	}
	files := storeEntries(t, dir)
	fp := img1.Fingerprint
	// The same bytes into p2, under the same alias name: no second copy.
	img2, err := s.Import(p2, bytes.NewReader(data), ImportMeta{Alias: "a"})
	if err != nil {
		t.Fatalf("import into a second project: %v", err)
	}
	if img2.Fingerprint != fp || img1.Project != "p1" || img2.Project != "p2" {
		t.Errorf("images %s in %s, %s in %s", img1.Fingerprint, img1.Project, img2.Fingerprint, img2.Project)
	}
	if got := storeEntries(t, dir); !slices.Equal(got, files) {
		t.Errorf("store after the second import %v, want %v (one copy)", got, files)
	}
	if rec := db.images[fp]; !slices.Equal(rec.Projects, []string{"p1", "p2"}) {
		t.Errorf("projects %v", rec.Projects)
	}
	_, err = s.Import(p1, bytes.NewReader(data), ImportMeta{})
	assertKind(t, err, errdefs.ErrConflict) // Already in p1.
	if ev := em.take(); len(ev) != 4 {      // created and alias-created, twice.
		t.Errorf("events %v", ev)
	}
	// Another image, in the default project only.
	other := compress(t, "gzip", basicRootfs(t))
	dimg, err := s.Import(def, bytes.NewReader(other), ImportMeta{Alias: "d"})
	if err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		ctx  context.Context
		ref  string
		want string // fingerprint; "" is not found
	}{
		{"p1 by fingerprint", p1, fp, fp},
		{"p1 by prefix", p1, fp[:8], fp},
		{"p1 by alias", p1, "a", fp},
		{"p2 by alias", p2, "a", fp},
		{"p1, the default project's image", p1, dimg.Fingerprint, ""},
		{"p1, the default project's alias", p1, "d", ""},
		{"default, p1's image", def, fp, ""},
		{"default, p1's alias", def, "a", ""},
		{"default, its own", def, "d", dimg.Fingerprint},
		{"no features.images: the default project's", shared, "d", dimg.Fingerprint},
		{"no features.images: not p1's", shared, fp, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Resolve(tt.ctx, tt.ref)
			if tt.want == "" {
				assertKind(t, err, errdefs.ErrNotFound)
				_, err = s.Get(tt.ctx, tt.ref)
				assertKind(t, err, errdefs.ErrNotFound)
				_, err = s.Export(tt.ctx, tt.ref)
				assertKind(t, err, errdefs.ErrNotFound)
				assertKind(t, s.Update(tt.ctx, tt.ref, api.ImagePut{}), errdefs.ErrNotFound)
				assertKind(t, s.Delete(tt.ctx, tt.ref, nil), errdefs.ErrNotFound)
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Resolve = %s, %v; want %s", got, err, tt.want)
			}
			if img, err := s.Get(tt.ctx, got); err != nil || img.Project != project.From(tt.ctx).Scope(project.FeatureImages) {
				t.Errorf("Get = %+v, %v", img, err)
			}
		})
	}

	for _, tt := range []struct {
		name    string
		ctx     context.Context
		do      func(ctx context.Context) error
		wantErr error
	}{
		{"alias in default to p1's image", def, func(ctx context.Context) error {
			return s.CreateAlias(ctx, api.ImageAliasesPost{ImageAliasesEntry: api.ImageAliasesEntry{Name: "x", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: fp}}})
		}, errdefs.ErrNotFound},
		{"point p1's alias at the default project's image", p1, func(ctx context.Context) error {
			return s.UpdateAlias(ctx, "a", api.ImageAliasesEntryPut{Target: dimg.Fingerprint})
		}, errdefs.ErrNotFound},
		{"rename another project's alias", def, func(ctx context.Context) error { return s.RenameAlias(ctx, "a", "b") }, errdefs.ErrNotFound},
		{"delete another project's alias", def, func(ctx context.Context) error { return s.DeleteAlias(ctx, "a") }, errdefs.ErrNotFound},
		{"alias taken in p1", p1, func(ctx context.Context) error {
			return s.CreateAlias(ctx, api.ImageAliasesPost{ImageAliasesEntry: api.ImageAliasesEntry{Name: "a", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: fp}}})
		}, errdefs.ErrConflict},
		{"the same alias name in default", def, func(ctx context.Context) error {
			return s.CreateAlias(ctx, api.ImageAliasesPost{ImageAliasesEntry: api.ImageAliasesEntry{Name: "a", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: dimg.Fingerprint}}})
		}, nil},
		{"in use by another project's instance", p1, func(ctx context.Context) error { return s.Delete(ctx, fp, []string{"p2/c1"}) }, errdefs.ErrConflict},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(tt.ctx)
			if (tt.wantErr == nil) != (err == nil) || (err != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
		})
	}
	for _, tt := range []struct {
		ctx  context.Context
		want []string // aliases
	}{{p1, []string{"a"}}, {p2, []string{"a"}}, {def, []string{"a", "d"}}} {
		list, err := s.ListAliases(tt.ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, a := range list {
			got = append(got, a.Name)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s aliases %v, want %v", project.Name(tt.ctx), got, tt.want)
		}
		imgs, err := s.List(tt.ctx)
		if err != nil || len(imgs) != 1 {
			t.Errorf("%s images %d, %v; want 1", project.Name(tt.ctx), len(imgs), err)
		}
	}

	// p1 lets go: p2 keeps the image, its alias and the files.
	if err := s.Delete(p1, fp, nil); err != nil {
		t.Fatalf("delete from p1: %v", err)
	}
	if _, err := s.Get(p1, fp); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("p1 still sees the image: %v", err)
	}
	if got, err := s.Resolve(p2, "a"); err != nil || got != fp {
		t.Errorf("p2's alias after p1's delete: %s, %v", got, err)
	}
	if _, err := s.RootFS(def, fp); err != nil {
		t.Errorf("the image's tree after p1's delete: %v", err)
	}
	// The last project lets go: the files go.
	if err := s.Delete(p2, fp, nil); err != nil {
		t.Fatalf("delete from p2: %v", err)
	}
	if _, ok := db.images[fp]; ok {
		t.Error("record left after the last project's delete")
	}
	for _, e := range storeEntries(t, dir) {
		if e == "blobs/sha256/"+fp || e == "rootfs/"+fp {
			t.Errorf("%s left after the last project's delete", e)
		}
	}
}
