package lxd

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
)

// TestUserRoutes: the users API never shows a password or its hash; bad
// requests are 400, 404, 409, 412; can_edit on the server (a group's)
// may list and describe users but not create one, set a password or
// delete one, or can_edit would be a way up to what groups grant users.
func TestUserRoutes(t *testing.T) {
	a := newAuthzServer(t)
	rootCtx := auth.WithIdentity(context.Background(), root)
	if err := a.Auth.CreateGroup(rootCtx, auth.Group{Name: "editors",
		Permissions: []auth.Permission{{Object: auth.Server(), Entitlement: auth.CanEdit}},
		Members:     []auth.Member{{Method: auth.MethodTLS, ID: "e1"}, {Method: auth.MethodUser, ID: "alice"}}}); err != nil {
		t.Fatal(err)
	}
	editor := auth.Identity{Kind: auth.KindCertificate, Name: "e", Fingerprint: "e1", Type: "client", Restricted: true}
	const password = "pa55-w0rd-unique"

	if code, body := a.as(t, root, "default", "POST", "/1.0/users", `{"name":"alice","password":"`+password+`","description":"ops"}`); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	noSecret := func(what, body string) {
		t.Helper()
		for _, bad := range []string{password, "pbkdf2", "password", "hash"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s shows %q: %s", what, bad, body)
			}
		}
	}
	code, body := a.as(t, root, "default", "GET", "/1.0/users", "")
	if code != 200 || !strings.Contains(body, `"/1.0/users/alice"`) {
		t.Errorf("list: %d %s", code, body)
	}
	code, body = a.as(t, editor, "default", "GET", "/1.0/users?recursion=1", "")
	var list struct{ Metadata []api.User }
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list.Metadata) != 1 ||
		list.Metadata[0].Name != "alice" || list.Metadata[0].Description != "ops" || list.Metadata[0].CreatedAt.IsZero() {
		t.Errorf("list recursion=1: %d %s", code, body)
	}
	noSecret("list", body)

	// get returns the user and its ETag.
	get := func() (api.User, string) {
		t.Helper()
		a.ident.set(root)
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, httptest.NewRequest("GET", "/1.0/users/alice", nil))
		var env struct{ Metadata api.User }
		if err := json.Unmarshal(rec.Body.Bytes(), &env); rec.Code != 200 || err != nil {
			t.Fatalf("get: %d %s", rec.Code, rec.Body)
		}
		noSecret("get", rec.Body.String())
		return env.Metadata, rec.Header().Get("ETag")
	}
	u, etag := get()
	if u.Name != "alice" || u.Description != "ops" || etag == "" {
		t.Fatalf("get: %+v etag %q", u, etag)
	}

	for _, tc := range []struct {
		name         string
		id           auth.Identity
		method, path string
		body, match  string
		want         int
		wantDesc     string // after, when not ""
	}{
		{"bad name", root, "POST", "/1.0/users", `{"name":"a b","password":"x"}`, "", 400, ""},
		{"empty password", root, "POST", "/1.0/users", `{"name":"bob","password":""}`, "", 400, ""},
		{"no password", root, "POST", "/1.0/users", `{"name":"bob"}`, "", 400, ""},
		{"name taken", root, "POST", "/1.0/users", `{"name":"alice","password":"x"}`, "", 409, ""},
		{"not JSON", root, "POST", "/1.0/users", `{`, "", 400, ""},
		{"password not a string", root, "POST", "/1.0/users", `{"name":"bob","password":5}`, "", 400, ""},
		{"editor creates", editor, "POST", "/1.0/users", `{"name":"bob","password":"x"}`, "", 403, ""},
		{"editor describes", editor, "PATCH", "/1.0/users/alice", `{"description":"lead"}`, "", 200, "lead"},
		{"editor sets a password", editor, "PATCH", "/1.0/users/alice", `{"password":"mine"}`, "", 403, ""},
		{"editor deletes", editor, "DELETE", "/1.0/users/alice", ``, "", 403, ""},
		{"user itself", auth.Identity{Kind: auth.KindUser, Name: "alice"}, "PATCH", "/1.0/users/alice", `{"password":"x"}`, "", 403, ""},
		{"empty password change", root, "PATCH", "/1.0/users/alice", `{"password":""}`, "", 400, ""},
		{"stale ETag", root, "PUT", "/1.0/users/alice", `{"description":"x"}`, etag, 412, "lead"},
		{"PUT replaces", root, "PUT", "/1.0/users/alice", `{}`, "", 200, "-"},
		{"unknown user", root, "PATCH", "/1.0/users/nobody", `{"description":"x"}`, "", 404, ""},
		{"unknown user get", root, "GET", "/1.0/users/nobody", ``, "", 404, ""},
		{"unknown user delete", root, "DELETE", "/1.0/users/nobody", ``, "", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.ident.set(tc.id)
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.match != "" {
				req.Header.Set("If-Match", tc.match)
			}
			rec := httptest.NewRecorder()
			a.h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, tc.want)
			}
			if tc.wantDesc != "" {
				want := strings.TrimPrefix(tc.wantDesc, "-")
				if u, _ := get(); u.Description != want {
					t.Fatalf("description %q, want %q", u.Description, want)
				}
			}
		})
	}
	if code, body := a.as(t, root, "default", "GET", "/1.0/users/bob", ""); code != 404 {
		t.Fatalf("refused creates left bob: %d %s", code, body)
	}

	// A password change by the admin, with the current ETag; the user
	// stays in its groups.
	_, etag = get()
	a.ident.set(root)
	req := httptest.NewRequest("PATCH", "/1.0/users/alice", strings.NewReader(`{"password":"new-one"}`))
	req.Header.Set("If-Match", etag)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("set password: %d %s", rec.Code, rec.Body)
	}
	users := a.Users.(interface {
		Login(ctx context.Context, name, password, addr string) (auth.Identity, error)
	})
	if _, err := users.Login(context.Background(), "alice", password, "192.0.2.1"); err == nil {
		t.Error("the old password still logs in")
	}
	id, err := users.Login(context.Background(), "alice", "new-one", "192.0.2.1")
	if err != nil {
		t.Fatalf("the new password: %v", err)
	}
	if !a.Auth.CanView(auth.WithIdentity(context.Background(), id), auth.Server()) {
		t.Error("alice lost her group")
	}

	if code, body := a.as(t, root, "default", "DELETE", "/1.0/users/alice", ""); code != 200 {
		t.Fatalf("delete: %d %s", code, body)
	}
	g, err := a.Auth.Group(rootCtx, "editors")
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Members) != 1 || g.Members[0].Method != auth.MethodTLS {
		t.Errorf("after the delete, editors has %v", g.Members)
	}
	if code, body := a.as(t, root, "default", "GET", "/1.0/users", ""); code != 200 || strings.Contains(body, "alice") {
		t.Errorf("list after delete: %d %s", code, body)
	}
}
