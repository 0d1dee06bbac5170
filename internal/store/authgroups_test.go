package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestAuthGroups(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	ops := auth.Group{Name: "ops", Description: "operators of p1",
		Permissions: []auth.Permission{{Object: auth.Project("p1"), Entitlement: auth.Operator}, {Object: auth.Server(), Entitlement: auth.CanViewMetrics}},
		Members:     []auth.Member{{Method: auth.MethodTLS, ID: "abcd"}}}
	view := auth.Group{Name: "view", Permissions: []auth.Permission{{Object: auth.Instance("p1", "c1"), Entitlement: auth.CanView}}}
	for _, g := range []auth.Group{view, ops} {
		if err := s.CreateAuthGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateAuthGroup(ctx, auth.Group{Name: "ops"}); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("duplicate: %v, want conflict", err)
	}
	got, err := s.AuthGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]auth.Group{ops, view}, got, equate); d != "" {
		t.Fatalf("groups (-want +got):\n%s", d)
	}

	ops.Permissions = ops.Permissions[:1]
	ops.Members = []auth.Member{{Method: auth.MethodTLS, ID: "ef"}, {Method: auth.MethodToken, ID: "ci"}}
	ops.Description = "changed"
	if err := s.UpdateAuthGroup(ctx, "ops", ops); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameAuthGroup(ctx, "ops", "a-ops"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAuthGroup(ctx, "view"); err != nil {
		t.Fatal(err)
	}
	got, err = s.AuthGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ops.Name = "a-ops"
	if d := cmp.Diff([]auth.Group{ops}, got, equate); d != "" {
		t.Fatalf("after update, rename, delete (-want +got):\n%s", d)
	}

	for name, err := range map[string]error{
		"update missing":  s.UpdateAuthGroup(ctx, "view", view),
		"rename missing":  s.RenameAuthGroup(ctx, "view", "x"),
		"delete missing":  s.DeleteAuthGroup(ctx, "view"),
		"rename to taken": func() error { _ = s.CreateAuthGroup(ctx, view); return s.RenameAuthGroup(ctx, "view", "a-ops") }(),
	} {
		want := errdefs.ErrNotFound
		if name == "rename to taken" {
			want = errdefs.ErrConflict
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
}
