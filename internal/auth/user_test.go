package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// A local user holds nothing of its own: a user in a group holding
// can_view on project P may view P and nothing else; a user in no group,
// nothing at all.
func TestUserHoldsOnlyItsGroups(t *testing.T) {
	a := New(nil)
	root := WithIdentity(context.Background(), unix)
	if err := a.CreateGroup(root, Group{Name: "p-viewers",
		Permissions: []Permission{{Project("p"), CanView}},
		Members:     []Member{{MethodUser, "alice"}, {MethodToken, "bob"}}}); err != nil {
		t.Fatal(err)
	}
	alice := Identity{Kind: KindUser, Name: "alice"}
	bob := Identity{Kind: KindUser, Name: "bob"} // the group names a token bob, not this user
	carol := Identity{Kind: KindUser, Name: "carol"}
	const (
		ok        = "ok"
		forbidden = "403"
		notFound  = "404"
	)
	tests := []struct {
		id   Identity
		o    Object
		e    Entitlement
		want string
	}{
		{alice, Project("p"), CanView, ok},
		{alice, Project("p"), CanEdit, forbidden},
		{alice, Project("p"), CanDelete, forbidden},
		{alice, Project("p"), Operator, forbidden},
		{alice, Project("p"), CanManageInstances, forbidden},
		{alice, Project("p"), CanViewEvents, forbidden},
		{alice, Instance("p", "c1"), CanView, forbidden},
		{alice, Instance("p", "c1"), CanExec, forbidden},
		{alice, Project("q"), CanView, notFound},
		{alice, Project("default"), CanView, notFound},
		{alice, Instance("q", "c1"), CanView, notFound},
		{alice, Server(), CanView, forbidden},
		{alice, Server(), Admin, forbidden},
		{alice, Server(), CanEdit, forbidden},
		{alice, StoragePool("pool"), CanView, forbidden},
		{alice, Certificate("aa"), CanView, forbidden},

		{bob, Project("p"), CanView, notFound},
		{carol, Project("p"), CanView, notFound},
		{carol, Project("default"), CanView, notFound},
		{carol, Server(), CanView, forbidden},
		{carol, StoragePool("pool"), CanView, forbidden},
		{carol, Instance("default", "c1"), CanView, notFound},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.id.Name, tt.o, tt.e), func(t *testing.T) {
			ctx := WithIdentity(context.Background(), tt.id)
			err := a.Check(ctx, tt.o, tt.e)
			got := ok
			switch {
			case errors.Is(err, errdefs.ErrForbidden):
				got = forbidden
			case errors.Is(err, errdefs.ErrNotFound):
				got = notFound
			case err != nil:
				t.Fatalf("unexpected error kind: %v", err)
			}
			if got != tt.want {
				t.Fatalf("Check = %s (%v), want %s", got, err, tt.want)
			}
		})
	}
}

// RemoveMember takes the member out of every group, persisting first:
// a failed persist changes nothing, and it needs admin.
func TestRemoveMember(t *testing.T) {
	a := New(nil)
	root := WithIdentity(context.Background(), unix)
	alice := Member{MethodUser, "alice"}
	for _, name := range []string{"g1", "g2"} {
		if err := a.CreateGroup(root, Group{Name: name,
			Permissions: []Permission{{Project(name), Operator}},
			Members:     []Member{alice, {MethodUser, "bob"}, {MethodToken, "alice"}}}); err != nil {
			t.Fatal(err)
		}
	}
	user := WithIdentity(root, Identity{Kind: KindUser, Name: "alice"})
	before := a.snap.Load()

	failed := errors.New("disk on fire")
	if err := a.RemoveMember(root, alice, func() error { return failed }); !errors.Is(err, failed) {
		t.Fatalf("failed persist: %v", err)
	}
	if !a.Allowed(user, Project("g1"), Operator) {
		t.Fatal("a failed removal took the member out")
	}
	if err := a.RemoveMember(WithIdentity(root, Identity{Kind: KindUser, Name: "alice"}), alice, nil); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("a user removing itself: %v, want forbidden", err)
	}

	persisted := 0
	if err := a.RemoveMember(root, alice, func() error { persisted++; return nil }); err != nil {
		t.Fatal(err)
	}
	if persisted != 1 {
		t.Fatalf("persist ran %d times", persisted)
	}
	for _, g := range []string{"g1", "g2"} {
		if a.Allowed(user, Project(g), CanView) {
			t.Errorf("removed user still holds %s", g)
		}
		if !a.Allowed(WithIdentity(root, Identity{Kind: KindUser, Name: "bob"}), Project(g), Operator) {
			t.Errorf("bob lost %s", g)
		}
		if !a.Allowed(WithIdentity(root, Identity{Kind: KindToken, Name: "alice", Restricted: true}), Project(g), Operator) {
			t.Errorf("the token alice lost %s", g)
		}
	}
	// The old snapshot, which a concurrent check may still hold, is intact.
	for _, g := range before.groups {
		if len(g.Members) != 3 {
			t.Fatalf("old snapshot's group %s changed: %v", g.Name, g.Members)
		}
	}
}
