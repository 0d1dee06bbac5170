package auth

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

var (
	unix       = Identity{Kind: KindUnix, Name: "root"}
	admin      = Identity{Kind: KindCertificate, Name: "adm", Fingerprint: "aa", Type: "client"}
	restricted = Identity{Kind: KindCertificate, Name: "r", Fingerprint: "bb", Type: "client", Restricted: true, Projects: []string{"p1"}}
	metrics    = Identity{Kind: KindCertificate, Name: "m", Fingerprint: "cc", Type: "metrics"}
	untrusted  = Identity{Kind: KindUntrusted}
	// viewer and ops hold nothing of their own: only their groups.
	viewer   = Identity{Kind: KindCertificate, Name: "v", Fingerprint: "dd", Type: "client", Restricted: true}
	ops      = Identity{Kind: KindToken, Name: "ci", Restricted: true}
	untrustG = Identity{Kind: KindUntrusted, Groups: []string{"server-viewers"}}
	// Bearer tokens as trust.TokenIdentity builds them: the role is Type.
	tokAdmin    = Identity{Kind: KindToken, Name: "ta", Type: "admin"}
	tokOperator = Identity{Kind: KindToken, Name: "to", Type: "operator", Restricted: true, Projects: []string{"p1"}}
	tokViewer   = Identity{Kind: KindToken, Name: "tv", Type: "viewer", Restricted: true, Projects: []string{"p1"}}
	// A viewer token in a group gets the group's rights too.
	tokViewerG = Identity{Kind: KindToken, Name: "ci", Type: "viewer", Restricted: true, Projects: []string{"p1"}}
	deleter    = Identity{Kind: KindCertificate, Name: "d", Fingerprint: "ee", Type: "client", Restricted: true, Groups: []string{"c1-deleter"}}
)

func testGroups() []Group {
	return []Group{
		{Name: "server-viewers", Permissions: []Permission{{Server(), Viewer}},
			Members: []Member{{MethodTLS, "dd"}}},
		{Name: "p2-ops", Permissions: []Permission{{Project("p2"), Operator}},
			Members: []Member{{MethodToken, "ci"}}},
		{Name: "c1-deleter", Permissions: []Permission{{Instance("p3", "c1"), CanDelete}, {Project("p4"), CanManageInstances}}},
	}
}

func newTestAuthorizer(t testing.TB) *Authorizer {
	t.Helper()
	a := New(nil)
	ctx := WithIdentity(context.Background(), unix)
	for _, g := range testGroups() {
		if err := a.CreateGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func TestCheck(t *testing.T) {
	a := newTestAuthorizer(t)
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
		{unix, Server(), Admin, ok},
		{unix, Instance("p9", "x"), CanExec, ok},
		{Identity{}, Server(), CanEdit, forbidden}, // zero Kind: not the daemon
		{From(context.Background()), Project("p1"), CanDelete, ok},
		{admin, Server(), CanEdit, ok},
		{admin, Project("p1"), CanDelete, ok},

		{restricted, Server(), CanView, ok},
		{restricted, Server(), CanEdit, forbidden},
		{restricted, Server(), CanViewMetrics, forbidden},
		{restricted, Server(), CanCreateProjects, forbidden},
		{restricted, Project("p1"), CanView, ok},
		{restricted, Project("p1"), CanManageInstances, ok},
		{restricted, Project("p1"), CanEdit, forbidden},
		{restricted, Project("p1"), CanDelete, forbidden},
		{restricted, Project("p2"), CanView, notFound},
		{restricted, Project("default"), CanView, notFound},
		{restricted, Instance("p1", "c1"), CanExec, ok},
		{restricted, Instance("p1", "c1"), CanDelete, ok},
		{restricted, Instance("p2", "c1"), CanView, notFound},
		{restricted, Instance("default", "c1"), CanEdit, notFound},
		{restricted, Profile("p1", "default"), CanEdit, ok},
		{restricted, StoragePool("pool"), CanView, ok},
		{restricted, StoragePool("pool"), CanEdit, forbidden},
		{restricted, StorageVolume("p1", "pool", "custom", "v"), CanDelete, ok},
		{restricted, StorageVolume("p2", "pool", "custom", "v"), CanView, notFound},
		{restricted, Network("default", "br0"), CanView, ok},
		{restricted, Network("default", "br0"), CanEdit, forbidden},
		{restricted, Network("p2", "br0"), CanView, notFound},
		{restricted, Image("default", "abc"), CanView, ok},
		{restricted, Image("default", "abc"), CanDelete, forbidden},
		{restricted, Profile("default", "default"), CanEdit, forbidden},
		{restricted, Certificate("aa"), CanView, forbidden},

		{metrics, Server(), CanViewMetrics, ok},
		{metrics, Server(), CanView, forbidden},
		{metrics, Server(), CanEdit, forbidden},
		{metrics, Project("default"), CanView, notFound},
		{metrics, Instance("default", "c1"), CanView, notFound},

		{untrusted, Server(), CanView, forbidden},
		{untrusted, Instance("default", "c1"), CanView, notFound},
		{untrustG, Instance("default", "c1"), CanView, notFound}, // groups do not lift untrusted

		{viewer, Server(), CanView, ok},
		{viewer, Server(), CanViewMetrics, ok},
		{viewer, Server(), Viewer, ok},
		{viewer, Server(), CanEdit, forbidden},
		{viewer, Project("p7"), CanViewOperations, ok},
		{viewer, Instance("p7", "c1"), CanView, ok},
		{viewer, Instance("p7", "c1"), CanExec, forbidden},
		{viewer, StoragePool("pool"), CanView, ok},

		{ops, Project("p2"), CanView, ok},
		{ops, Project("p2"), CanEdit, forbidden},
		{ops, Instance("p2", "c1"), CanManageBackups, ok},
		{ops, Instance("p1", "c1"), CanView, notFound},
		{ops, Server(), CanView, ok}, // restricted: GET /1.0
		{ops, Server(), CanViewResources, forbidden},

		{tokAdmin, Server(), Admin, ok},
		{tokAdmin, Instance("p9", "c1"), CanExec, ok},
		{tokOperator, Server(), CanView, ok},
		{tokOperator, Server(), CanEdit, forbidden},
		{tokOperator, Project("p1"), Operator, ok},
		{tokOperator, Project("p1"), CanManageInstances, ok},
		{tokOperator, Project("p1"), CanEdit, forbidden},
		{tokOperator, Instance("p1", "c1"), CanExec, ok},
		{tokOperator, Instance("p2", "c1"), CanView, notFound},
		{tokViewer, Server(), CanView, ok},
		{tokViewer, Server(), CanEdit, forbidden},
		{tokViewer, Server(), CanViewMetrics, forbidden},
		{tokViewer, Project("p1"), CanView, ok},
		{tokViewer, Project("p1"), CanViewEvents, ok},
		{tokViewer, Project("p1"), CanManageInstances, forbidden},
		{tokViewer, Project("p1"), Operator, forbidden},
		{tokViewer, Instance("p1", "c1"), CanView, ok},
		{tokViewer, Instance("p1", "c1"), CanExec, forbidden},
		{tokViewer, Instance("p1", "c1"), CanEdit, forbidden},
		{tokViewer, Instance("p1", "c1"), CanDelete, forbidden},
		{tokViewer, Instance("p2", "c1"), CanView, notFound},
		{tokViewer, Instance("p2", "c1"), CanDelete, notFound},
		{tokViewer, Image("default", "abc"), CanView, ok},
		{tokViewer, Image("default", "abc"), CanDelete, forbidden},
		{tokViewer, StoragePool("pool"), CanView, ok},
		{tokViewer, StoragePool("pool"), CanEdit, forbidden},
		{tokViewerG, Instance("p2", "c1"), CanExec, ok}, // its group: operator on p2
		{tokViewerG, Instance("p1", "c1"), CanExec, forbidden},

		{deleter, Instance("p3", "c1"), CanDelete, ok},
		{deleter, Instance("p3", "c1"), CanView, ok},
		{deleter, Instance("p3", "c1"), CanEdit, forbidden},
		{deleter, Project("p3"), CanView, ok},
		{deleter, Instance("p3", "c2"), CanView, forbidden},
		{deleter, Project("p4"), CanManageInstances, ok},
		{deleter, Instance("p4", "any"), CanDelete, ok},
		{deleter, Instance("p4", "any"), CanExec, forbidden},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s/%s/%s", tt.id.Kind, tt.id.Name, tt.o, tt.e), func(t *testing.T) {
			ctx := context.Background()
			if tt.id.Kind != "" || tt.id.Name != "" {
				ctx = WithIdentity(ctx, tt.id)
			} else {
				ctx = WithIdentity(ctx, Identity{})
			}
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
			if (got == ok) != a.Allowed(ctx, tt.o, tt.e) {
				t.Fatalf("Allowed disagrees with Check")
			}
		})
	}
}

func TestNotFoundLeaksNothing(t *testing.T) {
	a := newTestAuthorizer(t)
	ctx := WithIdentity(context.Background(), restricted)
	err := a.Check(ctx, Instance("p2", "secret"), CanView)
	if got, want := err.Error(), `instance "secret" not found`; got != want {
		t.Fatalf("error %q, want the words of a missing instance %q", got, want)
	}
}

func TestGroupsAdmin(t *testing.T) {
	a := newTestAuthorizer(t)
	root := WithIdentity(context.Background(), unix)
	tests := []struct {
		name string
		ctx  context.Context
		op   func(ctx context.Context) error
		kind error
	}{
		{"restricted may not create", WithIdentity(root, restricted), func(ctx context.Context) error {
			return a.CreateGroup(ctx, Group{Name: "x"})
		}, errdefs.ErrForbidden},
		{"viewer may not delete", WithIdentity(root, viewer), func(ctx context.Context) error {
			return a.DeleteGroup(ctx, "p2-ops")
		}, errdefs.ErrForbidden},
		{"viewer may list", WithIdentity(root, viewer), func(ctx context.Context) error {
			_, err := a.Groups(ctx)
			return err
		}, nil},
		{"restricted may not list", WithIdentity(root, restricted), func(ctx context.Context) error {
			_, err := a.Groups(ctx)
			return err
		}, errdefs.ErrForbidden},
		{"duplicate", root, func(ctx context.Context) error { return a.CreateGroup(ctx, Group{Name: "p2-ops"}) }, errdefs.ErrConflict},
		{"bad name", root, func(ctx context.Context) error { return a.CreateGroup(ctx, Group{Name: "a/b"}) }, errdefs.ErrInvalidArgument},
		{"bad entitlement", root, func(ctx context.Context) error {
			return a.CreateGroup(ctx, Group{Name: "y", Permissions: []Permission{{Server(), CanExec}}})
		}, errdefs.ErrInvalidArgument},
		{"bad type", root, func(ctx context.Context) error {
			return a.CreateGroup(ctx, Group{Name: "y", Permissions: []Permission{{Object{Type: "cluster"}, CanView}}})
		}, errdefs.ErrInvalidArgument},
		{"instance without project", root, func(ctx context.Context) error {
			return a.CreateGroup(ctx, Group{Name: "y", Permissions: []Permission{{Object{Type: TypeInstance, Name: "c"}, CanView}}})
		}, errdefs.ErrInvalidArgument},
		{"bad member", root, func(ctx context.Context) error {
			return a.CreateGroup(ctx, Group{Name: "y", Members: []Member{{"oidc", "x"}}})
		}, errdefs.ErrInvalidArgument},
		{"rename to existing", root, func(ctx context.Context) error { return a.RenameGroup(ctx, "p2-ops", "c1-deleter") }, errdefs.ErrConflict},
		{"rename missing", root, func(ctx context.Context) error { return a.RenameGroup(ctx, "nope", "x") }, errdefs.ErrNotFound},
		{"update missing", root, func(ctx context.Context) error { return a.UpdateGroup(ctx, "nope", Group{}) }, errdefs.ErrNotFound},
		{"delete missing", root, func(ctx context.Context) error { return a.DeleteGroup(ctx, "nope") }, errdefs.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.op(tt.ctx)
			if tt.kind == nil && err != nil || tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
		})
	}
}

// A group change takes effect on the next check: rename keeps members,
// update replaces permissions, delete removes them.
func TestGroupChangesApply(t *testing.T) {
	a := newTestAuthorizer(t)
	root := WithIdentity(context.Background(), unix)
	ci := WithIdentity(root, ops)
	obj := Instance("p2", "c1")
	step := func(what string, err error, want bool) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := a.Allowed(ci, obj, CanExec); got != want {
			t.Fatalf("after %s: allowed %v, want %v", what, got, want)
		}
	}
	step("create", nil, true)
	step("rename", a.RenameGroup(root, "p2-ops", "ops"), true)
	step("update", a.UpdateGroup(root, "ops", Group{Permissions: []Permission{{Project("p2"), Viewer}}, Members: []Member{{MethodToken, "ci"}}}), false)
	if !a.Allowed(ci, obj, CanView) {
		t.Fatal("viewer of p2 cannot view its instance")
	}
	step("delete", a.DeleteGroup(root, "ops"), false)
	if a.Allowed(ci, obj, CanView) {
		t.Fatal("deleted group still grants")
	}
}

// BenchmarkCheck times one check against groups of a realistic size: 50
// groups of 20 permissions each, the identity in 3 of them (one by
// membership, two named on the identity), the answer found in the last.
func BenchmarkCheck(b *testing.B) {
	a := New(nil)
	root := WithIdentity(context.Background(), unix)
	for i := range 50 {
		g := Group{Name: fmt.Sprintf("g%d", i)}
		for j := range 20 {
			g.Permissions = append(g.Permissions, Permission{Instance(fmt.Sprintf("p%d", i), fmt.Sprintf("c%d", j)), CanExec})
		}
		if i == 49 {
			g.Members = []Member{{MethodTLS, "ff"}}
		}
		if err := a.CreateGroup(root, g); err != nil {
			b.Fatal(err)
		}
	}
	id := Identity{Kind: KindCertificate, Fingerprint: "ff", Type: "client", Restricted: true, Projects: []string{"p0"}, Groups: []string{"g3", "g7"}}
	ctx := WithIdentity(context.Background(), id)
	b.Run("allowed", func(b *testing.B) {
		for b.Loop() {
			if err := a.Check(ctx, Instance("p49", "c19"), CanExec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("denied-notfound", func(b *testing.B) {
		for b.Loop() {
			if err := a.Check(ctx, Instance("p48", "c19"), CanExec); err == nil {
				b.Fatal("allowed")
			}
		}
	})
	b.Run("admin", func(b *testing.B) {
		for b.Loop() {
			if err := a.Check(root, Instance("p48", "c19"), CanExec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
