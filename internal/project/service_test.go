package project

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/cuid"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// fakeUsage is a UsageSource with fixed figures per project.
type fakeUsage map[string]Usage

func (f fakeUsage) ProjectUsage(_ context.Context, project string) (Usage, error) {
	return f[project], nil
}

type fixture struct {
	svc *Service
	db  *sql.DB // the same database, to add rows the core will own
	ctx context.Context
}

func newFixture(t *testing.T, extra ...UsageSource) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hangar.db")
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	db, err := sql.Open("sqlite", path+"?_foreign_keys=1&_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s := &Service{Store: st, HostMemory: func() (int64, error) { return 8 << 30, nil }}
	s.Sources = append([]UsageSource{StoreCounts{s}}, extra...)
	return &fixture{svc: s, db: db, ctx: context.Background()}
}

func (f *fixture) create(t *testing.T, name, parent string, config map[string]string) {
	t.Helper()
	if err := f.svc.Create(f.ctx, Project{Name: name, Parent: parent, Config: config}); err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
}

// instance adds an instance row to project as the core would.
func (f *fixture) instance(t *testing.T, project, name, typ string) {
	t.Helper()
	if _, err := f.db.Exec(`INSERT INTO instances (uid, project, name, type, architecture, created_at, last_used_at)
		VALUES (?, ?, ?, ?, 'x86_64', '', '')`, cuid.New(), project, name, typ); err != nil {
		t.Fatal(err)
	}
}

// wantErr checks err's kind and that its message has every part.
func wantErr(t *testing.T, what string, err, kind error, parts ...string) {
	t.Helper()
	if kind == nil {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	if !errors.Is(err, kind) {
		t.Errorf("%s: %v, want %v", what, err, kind)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %q does not say %q", what, err, p)
		}
	}
}

func TestValidateConfig(t *testing.T) {
	tests := []struct {
		config map[string]string
		kind   error
		says   string
	}{
		{map[string]string{"features.images": "true", "features.networks": "false"}, nil, ""},
		{map[string]string{"limits.instances": "0", "limits.cpu": "4", "limits.memory": "2GiB", "limits.disk": "10GB"}, nil, ""},
		{map[string]string{"limits.memory": "50%"}, nil, ""},
		{map[string]string{"limits.processes": "", "user.x": "anything"}, nil, ""},
		{map[string]string{"restricted": "true", "features.profiles": "true", "restricted.containers.privilege": "isolated"}, nil, ""},
		{map[string]string{"restricted.devices.disk.paths": "/srv,/home", "restricted.idmap.uid": "1000,2000-2100"}, nil, ""},
		{map[string]string{"bogus": "1"}, errdefs.ErrInvalidArgument, `"bogus"`},
		{map[string]string{"restricted.networks.uplinks": "br0"}, errdefs.ErrInvalidArgument, "restricted.networks.uplinks"},
		{map[string]string{"limits.instances": "-1"}, errdefs.ErrInvalidArgument, "limits.instances"},
		{map[string]string{"limits.instances": "many"}, errdefs.ErrInvalidArgument, "limits.instances"},
		{map[string]string{"limits.cpu": "1.5"}, errdefs.ErrInvalidArgument, "limits.cpu"},
		{map[string]string{"limits.memory": "150%"}, errdefs.ErrInvalidArgument, "limits.memory"},
		{map[string]string{"limits.disk": "10%"}, errdefs.ErrInvalidArgument, "limits.disk"},
		{map[string]string{"features.images": "maybe"}, errdefs.ErrInvalidArgument, "features.images"},
		{map[string]string{"restricted.devices.nic": "sometimes"}, errdefs.ErrInvalidArgument, "restricted.devices.nic"},
		{map[string]string{"restricted.devices.disk.paths": "srv"}, errdefs.ErrInvalidArgument, "absolute"},
		{map[string]string{"restricted.idmap.uid": "20-10"}, errdefs.ErrInvalidArgument, "restricted.idmap.uid"},
		{map[string]string{"restricted": "true", "features.profiles": "false"}, errdefs.ErrInvalidArgument, "own profiles"},
	}
	for _, tt := range tests {
		wantErr(t, "ValidateConfig "+strings.Join(keysOf(tt.config), ","), ValidateConfig(tt.config), tt.kind, tt.says)
	}
}

func keysOf(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func TestValidateName(t *testing.T) {
	for _, name := range []string{"p1", "team-a", "Ünïcode.ok"} {
		if err := ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"", "a/b", "a b", "a_b", "a'b", `a"b`, "*", ".", "..", "a\nb"} {
		wantErr(t, "ValidateName "+name, ValidateName(name), errdefs.ErrInvalidArgument)
	}
}

func TestCreateDefaults(t *testing.T) {
	f := newFixture(t)
	f.create(t, "p1", "", nil)
	f.create(t, "bare", "", map[string]string{"features.profiles": "false", "features.images": "false"})

	p, err := f.svc.Get(f.ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{FeatureImages: "true", FeatureProfiles: "true", FeatureStorageVolumes: "true", FeatureNetworks: ""} {
		if p.Config[k] != want {
			t.Errorf("p1 %s = %q, want %q", k, p.Config[k], want)
		}
	}
	objs, err := f.svc.Contents(f.ctx, "p1")
	if err != nil || len(objs) != 1 || objs[0] != (Object{Kind: KindProfile, Name: "default"}) {
		t.Errorf("p1 contents = %v, %v; want its default profile", objs, err)
	}
	if objs, _ := f.svc.Contents(f.ctx, "bare"); len(objs) != 0 {
		t.Errorf("project without features.profiles has %v", objs)
	}

	for _, tt := range []struct {
		p    Project
		kind error
	}{
		{Project{Name: "p1"}, errdefs.ErrConflict},
		{Project{Name: "a/b"}, errdefs.ErrInvalidArgument},
		{Project{Name: "x", Config: map[string]string{"nope": "1"}}, errdefs.ErrInvalidArgument},
		{Project{Name: "x", Parent: "missing"}, errdefs.ErrNotFound},
	} {
		wantErr(t, "Create "+tt.p.Name, f.svc.Create(f.ctx, tt.p), tt.kind)
	}
}

func TestCheckAddNested(t *testing.T) {
	// root (limits) > mid (limits) > leaf; usage from fixed figures and
	// from instance rows.
	usage := fakeUsage{
		"root": {CPU: 2, Memory: 1 << 30},
		"mid":  {CPU: 1},
		"leaf": {CPU: 1, Memory: 512 << 20, Disk: 5 << 30, Processes: 100},
	}
	f := newFixture(t, usage)
	f.create(t, "root", "", map[string]string{"limits.instances": "3", "limits.cpu": "6", "limits.memory": "25%", "limits.processes": "150"})
	f.create(t, "mid", "root", map[string]string{"limits.containers": "5", "limits.virtual-machines": "1", "limits.disk": "6GiB"})
	f.create(t, "leaf", "mid", nil)
	f.create(t, "other", "", nil)
	f.instance(t, "root", "r1", TypeContainer)
	f.instance(t, "leaf", "l1", TypeVirtualMachine)

	tests := []struct {
		name    string
		project string
		delta   Usage
		kind    error
		says    []string
	}{
		{"room left", "leaf", Usage{Instances: 1, Containers: 1}, nil, nil},
		{"ancestor count", "leaf", Usage{Instances: 2, Containers: 2}, errdefs.ErrForbidden,
			[]string{`project "root" (an ancestor of "leaf")`, "limits.instances=3", "exceeded by 1", "2 in use"}},
		{"parent vm limit", "leaf", Usage{Instances: 1, VMs: 1}, errdefs.ErrForbidden,
			[]string{`project "mid" (an ancestor of "leaf")`, "limits.virtual-machines=1", "exceeded by 1"}},
		{"own limit", "mid", Usage{Instances: 1, VMs: 1}, errdefs.ErrForbidden, []string{`project "mid":`, "limits.virtual-machines"}},
		{"cpu sums the subtree", "leaf", Usage{CPU: 3}, errdefs.ErrForbidden, []string{"limits.cpu=6", "exceeded by 1", "4 in use"}},
		{"cpu fits", "mid", Usage{CPU: 2}, nil, nil},
		{"memory percent", "leaf", Usage{Memory: 1 << 30}, errdefs.ErrForbidden, []string{"limits.memory=25%", "exceeded by 512MiB"}},
		{"disk bytes", "leaf", Usage{Disk: 2 << 30}, errdefs.ErrForbidden, []string{"limits.disk=6GiB", "exceeded by 1GiB"}},
		{"processes", "leaf", Usage{Processes: 51}, errdefs.ErrForbidden, []string{"limits.processes=150", "exceeded by 1"}},
		{"unlimited project", "other", Usage{Instances: 100, CPU: 100}, nil, nil},
		{"shrinking is never refused", "leaf", Usage{Instances: -1, CPU: -5}, nil, nil},
		{"unknown project", "nope", Usage{Instances: 1}, errdefs.ErrNotFound, nil},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, f.svc.CheckAdd(f.ctx, tt.project, tt.delta), tt.kind, tt.says...)
	}

	state, err := f.svc.State(f.ctx, "mid")
	if err != nil {
		t.Fatal(err)
	}
	for res, want := range map[string]Resource{
		"instances": {-1, 1}, "virtual-machines": {1, 1}, "containers": {5, 0}, "cpu": {-1, 2},
		"disk": {6 << 30, 5 << 30}, "memory": {-1, 512 << 20}, "networks": {-1, 0}, "processes": {-1, 100},
	} {
		if state[res] != want {
			t.Errorf("State(mid)[%s] = %+v, want %+v", res, state[res], want)
		}
	}
	if len(state) != 8 {
		t.Errorf("State has %d resources, want 8: %v", len(state), state)
	}
}

func TestUpdate(t *testing.T) {
	f := newFixture(t, fakeUsage{"busy": {Memory: 2 << 30}})
	f.create(t, "busy", "", nil)
	f.create(t, "kid", "busy", nil)
	f.create(t, "empty", "", nil)
	f.create(t, "capped", "", map[string]string{"limits.instances": "1"})
	f.instance(t, "busy", "c1", TypeContainer)
	f.instance(t, "kid", "c2", TypeContainer)
	f.instance(t, "kid", "v1", TypeVirtualMachine)
	str := func(s string) *string { return &s }
	// cfg is a config with the features a new project has, and kv.
	cfg := func(kv ...string) map[string]string {
		m := map[string]string{FeatureImages: "true", FeatureProfiles: "true", FeatureStorageVolumes: "true"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	tests := []struct {
		name    string
		project string
		put     Put
		kind    error
		says    []string
	}{
		{"limit at usage", "busy", Put{Config: cfg("limits.instances", "3")}, nil, nil},
		{"limit below usage names users", "busy", Put{Config: cfg("limits.instances", "2")}, errdefs.ErrInvalidArgument,
			[]string{"limits.instances=2", `project "busy"`, "3 instances in use", "c1", "kid/c2", "kid/v1"}},
		{"vm limit names vms", "busy", Put{Config: cfg("limits.virtual-machines", "0")}, errdefs.ErrInvalidArgument,
			[]string{"limits.virtual-machines=0", "1 virtual machines in use by kid/v1"}},
		{"memory below usage", "busy", Put{Config: cfg("limits.memory", "1GiB")}, errdefs.ErrInvalidArgument,
			[]string{"limits.memory=1GiB", "2GiB memory in use"}},
		{"feature on non-empty", "busy", Put{Config: map[string]string{FeatureImages: "false", FeatureProfiles: "true", FeatureStorageVolumes: "true"}},
			errdefs.ErrInvalidArgument, []string{`"features.images" cannot be disabled`, "instances c1"}},
		{"default features fixed", Default, Put{Config: cfg()}, errdefs.ErrInvalidArgument, []string{"default project"}},
		{"features of an empty project", "empty", Put{Config: cfg(FeatureNetworks, "true")}, nil, nil},
		{"bad key", "empty", Put{Config: cfg("limits.bananas", "1")}, errdefs.ErrInvalidArgument, []string{"limits.bananas"}},
		{"loop", "busy", Put{Config: cfg(), Parent: str("kid")},
			errdefs.ErrInvalidArgument, []string{"loop"}},
		{"self", "busy", Put{Config: cfg(), Parent: str("busy")}, errdefs.ErrInvalidArgument, []string{"loop"}},
		{"missing parent", "empty", Put{Config: cfg(), Parent: str("nope")}, errdefs.ErrNotFound, nil},
		{"new parent's limit", "kid", Put{Config: cfg(), Parent: str("capped")}, errdefs.ErrForbidden,
			[]string{`project "capped" (an ancestor of "kid")`, "limits.instances=1", "exceeded by 1"}},
		{"missing project", "nope", Put{}, errdefs.ErrNotFound, nil},
		{"precondition", "empty", Put{Config: cfg()}, errdefs.ErrPreconditionFailed, nil},
	}
	for _, tt := range tests {
		var pre Precondition
		if tt.name == "precondition" {
			pre = func(Project) error { return errdefs.PreconditionFailed("etag") }
		}
		wantErr(t, tt.name, f.svc.Update(f.ctx, tt.project, tt.put, pre), tt.kind, tt.says...)
	}

	// Turning features.profiles off drops the default profile; on again
	// brings it back.
	noProfiles := Put{Config: cfg(FeatureProfiles, "false", FeatureNetworks, "true")}
	wantErr(t, "profiles off", f.svc.Update(f.ctx, "empty", noProfiles, nil), nil)
	if objs, _ := f.svc.Contents(f.ctx, "empty"); len(objs) != 0 {
		t.Errorf("after features.profiles=false: %v", objs)
	}
	wantErr(t, "profiles on", f.svc.Update(f.ctx, "empty", Put{Config: cfg()}, nil), nil)
	if objs, _ := f.svc.Contents(f.ctx, "empty"); len(objs) != 1 {
		t.Errorf("after features.profiles=true: %v", objs)
	}
	// Moving to top level keeps the subtree; nil Parent keeps the parent.
	wantErr(t, "keep parent", f.svc.Update(f.ctx, "kid", Put{Config: cfg(), Description: "d"}, nil), nil)
	if p, _ := f.svc.Get(f.ctx, "kid"); p.Parent != "busy" || p.Description != "d" {
		t.Errorf("nil Parent changed it: %+v", p)
	}
	wantErr(t, "to top level", f.svc.Update(f.ctx, "kid", Put{Config: cfg(), Parent: str("")}, nil), nil)
	if p, _ := f.svc.Get(f.ctx, "kid"); p.Parent != "" {
		t.Errorf("kid parent = %q after moving to top level", p.Parent)
	}
}

func TestRenameDelete(t *testing.T) {
	f := newFixture(t)
	f.create(t, "top", "", nil)
	f.create(t, "kid", "top", nil)
	f.create(t, "full", "", nil)
	f.instance(t, "full", "c1", TypeContainer)
	if _, err := f.db.Exec(`INSERT INTO profiles (project, name) VALUES ('full', 'web')`); err != nil {
		t.Fatal(err)
	}

	wantErr(t, "rename keeps children", f.svc.Rename(f.ctx, "top", "top2"), nil)
	if p, _ := f.svc.Get(f.ctx, "kid"); p.Parent != "top2" {
		t.Errorf("kid parent after rename = %q", p.Parent)
	}
	tests := []struct {
		name string
		err  error
		kind error
		says []string
	}{
		{"rename non-empty", f.svc.Rename(f.ctx, "full", "x"), errdefs.ErrConflict, []string{"instances c1", "profiles web"}},
		{"rename default", f.svc.Rename(f.ctx, Default, "x"), errdefs.ErrForbidden, nil},
		{"rename to slash", f.svc.Rename(f.ctx, "kid", "a/b"), errdefs.ErrInvalidArgument, []string{"slashes"}},
		{"rename to taken", f.svc.Rename(f.ctx, "kid", "full"), errdefs.ErrConflict, nil},
		{"rename missing", f.svc.Rename(f.ctx, "nope", "x"), errdefs.ErrNotFound, nil},
		{"delete non-empty", f.svc.Delete(f.ctx, "full"), errdefs.ErrConflict, []string{`project "full" is not empty`, "instances c1", "profiles web"}},
		{"delete with children", f.svc.Delete(f.ctx, "top2"), errdefs.ErrConflict, []string{"child projects kid"}},
		{"delete default", f.svc.Delete(f.ctx, Default), errdefs.ErrForbidden, nil},
		{"delete missing", f.svc.Delete(f.ctx, "nope"), errdefs.ErrNotFound, nil},
		{"delete leaf", f.svc.Delete(f.ctx, "kid"), nil, nil},
		{"delete emptied parent", f.svc.Delete(f.ctx, "top2"), nil, nil},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, tt.err, tt.kind, tt.says...)
	}
	if _, err := f.svc.Get(f.ctx, "full"); err != nil {
		t.Errorf("refused delete lost the project: %v", err)
	}
}
