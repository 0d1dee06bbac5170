package instance

import (
	"context"
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/cuid"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
)

// Every instance gets an id of cuid's shape; renames and restarts keep
// it, copies get their own; ResolveID finds an instance by id, name or
// unique id prefix, only in the caller's project.
func TestInstanceIDAndResolveID(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	other := project.WithProject(ctx, project.Project{Name: "p2"})
	for _, c := range []struct {
		ctx  context.Context
		name string
	}{{ctx, "one"}, {ctx, "two"}, {other, "hidden"}} {
		cr, err := s.Create(c.ctx, imageReq(c.name))
		if err != nil {
			t.Fatal(err)
		}
		if err := cr.Run(c.ctx); err != nil {
			t.Fatal(err)
		}
	}
	get := func(ctx context.Context, name string) Instance {
		t.Helper()
		in, err := s.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !cuid.Valid(in.ID) {
			t.Fatalf("%s: id %q", name, in.ID)
		}
		return in
	}
	one, two, hidden := get(ctx, "one"), get(ctx, "two"), get(other, "hidden")
	if one.ID == two.ID || one.ID == hidden.ID {
		t.Fatalf("ids repeat: %s %s %s", one.ID, two.ID, hidden.ID)
	}
	if err := s.Stop(ctx, "one", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Rename(ctx, "one", "uno"); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, "uno"); err != nil {
		t.Fatal(err)
	}
	if got := get(ctx, "uno").ID; got != one.ID {
		t.Fatalf("after rename and start: id %s, was %s", got, one.ID)
	}
	if err := launch(t, s, CreateRequest{Name: "copy", Source: Source{Type: SourceCopy, Instance: "two"}}); err != nil {
		t.Fatal(err)
	}
	if got := get(ctx, "copy").ID; got == two.ID {
		t.Fatal("a copy took its source's id")
	}

	// A prefix both ids share, if any: then it is ambiguous.
	common := ""
	for i := 1; i < len(one.ID) && one.ID[:i] == two.ID[:i]; i++ {
		common = one.ID[:i]
	}
	tests := []struct {
		name, in, want string
		ctx            context.Context
		kind           error
	}{
		{"id", one.ID, "uno", ctx, nil},
		{"name", "two", "two", ctx, nil},
		{"prefix", two.ID[:20], "two", ctx, nil},
		{"old name", "one", "", ctx, errdefs.ErrNotFound},
		{"unknown", "zzz", "", ctx, errdefs.ErrNotFound},
		{"empty", "", "", ctx, errdefs.ErrNotFound},
		{"other project's id", hidden.ID, "", ctx, errdefs.ErrNotFound},
		{"other project's name", "hidden", "", ctx, errdefs.ErrNotFound},
		{"own project's id", hidden.ID, "hidden", other, nil},
	}
	if common != "" {
		tests = append(tests, struct {
			name, in, want string
			ctx            context.Context
			kind           error
		}{"ambiguous prefix", common, "", ctx, errdefs.ErrNotFound})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ResolveID(tc.ctx, tc.in)
			if !errors.Is(err, tc.kind) || (err != nil) != (tc.kind != nil) || got != tc.want {
				t.Fatalf("ResolveID(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.kind)
			}
		})
	}
}
