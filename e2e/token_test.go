package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// TestAPITokens drives bearer API tokens against a real hangard over its
// unix socket: tokens made with the CLI, then the SDK sending
// "Authorization: Bearer TOKEN", which takes the token's power in place of
// the socket's root. A viewer of p1 lists p1's instances but cannot
// launch, and another project's instance is a 404 to it; an operator of p1
// launches there; a revoked token is refused.
func TestAPITokens(t *testing.T) {
	requireE2E(t)
	d := startDaemon(t, "")
	d.importImages()
	ctx := context.Background()
	// p1 and p2 use the default project's images and profile (root disk).
	for _, p := range []string{"p1", "p2"} {
		d.must("project", "create", p, "features.images=false", "features.profiles=false")
	}
	root := d.client()
	launch := func(c *client.Client, name string) error {
		op, err := c.CreateInstance(ctx, api.InstancesPost{Name: name, Source: api.InstanceSource{Type: "image", Alias: "busybox"}})
		if err != nil {
			return err
		}
		return op.Wait(ctx)
	}
	if err := launch(root.UseProject("p2"), "other"); err != nil {
		t.Fatalf("root launches in p2: %v", err)
	}

	viewerTok := strings.TrimSpace(d.must("token", "create", "view", "--project", "p1", "--role", "viewer"))
	opTok := strings.TrimSpace(d.must("token", "create", "op", "--project", "p1", "--role", "operator", "--expiry", "30d"))
	if !strings.HasPrefix(viewerTok, "hgr_") || !strings.HasPrefix(opTok, "hgr_") {
		t.Fatalf("tokens printed: %q, %q", viewerTok, opTok)
	}
	if out := d.must("token", "list"); !strings.Contains(out, "view") || !strings.Contains(out, "operator") || strings.Contains(out, viewerTok[4:]) {
		t.Errorf("hangar token list:\n%s", out)
	}

	viewer := root.WithBearerToken(viewerTok).UseProject("p1")
	operator := root.WithBearerToken(opTok).UseProject("p1")

	if err := launch(operator, "c1"); err != nil {
		t.Fatalf("operator launches in p1: %v", err)
	}
	list, err := viewer.GetInstances(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "c1" {
		t.Errorf("viewer lists p1: %+v, %v; want c1", list, err)
	}
	if err := launch(viewer, "c2"); client.StatusCodeOf(err) != http.StatusForbidden {
		t.Errorf("viewer launches in p1: %v; want 403", err)
	}
	if _, _, err := viewer.UseProject("p2").GetInstance(ctx, "other"); client.StatusCodeOf(err) != http.StatusNotFound {
		t.Errorf("viewer reads p2's instance: %v; want 404", err)
	}
	if _, err := viewer.UseProject("p2").GetInstances(ctx); err == nil {
		t.Errorf("viewer lists p2: no error")
	}
	// The token, not the socket, says who the request is: a viewer cannot
	// manage tokens, where root without the header can.
	if _, err := viewer.GetAPITokens(ctx); client.StatusCodeOf(err) != http.StatusForbidden {
		t.Errorf("viewer lists tokens: %v; want 403", err)
	}

	d.must("token", "revoke", "op")
	if _, err := operator.GetInstances(ctx); client.StatusCodeOf(err) != http.StatusForbidden {
		t.Errorf("revoked token lists p1: %v; want 403", err)
	}
	if _, err := root.WithBearerToken("hgr_1_garbage").GetInstances(ctx); client.StatusCodeOf(err) != http.StatusForbidden {
		t.Errorf("wrong secret: %v; want 403", err)
	}
	if !strings.Contains(d.logText(), "bearer token refused") {
		t.Errorf("the daemon's log does not say why a token was refused")
	}
	if _, stderr, code := d.hangar("token", "create", "bad", "--role", "root"); code == 0 || !strings.Contains(stderr, "role") {
		t.Errorf("hangar token create --role root: exit %d, %q", code, stderr)
	}
}
