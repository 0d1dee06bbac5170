package velocity

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
)

// TestEndpoints drives every endpoint through the real authorizer and
// core: no or a bad authkey, an unknown or hidden GID/VMID, a missing
// permission, and a granted one held on an ancestor group.
func TestEndpoints(t *testing.T) {
	e := newEnv(t)
	e.tree(t, nil)
	// alice: view and state at the top, so in leaf; nic list.
	e.grant(t, "alice", auth.Permission{Object: auth.Project("top"), Entitlement: auth.CanViewInstances},
		auth.Permission{Object: auth.Project("top"), Entitlement: auth.CanOperateInstances},
		auth.Permission{Object: auth.Server(), Entitlement: auth.CanViewResources})
	// bob: sees leaf (create rights there) and nothing else.
	e.grant(t, "bob", auth.Permission{Object: auth.Project("leaf"), Entitlement: auth.CanManageInstances})
	// carol: views top's VMs and may change none.
	e.grant(t, "carol", auth.Permission{Object: auth.Project("top"), Entitlement: auth.CanViewInstances})
	ids := e.addVMs(t, "leaf", 2, map[string]string{"limits.cpu": "2", "limits.memory": "512MiB"})
	side := e.addVMs(t, "side", 1, nil)
	alice, bob, carol := e.login(t, "alice"), e.login(t, "bob"), e.login(t, "carol")

	tests := []struct {
		name, method, path string
		body               map[string]any
		code               int
		says               string
	}{
		{"list: no authkey", "POST", "/v/vm/list", map[string]any{"gid": "leaf"}, 401, "authkey"},
		{"list: bad authkey", "POST", "/v/vm/list", map[string]any{"authkey": "nope", "gid": "leaf"}, 401, "authkey"},
		{"list: unknown gid", "POST", "/v/vm/list", map[string]any{"authkey": alice, "gid": "nope"}, 404, "not found"},
		{"list: hidden gid", "POST", "/v/vm/list", map[string]any{"authkey": alice, "gid": "side"}, 404, "not found"},
		{"list: no view permission", "POST", "/v/vm/list", map[string]any{"authkey": bob, "gid": "leaf"}, 401, "can_view_instances"},
		{"list: inherited", "POST", "/v/vm/list", map[string]any{"authkey": alice, "gid": "leaf"}, 200, ids[0]},
		{"list: bad body", "POST", "/v/vm/list", map[string]any{"authkey": alice, "gid": 3}, 400, "gid"},
		{"list: unknown field", "POST", "/v/vm/list", map[string]any{"authkey": alice, "gid": "leaf", "x": 1}, 400, "x: unknown field"},

		{"get: no authkey", "POST", "/v/vm", map[string]any{"vmid": ids[0]}, 401, "authkey"},
		{"get: unknown", "POST", "/v/vm", map[string]any{"authkey": alice, "vmid": "nope"}, 404, "not found"},
		{"get: hidden", "POST", "/v/vm", map[string]any{"authkey": alice, "vmid": side[0]}, 404, "not found"},
		{"get", "POST", "/v/vm", map[string]any{"authkey": alice, "vmid": ids[0]}, 200, `"memory_mib":"512"`},

		{"state: no authkey", "POST", "/v/vm/state", map[string]any{"vmid": ids[0]}, 401, "authkey"},
		{"state: unknown", "POST", "/v/vm/state", map[string]any{"authkey": alice, "vmid": "nope"}, 404, "not found"},
		{"state", "POST", "/v/vm/state", map[string]any{"authkey": carol, "vmid": ids[0]}, 200, `"state":"STOPPED"`},

		{"put state: no authkey", "PUT", "/v/vm/state", map[string]any{"vmid": ids[0], "state": "RUNNING"}, 401, "authkey"},
		{"put state: unknown", "PUT", "/v/vm/state", map[string]any{"authkey": alice, "vmid": "nope", "state": "RUNNING"}, 404, "not found"},
		{"put state: hidden", "PUT", "/v/vm/state", map[string]any{"authkey": alice, "vmid": side[0], "state": "STOPPED"}, 404, "not found"},
		{"put state: no permission", "PUT", "/v/vm/state", map[string]any{"authkey": carol, "vmid": ids[0], "state": "RUNNING"}, 403, "can_update_state"},
		{"put state: hypervisor state", "PUT", "/v/vm/state", map[string]any{"authkey": alice, "vmid": ids[0], "state": "STARTING"}, 400, "STOPPED, RUNNING or PAUSED"},
		{"put state: already", "PUT", "/v/vm/state", map[string]any{"authkey": alice, "vmid": ids[0], "state": "STOPPED"}, 200, `"state":"STOPPED"`},
		{"put state: impossible", "PUT", "/v/vm/state", map[string]any{"authkey": alice, "vmid": ids[0], "state": "PAUSED"}, 500, "cannot go to PAUSED"},

		{"efi: no authkey", "PUT", "/v/vm/efi", map[string]any{"name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256"}, 401, "authkey"},
		{"efi: unknown gid", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "nope", "cpus": "1", "memory_mib": "256"}, 404, "not found"},
		{"efi: hidden gid", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "top", "cpus": "1", "memory_mib": "256"}, 404, "not found"},
		{"efi: no permission", "PUT", "/v/vm/efi", map[string]any{"authkey": carol, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256"}, 401, "can_manage_instances"},
		{"efi: rosetta", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256", "rosetta": true}, 406, "rosetta"},
		{"efi: bad mode", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256",
			"media": []any{map[string]any{"mid": "default/iso", "mode": "SATA", "readonly": true}}}, 406, "mode"},
		{"efi: bad nic type", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256",
			"nics": []any{map[string]any{"type": "HOSTONLY"}}}, 406, "NAT or BRIDGE"},
		{"efi: unknown nicid", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256",
			"nics": []any{map[string]any{"type": "BRIDGE", "host": "wan"}}}, 404, `wan\" not found`},
		{"efi: absent host nic", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256",
			"nics": []any{map[string]any{"type": "BRIDGE", "host": "gone"}}}, 404, "not present"},
		{"efi: unknown medium", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256",
			"media": []any{map[string]any{"mid": "default/nope", "mode": "USB", "readonly": true}}}, 404, "not found"},
		{"efi: filesystem medium", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256",
			"media": []any{map[string]any{"mid": "default/fs", "mode": "USB", "readonly": true}}}, 406, "filesystem"},
		{"efi: writable ISO medium", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "256",
			"media": []any{map[string]any{"mid": "default/cd", "mode": "BLOCK", "readonly": false}}}, 406, "read-only"},
		{"efi: zero cpus", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "0", "memory_mib": "256"}, 400, "cpus"},
		{"efi: bad number", "PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "two", "memory_mib": "256"}, 400, "whole number"},

		{"nics: no authkey", "POST", "/v/nic/list", nil, 401, "authkey"},
		{"nics: no permission", "POST", "/v/nic/list", map[string]any{"authkey": bob}, 401, "can_view_resources"},
		{"nics", "POST", "/v/nic/list", map[string]any{"authkey": alice}, 200, `"nicid":"lan"`},

		{"login: bad password", "POST", "/u/auth", map[string]any{"name": "alice", "password": "no"}, 403, "authentication failed"},
		{"renew: bad key", "PATCH", "/u/auth", map[string]any{"authkey": "nope"}, 403, "authentication failed"},
		{"logout: unknown key", "DELETE", "/u/auth", map[string]any{"authkey": "nope"}, 200, "{}"},
		{"no route", "GET", "/v/vm/list", nil, 404, "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body any
			if tt.body != nil {
				body = tt.body
			}
			rec := e.call(tt.method, tt.path, body)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.says) {
				t.Fatalf("%d %s, want %d saying %q", rec.Code, rec.Body, tt.code, tt.says)
			}
			if rec.Code != 200 {
				var er wire.Error
				if err := json.Unmarshal(rec.Body.Bytes(), &er); err != nil || er.Error == "" {
					t.Fatalf("error body %s is not {\"error\": ...}", rec.Body)
				}
			}
		})
	}
	// Nothing was created by the refused creates.
	if n := len(e.core.List(project.WithAll(e.ctx))); n != 3 {
		t.Fatalf("%d instances after refused creates, want 3", n)
	}
}

// TestSessions: renew ends the old key, logout ends the key, an expired
// key is refused.
func TestSessions(t *testing.T) {
	e := newEnv(t)
	e.grant(t, "alice", auth.Permission{Object: auth.Server(), Entitlement: auth.CanViewResources})
	key := e.login(t, "alice")
	if rec := e.call("POST", "/v/nic/list", map[string]any{"authkey": key}); rec.Code != 200 {
		t.Fatalf("nic list: %d %s", rec.Code, rec.Body)
	}
	rec := e.call("PATCH", "/u/auth", map[string]any{"authkey": key})
	var renewed wire.AuthResponse
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &renewed) != nil || renewed.AuthKey == key || renewed.Expires == 0 {
		t.Fatalf("renew: %d %s", rec.Code, rec.Body)
	}
	if rec := e.call("POST", "/v/nic/list", map[string]any{"authkey": key}); rec.Code != 401 {
		t.Fatalf("old key after renew: %d", rec.Code)
	}
	if rec := e.call("DELETE", "/u/auth", map[string]any{"authkey": renewed.AuthKey}); rec.Code != 200 {
		t.Fatalf("logout: %d", rec.Code)
	}
	if rec := e.call("POST", "/v/nic/list", map[string]any{"authkey": renewed.AuthKey}); rec.Code != 401 {
		t.Fatalf("key after logout: %d", rec.Code)
	}
	key = e.login(t, "alice")
	e.srv.sessions.mu.Lock()
	s := e.srv.sessions.byKey[key]
	s.expires = s.expires.Add(-2 * DefaultSessionTTL)
	e.srv.sessions.byKey[key] = s
	e.srv.sessions.mu.Unlock()
	if rec := e.call("POST", "/v/nic/list", map[string]any{"authkey": key}); rec.Code != 401 {
		t.Fatalf("expired key: %d", rec.Code)
	}
	// A user deleted, or whose password changed, loses its sessions.
	key = e.login(t, "alice")
	e.srv.Users.(fakeUsers).revoked.Store("alice", true)
	if rec := e.call("POST", "/v/nic/list", map[string]any{"authkey": key}); rec.Code != 401 {
		t.Fatalf("key of a revoked user: %d", rec.Code)
	}
	if rec := e.call("PATCH", "/u/auth", map[string]any{"authkey": key}); rec.Code == 200 {
		t.Fatalf("renewing a revoked user's key: %d", rec.Code)
	}
}

// fakeRefusingCore is the real core but for a create, which the project's
// limits refuse as the core does (errdefs.Forbidden naming the limit).
type fakeRefusingCore struct{ Core }

func (fakeRefusingCore) Create(context.Context, instance.CreateRequest) (instance.Instance, error) {
	return instance.Instance{}, errdefs.Forbidden(`project "top" (an ancestor of "leaf"): limits.memory=1GiB would be exceeded by 1.00GiB`)
}

// TestQuotaIs406: past the edge's permission check, a refusal of the
// core's create is the seed's 406, saying what is exceeded.
func TestQuotaIs406(t *testing.T) {
	e := newEnv(t)
	e.tree(t, nil)
	e.grant(t, "bob", auth.Permission{Object: auth.Project("leaf"), Entitlement: auth.CanManageInstances})
	e.srv.Core = fakeRefusingCore{e.srv.Core}
	bob := e.login(t, "bob")
	rec := e.call("PUT", "/v/vm/efi", map[string]any{"authkey": bob, "name": "x", "gid": "leaf", "cpus": "1", "memory_mib": "2048"})
	if rec.Code != 406 || !strings.Contains(rec.Body.String(), "limits.memory") {
		t.Fatalf("%d %s, want 406 naming limits.memory", rec.Code, rec.Body)
	}
}
