package lxd

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
)

// TestAPITokenRoutes: create shows the token once and list never does;
// bad requests are 400; can_edit on the server (a group's) may make
// operator and viewer tokens but not an admin one, or can_edit would be a
// way up to admin.
func TestAPITokenRoutes(t *testing.T) {
	a := newAuthzServer(t)
	rootCtx := auth.WithIdentity(context.Background(), root)
	if err := a.Auth.CreateGroup(rootCtx, auth.Group{Name: "editors",
		Permissions: []auth.Permission{{Object: auth.Server(), Entitlement: auth.CanEdit}},
		Members:     []auth.Member{{Method: auth.MethodTLS, ID: "e1"}}}); err != nil {
		t.Fatal(err)
	}
	editor := auth.Identity{Kind: auth.KindCertificate, Name: "e", Fingerprint: "e1", Type: "client", Restricted: true}

	code, body := a.as(t, root, "default", "POST", "/1.0/auth/tokens", `{"name":"ci","role":"operator","project":"p1","expiry":"30d"}`)
	if code != http.StatusOK {
		t.Fatalf("create: %d %s", code, body)
	}
	var env struct{ Metadata api.AuthTokenCreated }
	if err := json.Unmarshal([]byte(body), &env); err != nil || !strings.HasPrefix(env.Metadata.Token, "hgr_") ||
		env.Metadata.Role != "operator" || env.Metadata.Project != "p1" || env.Metadata.ExpiresAt.IsZero() {
		t.Fatalf("create answered %s (%v)", body, err)
	}
	secret := env.Metadata.Token[strings.LastIndex(env.Metadata.Token, "_")+1:]
	if code, body := a.as(t, root, "default", "GET", "/1.0/auth/tokens?recursion=1", ""); code != 200 || !strings.Contains(body, `"name":"ci"`) || strings.Contains(body, secret) {
		t.Errorf("list: %d %s", code, body)
	}

	for _, tc := range []struct {
		name string
		id   auth.Identity
		body string
		want int
	}{
		{"bad role", root, `{"name":"x","role":"god"}`, 400},
		{"bad name", root, `{"name":"a b","role":"viewer"}`, 400},
		{"admin with a project", root, `{"name":"x","role":"admin","project":"p1"}`, 400},
		{"unknown project", root, `{"name":"x","role":"viewer","project":"nope"}`, 404},
		{"name taken", root, `{"name":"ci","role":"viewer"}`, 409},
		{"bad expiry", root, `{"name":"x","role":"viewer","expiry":"tomorrow"}`, 400},
		{"not JSON", root, `{`, 400},
		{"editor makes a viewer token", editor, `{"name":"ev","role":"viewer","project":"p1"}`, 200},
		{"editor makes an admin token", editor, `{"name":"ea","role":"admin"}`, 403},
		{"admin token", root, `{"name":"all","role":"admin"}`, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := a.as(t, tc.id, "default", "POST", "/1.0/auth/tokens", tc.body); code != tc.want {
				t.Errorf("%d %s, want %d", code, body, tc.want)
			}
		})
	}

	if code, body := a.as(t, root, "default", "DELETE", "/1.0/auth/tokens/ci", ""); code != 200 {
		t.Errorf("revoke: %d %s", code, body)
	}
	if code, _ := a.as(t, root, "default", "DELETE", "/1.0/auth/tokens/ci", ""); code != 404 {
		t.Errorf("revoke twice: %d, want 404", code)
	}
}
