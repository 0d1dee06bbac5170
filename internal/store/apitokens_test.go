package store_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/hangar-dev/hangar/internal/store"
)

func TestAPITokens(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	if err := s.CreateProject(ctx, &store.Project{Name: "p1"}, false); err != nil {
		t.Fatal(err)
	}
	hash := bytes.Repeat([]byte{7}, 32)
	good := store.APIToken{Name: "t1", SecretHash: hash, Project: "p1", Role: "viewer", CreatedAt: ts(1), ExpiresAt: ts(9)}
	id, err := s.CreateAPIToken(ctx, good)
	wantKind(t, err, nil, "")
	got, err := s.GetAPIToken(ctx, id)
	wantKind(t, err, nil, "")
	good.ID = id
	diff(t, "token", got, good)

	admin := store.APIToken{Name: "all", SecretHash: hash, Role: "admin", CreatedAt: ts(2)}
	if _, err := s.CreateAPIToken(ctx, admin); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		tok  store.APIToken
		kind error
	}{
		{"duplicate name", store.APIToken{Name: "t1", SecretHash: hash, Role: "viewer", CreatedAt: ts(1)}, errConflict},
		{"unknown project", store.APIToken{Name: "t2", SecretHash: hash, Project: "nope", Role: "viewer", CreatedAt: ts(1)}, errNotFound},
		{"bad role", store.APIToken{Name: "t3", SecretHash: hash, Role: "root", CreatedAt: ts(1)}, errInvalid},
		{"short hash", store.APIToken{Name: "t4", SecretHash: hash[:8], Role: "viewer", CreatedAt: ts(1)}, errInvalid},
		{"empty name", store.APIToken{SecretHash: hash, Role: "viewer", CreatedAt: ts(1)}, errInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateAPIToken(ctx, tc.tok)
			wantKind(t, err, tc.kind, "")
		})
	}

	list, err := s.ListAPITokens(ctx)
	wantKind(t, err, nil, "")
	if len(list) != 2 || list[0].Name != "all" || list[0].Project != "" || !list[0].ExpiresAt.IsZero() || list[1].Name != "t1" {
		t.Fatalf("list = %+v", list)
	}

	// Renaming the project carries the token along; deleting it revokes.
	if err := s.RenameProject(ctx, "p1", "p2"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetAPIToken(ctx, id); got.Project != "p2" {
		t.Errorf("after rename: project %q, want p2", got.Project)
	}
	if err := s.DeleteProject(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetAPIToken(ctx, id)
	wantKind(t, err, errNotFound, "")

	wantKind(t, s.DeleteAPIToken(ctx, "all"), nil, "")
	wantKind(t, s.DeleteAPIToken(ctx, "all"), errNotFound, "")
	_, err = s.GetAPIToken(ctx, 999)
	wantKind(t, err, errNotFound, "")
}
