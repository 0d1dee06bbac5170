package auth

import (
	"context"
	"fmt"
	"testing"
)

// TestInheritance checks that project-level grants apply down the project
// tree (top > mid > leaf; side is a sibling of top) and nothing else does.
func TestInheritance(t *testing.T) {
	a := New(nil)
	root := WithIdentity(context.Background(), unix)
	groups := []Group{
		{Name: "viewers", Permissions: []Permission{{Project("top"), CanViewInstances}}, Members: []Member{{MethodUser, "alice"}}},
		{Name: "creators", Permissions: []Permission{{Project("mid"), CanManageInstances}}, Members: []Member{{MethodUser, "alice"}}},
		{Name: "operators", Permissions: []Permission{{Project("top"), CanOperateInstances}}, Members: []Member{{MethodUser, "bob"}}},
		{Name: "one", Permissions: []Permission{{Instance("top", "vm1"), CanUpdateState}}, Members: []Member{{MethodUser, "carol"}}},
	}
	for _, g := range groups {
		if err := a.CreateGroup(root, g); err != nil {
			t.Fatal(err)
		}
	}
	a.SetProjectTree(map[string]string{"mid": "top", "leaf": "mid", "top": "", "loop1": "loop2", "loop2": "loop1"})
	// Users hold what the groups naming them grant.
	alice := Identity{Kind: KindUser, Name: "alice"}
	bob := Identity{Kind: KindUser, Name: "bob"}
	carol := Identity{Kind: KindUser, Name: "carol"}
	tests := []struct {
		id   Identity
		o    Object
		e    Entitlement
		want bool
	}{
		{alice, Instance("top", "vm1"), CanView, true},
		{alice, Instance("mid", "vm1"), CanView, true},
		{alice, Instance("leaf", "vm1"), CanView, true},
		{alice, Instance("side", "vm1"), CanView, false},
		{alice, Instance("leaf", "vm1"), CanUpdateState, false},
		{alice, Project("leaf"), CanView, true},
		{alice, Project("leaf"), CanManageInstances, true}, // held on mid
		{alice, Project("mid"), CanManageInstances, true},
		{alice, Project("top"), CanManageInstances, false}, // not upwards
		{alice, Instance("leaf", "vm1"), CanDelete, true},
		{alice, Instance("top", "vm1"), CanDelete, false},
		{bob, Instance("leaf", "vm1"), CanUpdateState, true},
		{bob, Instance("leaf", "vm1"), CanExec, false},
		{bob, Project("leaf"), CanManageInstances, false},
		{bob, Project("leaf"), CanEdit, false},
		{bob, Instance("loop1", "x"), CanView, false}, // a loop ends
		{carol, Instance("top", "vm1"), CanUpdateState, true},
		{carol, Instance("mid", "vm1"), CanUpdateState, false}, // object grants are not inherited
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s", tt.id.Name, tt.o, tt.e), func(t *testing.T) {
			ctx := WithIdentity(context.Background(), tt.id)
			if got := a.Allowed(ctx, tt.o, tt.e); got != tt.want {
				t.Fatalf("Allowed = %v, want %v", got, tt.want)
			}
		})
	}
	// A hidden project's instance is 404, a visible one's 403.
	ctx := WithIdentity(context.Background(), alice)
	if err := a.Check(ctx, Instance("side", "vm1"), CanView); err == nil || !isNotFound(err) {
		t.Fatalf("check in a project alice cannot see: %v, want not found", err)
	}
	a.SetProjectTree(nil)
	if a.Allowed(ctx, Instance("leaf", "vm1"), CanView) {
		t.Fatal("inherited grant survived the tree going flat")
	}
}

func isNotFound(err error) bool { return err != nil && fmt.Sprint(err) == `instance "vm1" not found` }

// BenchmarkCheckInherited is a check granted four levels up a five-level
// tree, among 50 groups.
func BenchmarkCheckInherited(b *testing.B) {
	a := New(nil)
	root := WithIdentity(context.Background(), unix)
	for i := range 50 {
		g := Group{Name: fmt.Sprintf("g%d", i), Permissions: []Permission{{Project(fmt.Sprintf("p%d", i)), CanViewInstances}}}
		if err := a.CreateGroup(root, g); err != nil {
			b.Fatal(err)
		}
	}
	a.SetProjectTree(map[string]string{"l1": "p7", "l2": "l1", "l3": "l2", "l4": "l3"})
	id := Identity{Kind: KindCertificate, Fingerprint: "ff", Type: "client", Restricted: true, Groups: []string{"g3", "g7"}}
	ctx := WithIdentity(context.Background(), id)
	for b.Loop() {
		if err := a.Check(ctx, Instance("l4", "vm"), CanView); err != nil {
			b.Fatal(err)
		}
	}
}
