package cli

import (
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

func TestParsePermission(t *testing.T) {
	tests := []struct {
		args []string
		want api.Permission
		err  string
	}{
		{[]string{"server", "admin"}, api.Permission{EntityType: "server", EntityReference: "/1.0", Entitlement: "admin"}, ""},
		{[]string{"project", "team-a", "operator"}, api.Permission{EntityType: "project", EntityReference: "/1.0/projects/team-a", Entitlement: "operator"}, ""},
		{[]string{"instance", "c1", "can_exec"}, api.Permission{EntityType: "instance", EntityReference: "/1.0/instances/c1?project=default", Entitlement: "can_exec"}, ""},
		{[]string{"instance", "c1", "can_exec", "project=p1"}, api.Permission{EntityType: "instance", EntityReference: "/1.0/instances/c1?project=p1", Entitlement: "can_exec"}, ""},
		{[]string{"storage_pool", "fast", "can_edit"}, api.Permission{EntityType: "storage_pool", EntityReference: "/1.0/storage-pools/fast", Entitlement: "can_edit"}, ""},
		{[]string{"storage_volume", "v1", "can_view", "pool=fast"}, api.Permission{EntityType: "storage_volume", EntityReference: "/1.0/storage-pools/fast/volumes/custom/v1?project=default", Entitlement: "can_view"}, ""},
		{[]string{"storage_volume", "v1", "can_view", "pool=fast", "type=vm", "project=p"}, api.Permission{EntityType: "storage_volume", EntityReference: "/1.0/storage-pools/fast/volumes/vm/v1?project=p", Entitlement: "can_view"}, ""},
		{[]string{"profile", "a b", "can_view"}, api.Permission{EntityType: "profile", EntityReference: "/1.0/profiles/a%20b?project=default", Entitlement: "can_view"}, ""},
		{nil, api.Permission{}, "missing the entity type"},
		{[]string{"cluster", "x", "admin"}, api.Permission{}, `unknown entity type "cluster"`},
		{[]string{"instance", "can_exec"}, api.Permission{}, "missing the entitlement"},
		{[]string{"instance"}, api.Permission{}, "missing the instance's name"},
		{[]string{"server"}, api.Permission{}, "missing the entitlement"},
		{[]string{"project", "p", "viewer", "project=q"}, api.Permission{}, "project takes no project="},
		{[]string{"storage_volume", "v1", "can_view"}, api.Permission{}, "needs pool=POOL"},
		{[]string{"instance", "c1", "can_exec", "novalue"}, api.Permission{}, "expected key=value"},
	}
	for _, tt := range tests {
		got, err := parsePermission(tt.args)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parsePermission(%q): error %v, want %q", tt.args, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parsePermission(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
		}
	}
}

func TestSamePermission(t *testing.T) {
	p := api.Permission{EntityType: "instance", EntityReference: "/1.0/instances/c1?project=default", Entitlement: "can_exec"}
	tests := []struct {
		q    api.Permission
		want bool
	}{
		{p, true},
		{api.Permission{EntityType: "instance", EntityReference: "/1.0/instances/%631?project=default", Entitlement: "can_exec"}, true},
		{api.Permission{EntityType: "instance", EntityReference: "/1.0/instances/c1?project=p1", Entitlement: "can_exec"}, false},
		{api.Permission{EntityType: "instance", EntityReference: "/1.0/instances/c1?project=default", Entitlement: "can_view"}, false},
	}
	for _, tt := range tests {
		if got := samePermission(p, tt.q); got != tt.want {
			t.Errorf("samePermission(%v, %v) = %v", p, tt.q, got)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	tests := []struct{ in, method, id, err string }{
		{"tls/abc", "tls", "abc", ""},
		{"unix/root", "unix", "root", ""},
		{"token/ci", "token", "ci", ""},
		{"user/alice", "user", "alice", ""},
		{"user/", "", "", "want METHOD/ID"},
		{"tls/", "", "", "want METHOD/ID"},
		{"abc", "", "", "want METHOD/ID"},
		{"oidc/x", "", "", `unknown authentication method "oidc"`},
	}
	for _, tt := range tests {
		m, id, err := parseIdentity(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseIdentity(%q): error %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || m != tt.method || id != tt.id {
			t.Errorf("parseIdentity(%q) = %q, %q, %v", tt.in, m, id, err)
		}
	}
}
