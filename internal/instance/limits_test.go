package instance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// fourCPUs is the host the tests check against: CPUs 0-3 online.
func fourCPUs() (string, error) { return "0-3", nil }

func TestCheckHost(t *testing.T) {
	s := New(Config{HostMemory: 8 << 30})
	s.onlineCPUs = fourCPUs
	tests := []struct {
		key, value string
		msg        string // "" when accepted
	}{
		{"limits.cpu", "4", ""},
		{"limits.cpu", "5", "the host has 4 online CPUs"},
		{"limits.cpu", "0-3", ""},
		{"limits.cpu", "1,3", ""},
		{"limits.cpu", "0-999", "CPUs 4-999 are not online"},
		{"limits.cpu", "2,5,7-8", "CPUs 5,7-8 are not online"},
		{"limits.memory", "8GiB", ""},
		{"limits.memory", "100%", ""},
		{"limits.memory", "9GiB", "more than the host's 8192 MiB"},
		{"limits.memory", "1TiB", "more than the host's"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			err := s.checkHost(map[string]string{tt.key: tt.value})
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), tt.key) {
				t.Fatalf("err = %v, want a 400 naming %s and saying %q", err, tt.key, tt.msg)
			}
		})
	}
	s.onlineCPUs = func() (string, error) { return "", errors.New("no sysfs") }
	if err := s.checkHost(map[string]string{"limits.cpu": "1"}); err == nil || errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unreadable host CPUs: err = %v, want an internal error", err)
	}
}

func TestCheckExpanded(t *testing.T) {
	s := New(Config{HostMemory: 8 << 30})
	s.onlineCPUs = fourCPUs
	fromOCI := map[string]string{keyVolatileOCIEntrypoint: `["/app"]`, keyVolatileOCICmd: `[]`, keyVolatileOCIUID: "0", keyVolatileOCIGID: "0"}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := cloneMap(base)
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	big := strings.Repeat("x", 100000)
	manyEnv := map[string]string{}
	for i := range 25 {
		manyEnv[fmt.Sprintf("environment.V%d", i)] = big
	}
	tests := []struct {
		name  string
		typ   Type
		local map[string]string
		cfg   map[string]string // the expanded config; local when nil
		msg   string
	}{
		{"plain", TypeContainer, map[string]string{"limits.cpu": "2"}, nil, ""},
		{"container key from a profile on a VM", TypeVM, nil, map[string]string{"limits.processes": "10"}, "limits.processes"},
		{"cpuset from a profile", TypeContainer, nil, map[string]string{"limits.cpu": "0-999"}, "limits.cpu"},
		{"OCI uid outside the id map", TypeContainer, with(fromOCI, keyOCIUID, "70000"), nil, "oci.uid"},
		{"OCI gid outside the id map", TypeContainer, with(fromOCI, keyOCIGID, "65536"), nil, "oci.gid"},
		{"OCI uid privileged", TypeContainer, with(fromOCI, keyOCIUID, "70000", "security.privileged", "true"), nil, ""},
		{"entrypoint alone drops everything", TypeContainer, with(fromOCI, keyOCIEntrypoint, `[]`), nil, "no entrypoint or cmd"},
		{"image argument with NUL", TypeContainer, with(fromOCI, keyVolatileOCICmd, `["a\u0000"]`), nil, "NUL"},
		{"environment too large for execve", TypeContainer, manyEnv, nil, "execve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg == nil {
				cfg = tt.local
			}
			err := s.checkExpanded(tt.typ, tt.local, cfg)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want a 400 saying %q", err, tt.msg)
			}
		})
	}
}

// TestBadValuesRefusedEverywhere sends each value the kernel or runc
// would refuse through every way config arrives: create, PUT, PATCH, and
// a profile's create, PUT and PATCH (the edge turns a profile PATCH into
// the merged PUT). Each is a 400 naming the key, and nothing is saved.
func TestBadValuesRefusedEverywhere(t *testing.T) {
	bad := []struct{ key, value string }{
		{"limits.processes", "4194305"},
		{"limits.cpu", "0-999"},
		{"limits.cpu", "64"},
		{"limits.memory", "1MiB"},
		{"limits.memory", "64TiB"},
		{"limits.memory", "-5"},
		{"environment.A", "x\x00y"},
		{"oci.cmd", `["a\u0000b"]`},
		{"oci.uid", "4294967295"},
	}
	ctx := context.Background()
	for _, b := range bad {
		t.Run(b.key+"="+b.value, func(t *testing.T) {
			s, drv, db, _ := newTestService(t)
			s.onlineCPUs = fourCPUs
			if err := launch(t, s, imageReq("c1")); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateProfile(ctx, "p", ProfilePut{}); err != nil {
				t.Fatal(err)
			}
			before := cloneRecord(db.instances[1])
			cfg := map[string]string{b.key: b.value}
			req := imageReq("c2")
			req.Config = cfg
			got, _ := s.Get(context.Background(), "c1")
			put := Put{Architecture: got.Architecture, Devices: got.Devices, Profiles: got.Profiles, Description: got.Description}
			put.Config = cloneMap(got.Config)
			put.Config[b.key] = b.value
			attempts := []struct {
				name string
				do   func() error
			}{
				{"create", func() error { return launch(t, s, req) }},
				{"PUT", func() error { return s.Update(ctx, "c1", put, nil) }},
				{"PATCH", func() error { return s.Patch(ctx, "c1", Patch{Config: cfg}, nil) }},
				{"profile create", func() error {
					return s.CreateProfile(ctx, "q", ProfilePut{Config: cfg})
				}},
				{"profile PUT", func() error { return s.UpdateProfile(ctx, "p", ProfilePut{Config: cfg}, nil) }},
				{"default profile PUT", func() error { return s.UpdateProfile(ctx, "default", ProfilePut{Config: cfg}, nil) }},
			}
			for _, a := range attempts {
				err := a.do()
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), b.key) {
					t.Errorf("%s: err = %v, want a 400 naming %s", a.name, err, b.key)
				}
			}
			if fmt.Sprint(db.instances[1].Config) != fmt.Sprint(before.Config) || len(db.instances) != 1 {
				t.Errorf("an instance changed: %v", db.instances)
			}
			if len(db.profiles) != 2 || len(db.profiles["p"].Config) != 0 || len(db.profiles["default"].Config) != 0 {
				t.Errorf("a profile changed: %v", db.profiles)
			}
			if _, touched := drv.limits["h1"]; touched {
				t.Error("the runtime was asked to apply a refused value")
			}
		})
	}
}

// TestProfileChangeCheckedAgainstUsers refuses a profile change that an
// instance using the profile could not run with, though the profile alone
// is fine.
func TestProfileChangeCheckedAgainstUsers(t *testing.T) {
	s, _, db, _ := newTestService(t)
	s.onlineCPUs = fourCPUs
	s.cfg.Drivers[TypeVM] = s.cfg.Drivers[TypeContainer]
	ctx := context.Background()
	vm := imageReq("v1")
	vm.Type = TypeVM
	if err := launch(t, s, vm); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  map[string]string
		key  string
	}{
		{"container-only key", map[string]string{"limits.processes": "100"}, "limits.processes"},
		{"memory below a VM's", map[string]string{"limits.memory": "64MiB"}, "limits.memory"},
	}
	for _, tt := range tests {
		err := s.UpdateProfile(ctx, "default", ProfilePut{Config: tt.cfg}, nil)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.key) || !strings.Contains(err.Error(), "v1") {
			t.Errorf("%s: err = %v, want a 400 naming %s and the instance", tt.name, err, tt.key)
		}
		if len(db.profiles["default"].Config) != 0 {
			t.Fatalf("%s: profile saved: %v", tt.name, db.profiles["default"].Config)
		}
	}
	// The same change is fine once no VM uses the profile.
	if err := s.Patch(ctx, "v1", Patch{Profiles: &[]string{}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateProfile(ctx, "default", ProfilePut{Config: map[string]string{"limits.processes": "100"}}, nil); err != nil {
		t.Fatal(err)
	}
	// And a VM cannot take the profile on any more.
	err := s.Patch(ctx, "v1", Patch{Profiles: &[]string{"default"}}, nil)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "limits.processes") {
		t.Fatalf("VM given a profile with a container key: %v", err)
	}
}

// TestProfileChangeRolledBack: when the runtime refuses a profile's new
// limits for one running instance, the profile keeps its old content and
// the instances already changed get their old limits back.
func TestProfileChangeRolledBack(t *testing.T) {
	s, drv, db, _ := newTestService(t)
	s.onlineCPUs = fourCPUs
	ctx := context.Background()
	if err := s.CreateProfile(ctx, "small", ProfilePut{Config: map[string]string{"limits.memory": "128MiB"}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		req := imageReq(n)
		req.Profiles = []string{"default", "small"}
		if err := launch(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	drv.failUpdate = map[string]error{"h2": errors.New("memory in use above the new limit")}
	err := s.UpdateProfile(ctx, "small", ProfilePut{Config: map[string]string{"limits.memory": "64MiB"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "memory in use") || !strings.Contains(err.Error(), "not changed") {
		t.Fatalf("err = %v, want the runtime's refusal", err)
	}
	if got := db.profiles["small"].Config["limits.memory"]; got != "128MiB" {
		t.Errorf("profile in the database: limits.memory %q, want the old 128MiB", got)
	}
	if p, _ := s.Profile(context.Background(), "small"); p.Config["limits.memory"] != "128MiB" {
		t.Errorf("profile in memory: %v", p.Config)
	}
	if got := drv.limits["h1"].MemoryBytes; got != 128<<20 {
		t.Errorf("instance a's live memory limit %d, want the old %d back", got, 128<<20)
	}
	// With the runtime willing, the change applies to both.
	drv.failUpdate = nil
	if err := s.UpdateProfile(ctx, "small", ProfilePut{Config: map[string]string{"limits.memory": "64MiB"}}, nil); err != nil {
		t.Fatal(err)
	}
	if drv.limits["h1"].MemoryBytes != 64<<20 || drv.limits["h2"].MemoryBytes != 64<<20 {
		t.Errorf("live limits %+v", drv.limits)
	}
}
