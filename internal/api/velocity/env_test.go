package velocity

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// env is a real store, project service, authorizer and instance core
// (with no drivers: nothing here starts) behind the edge. The core's
// create needs runtimes and storage, so VMs are records written to the
// store and loaded, as the daemon loads them at start.
type env struct {
	ctx      context.Context
	st       *store.Store
	projects *project.Service
	authz    *auth.Authorizer
	core     *instance.Service
	srv      *Server
	h        http.Handler
}

// fakeUsers logs in every user whose password is "pw"; a user in revoked
// has been deleted or had its password changed after every login.
type fakeUsers struct{ revoked *sync.Map }

func (f fakeUsers) SessionValid(name string, _ time.Time) bool {
	_, gone := f.revoked.Load(name)
	return !gone
}

func (fakeUsers) Login(_ context.Context, name, password, _ string) (auth.Identity, error) {
	if password != "pw" {
		return auth.Identity{}, errdefs.Forbidden("invalid username or password")
	}
	// A user as trust.Users builds one: it holds what its groups grant.
	return auth.Identity{Kind: auth.KindUser, Name: name}, nil
}

// fakeNICs is the administrator's host NIC table.
type fakeNICs []HostNIC

func (f fakeNICs) HostNICs(context.Context) ([]HostNIC, error) { return f, nil }

// fakeVolumes holds media by "pool/name".
type fakeVolumes map[string]string

func (f fakeVolumes) CustomVolume(_ context.Context, pool, name string) (string, error) {
	if ct, ok := f[pool+"/"+name]; ok {
		return ct, nil
	}
	return "", errdefs.NotFound("storage volume %q not found", name)
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hangar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{ctx: ctx, st: st, authz: auth.New(nil)}
	e.projects = &project.Service{Store: st, HostMemory: func() (int64, error) { return 64 << 30, nil }}
	e.core = instance.New(instance.Config{DB: st, Authorizer: e.authz, Quota: e.projects, Architecture: "x86_64", HostMemory: 64 << 30,
		Log: slog.New(slog.DiscardHandler)})
	e.projects.Sources = []project.UsageSource{project.UsageFunc(e.core.ProjectUsage)}
	e.srv = &Server{Core: CoreOf(e.core), Projects: e.projects, Auth: e.authz, Users: fakeUsers{revoked: &sync.Map{}},
		NICs:    fakeNICs{{ID: "lan", Interface: "veth9", Type: "physical"}, {ID: "br", Interface: "br9", Type: "bridge"}, {ID: "gone", Interface: "eth7"}},
		Volumes: fakeVolumes{"default/iso": "block", "default/fs": "filesystem", "default/cd": "iso"}, Log: slog.New(slog.DiscardHandler)}
	e.h = e.srv.Handler()
	return e
}

// tree makes projects top > mid > leaf (and side, apart).
func (e *env) tree(t testing.TB, limits map[string]map[string]string) {
	t.Helper()
	for _, p := range []project.Project{{Name: "top"}, {Name: "mid", Parent: "top"}, {Name: "leaf", Parent: "mid"}, {Name: "side"}} {
		p.Config = limits[p.Name]
		if err := e.projects.Create(e.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	e.syncTree(t)
	if err := e.core.ReloadProfiles(e.ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *env) syncTree(t testing.TB) {
	ps, err := e.projects.List(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range ps {
		m[p.Name] = p.Parent
	}
	e.authz.SetProjectTree(m)
}

// grant makes a group of user holding e on project p.
func (e *env) grant(t testing.TB, user string, perms ...auth.Permission) {
	t.Helper()
	g := auth.Group{Name: "g-" + user, Permissions: perms, Members: []auth.Member{{Method: auth.MethodUser, ID: user}}}
	if err := e.authz.CreateGroup(auth.WithIdentity(e.ctx, auth.Daemon), g); err != nil {
		t.Fatal(err)
	}
}

// addVM writes a stopped VM record and reloads the core.
func (e *env) addVMs(t testing.TB, proj string, n int, cfg map[string]string) []string {
	t.Helper()
	var ids []string
	for i := range n {
		rec := store.Instance{Project: proj, Name: fmt.Sprintf("vm%d", i), Type: string(instance.TypeVM), Architecture: "x86_64",
			Config: map[string]string{}, Devices: map[string]map[string]string{}, Profiles: []string{"default"}}
		for k, v := range cfg {
			rec.Config[k] = v
		}
		if err := e.st.CreateInstance(e.ctx, &rec); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.UID)
	}
	if err := e.core.Load(e.ctx); err != nil {
		t.Fatal(err)
	}
	return ids
}

// login returns an authkey for user.
func (e *env) login(t testing.TB, user string) string {
	t.Helper()
	rec := e.call("POST", "/u/auth", map[string]any{"name": user, "password": "pw"})
	if rec.Code != 200 {
		t.Fatalf("login %s: %d %s", user, rec.Code, rec.Body)
	}
	var out struct {
		AuthKey string `json:"authkey"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out.AuthKey
}

func (e *env) call(method, path string, body any) *httptest.ResponseRecorder {
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case nil:
	default:
		b, _ = json.Marshal(v)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(b))
	req.RemoteAddr = "192.0.2.1:1234"
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}
