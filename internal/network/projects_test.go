package network

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
)

// addProjects stores project rows beside default, as the projects domain
// would.
func (e *testEnv) addProjects(t *testing.T, names ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", e.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, n := range names {
		if _, err := db.Exec("INSERT INTO projects (name) VALUES (?)", n); err != nil {
			t.Fatalf("add project %s: %v", n, err)
		}
	}
}

func inProject(name string, networks bool) context.Context {
	cfg := map[string]string{}
	if networks {
		cfg[project.FeatureNetworks] = "true"
	}
	return project.WithProject(context.Background(), project.Project{Name: name, Config: cfg})
}

// TestNetworkProjects: a network belongs to its scope project; names stay
// host-wide; another project's network is not found by any verb.
func TestNetworkProjects(t *testing.T) {
	e := newEnv(t)
	e.addProjects(t, "p1", "p2")
	def, p1, p2 := context.Background(), inProject("p1", true), inProject("p2", false)

	for _, tt := range []struct {
		name    string
		ctx     context.Context
		net     string
		wantErr error
		msg     string
	}{
		{"br1 in p1", p1, "br1", nil, ""},
		{"br1 again from default", def, "br1", errdefs.ErrConflict, "in another project"},
		{"br1 again in p1", p1, "br1", errdefs.ErrConflict, "already exists"},
		{"br2 in default", def, "br2", nil, ""},
		{"p2 without features.networks makes a default one", p2, "br3", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := e.m.Create(tt.ctx, CreateRequest{Name: tt.net, Config: map[string]string{"ipv4.address": "none", "ipv6.address": "none"}})
			if (tt.wantErr == nil) != (err == nil) || (err != nil && (!errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg))) {
				t.Errorf("create: %v, want %v %q", err, tt.wantErr, tt.msg)
			}
		})
	}

	names := func(ctx context.Context) []string {
		nets, err := e.m.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, n := range nets {
			if n.Managed {
				out = append(out, n.Name)
			} else if n.Name == "br1" {
				out = append(out, "host:br1") // p1's bridge seen as a host interface
			}
		}
		return out
	}
	for _, tt := range []struct {
		ctx  context.Context
		want []string
	}{{def, []string{"br2", "br3"}}, {p1, []string{"br1"}}, {p2, []string{"br2", "br3"}}} {
		if got := names(tt.ctx); !slices.Equal(got, tt.want) {
			t.Errorf("%s lists %v, want %v", project.Name(tt.ctx), got, tt.want)
		}
	}
	for _, tt := range []struct {
		project string
		want    int64
	}{{"default", 2}, {"p1", 1}, {"p2", 0}} {
		if n, err := e.m.NetworkCount(def, tt.project); err != nil || n != tt.want {
			t.Errorf("NetworkCount(%s) = %d, %v; want %d", tt.project, n, err, tt.want)
		}
	}

	for _, tt := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"get", func(ctx context.Context) error { _, err := e.m.Get(ctx, "br1"); return err }},
		{"type", func(ctx context.Context) error { _, err := e.m.NetworkType(ctx, "br1"); return err }},
		{"update", func(ctx context.Context) error { return e.m.Update(ctx, "br1", Put{}) }},
		{"patch", func(ctx context.Context) error { return e.m.Patch(ctx, "br1", Put{}) }},
		{"rename", func(ctx context.Context) error { return e.m.Rename(ctx, "br1", "br9") }},
		{"delete", func(ctx context.Context) error { return e.m.Delete(ctx, "br1") }},
		{"forwards", func(ctx context.Context) error { _, err := e.m.Forwards(ctx, "br1"); return err }},
		{"delete forward", func(ctx context.Context) error { return e.m.DeleteForward(ctx, "br1", "192.0.2.1") }},
		{"leases", func(ctx context.Context) error { _, err := e.m.Leases(ctx, "br1"); return err }},
		{"state", func(ctx context.Context) error { _, err := e.m.State(ctx, "br1"); return err }},
		{"NIC", func(ctx context.Context) error {
			_, err := e.m.Allocate(ctx, NICRequest{InstanceID: 1, Device: "eth0", Network: "br1"})
			return err
		}},
	} {
		for _, ctx := range []context.Context{def, p2} {
			t.Run(tt.name+" from "+project.Name(ctx), func(t *testing.T) {
				if err := tt.do(ctx); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("%v, want not found", err)
				}
			})
		}
	}
	if _, err := e.m.Get(p1, "br2"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("p1 gets default's br2: %v", err)
	}
	if err := e.m.Delete(p1, "br1"); err != nil {
		t.Fatalf("p1 deletes its br1: %v", err)
	}
	if err := e.m.Create(def, CreateRequest{Name: "br1", Config: map[string]string{"ipv4.address": "none", "ipv6.address": "none"}}); err != nil {
		t.Errorf("br1 in default once p1's went: %v", err)
	}
}
