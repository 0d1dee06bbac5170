package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

func TestDefaultProject(t *testing.T) {
	s, _ := openStore(t)
	got, err := s.GetProject(context.Background(), "default")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"features.images", "features.profiles", "features.storage.volumes", "features.networks"} {
		if got.Config[f] != "true" {
			t.Errorf("default project %s = %q, want true", f, got.Config[f])
		}
	}
	if got.Parent != "" {
		t.Errorf("default project parent = %q", got.Parent)
	}
}

func TestProjectCRUD(t *testing.T) {
	ctx := context.Background()
	s, path := openStore(t)

	p := store.Project{Name: "p1", Description: "one", Config: map[string]string{"features.profiles": "true"}}
	if err := s.CreateProject(ctx, &p, true); err != nil {
		t.Fatalf("CreateProject: %v", err)
	}
	child := store.Project{Name: "c1", Parent: "p1"}
	if err := s.CreateProject(ctx, &child, false); err != nil {
		t.Fatalf("CreateProject child: %v", err)
	}
	got, err := s.GetProject(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetProject", got, p)

	contents, err := s.ProjectContents(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "contents", contents, []store.ProjectObject{
		{Kind: store.ObjectProfile, Name: "default"},
		{Kind: store.ObjectProject, Name: "c1"},
	})

	// An instance in the project, written as the core will write it.
	db, err := sql.Open("sqlite", path+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO instances (project, name, type, architecture, created_at, last_used_at)
		VALUES ('p1', 'i1', 'container', 'x86_64', '', '')`); err != nil {
		t.Fatal(err)
	}

	// A rename carries the child's parent and the instance along.
	if err := s.RenameProject(ctx, "p1", "p2"); err != nil {
		t.Fatalf("RenameProject: %v", err)
	}
	if got, err := s.GetProject(ctx, "c1"); err != nil || got.Parent != "p2" {
		t.Errorf("child after rename: %+v, %v; want parent p2", got, err)
	}
	contents, err = s.ProjectContents(ctx, "p2")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "contents after rename", contents, []store.ProjectObject{
		{Kind: store.ObjectInstance, Name: "i1", Type: "container"},
		{Kind: store.ObjectProfile, Name: "default"},
		{Kind: store.ObjectProject, Name: "c1"},
	})

	// Not empty: the schema refuses.
	if err := s.DeleteProject(ctx, "p2"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("DeleteProject(non-empty) = %v, want conflict", err)
	}
	if _, err := s.GetProject(ctx, "p2"); err != nil {
		t.Errorf("refused delete lost the project: %v", err)
	}
	if _, err := db.Exec(`DELETE FROM instances WHERE name = 'i1'`); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProject(ctx, "c1"); err != nil {
		t.Fatalf("DeleteProject(child): %v", err)
	}

	p.Name = "p2"
	p.Description = "two"
	p.Config = map[string]string{}
	if err := s.UpdateProject(ctx, p, store.ProfileDeleteDefault); err != nil {
		t.Fatalf("UpdateProject: %v", err)
	}
	contents, err = s.ProjectContents(ctx, "p2")
	if err != nil || len(contents) != 0 {
		t.Errorf("contents after dropping profiles: %v, %v", contents, err)
	}
	if err := s.DeleteProject(ctx, "p2"); err != nil {
		t.Fatalf("DeleteProject: %v", err)
	}
	if _, err := s.GetProject(ctx, "p2"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("GetProject after delete = %v, want not found", err)
	}
}

func TestProjectErrors(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	if err := s.CreateProject(ctx, &store.Project{Name: "a"}, false); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
		kind error
	}{
		{"duplicate", func() error { return s.CreateProject(ctx, &store.Project{Name: "a"}, false) }, errdefs.ErrConflict},
		{"slash", func() error { return s.CreateProject(ctx, &store.Project{Name: "a/b"}, false) }, errdefs.ErrInvalidArgument},
		{"empty", func() error { return s.CreateProject(ctx, &store.Project{Name: ""}, false) }, errdefs.ErrInvalidArgument},
		{"no parent", func() error { return s.CreateProject(ctx, &store.Project{Name: "b", Parent: "zz"}, false) }, errdefs.ErrNotFound},
		{"update missing", func() error { return s.UpdateProject(ctx, store.Project{Name: "zz"}, store.ProfileKeep) }, errdefs.ErrNotFound},
		{"reparent missing", func() error { return s.UpdateProject(ctx, store.Project{Name: "a", Parent: "zz"}, store.ProfileKeep) }, errdefs.ErrNotFound},
		{"rename taken", func() error { return s.RenameProject(ctx, "a", "default") }, errdefs.ErrConflict},
		{"rename missing", func() error { return s.RenameProject(ctx, "zz", "yy") }, errdefs.ErrNotFound},
		{"delete missing", func() error { return s.DeleteProject(ctx, "zz") }, errdefs.ErrNotFound},
		{"delete default", func() error { return s.DeleteProject(ctx, "default") }, errdefs.ErrForbidden},
	}
	for _, tt := range tests {
		if err := tt.run(); !errors.Is(err, tt.kind) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.kind)
		}
	}
}
