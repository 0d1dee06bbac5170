package trust

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

func newAPITokens(t *testing.T) (*APITokens, *clock) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hangar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateProject(context.Background(), &store.Project{Name: "p1"}, false); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now()}
	return &APITokens{DB: st, Now: clk.now}, clk
}

func TestAPITokenCreate(t *testing.T) {
	ctx := context.Background()
	s, _ := newAPITokens(t)
	for _, tc := range []struct {
		name, tname, project, role, expiry string
		kind                               error
		want                               auth.Identity
	}{
		{"viewer", "v", "p1", "viewer", "", nil, auth.Identity{Kind: auth.KindToken, Name: "v", Type: "viewer", Restricted: true, Projects: []string{"p1"}}},
		{"operator default project", "o", "", "operator", "30d", nil, auth.Identity{Kind: auth.KindToken, Name: "o", Type: "operator", Restricted: true, Projects: []string{"default"}}},
		{"admin", "a", "", "admin", "1H 30M", nil, auth.Identity{Kind: auth.KindToken, Name: "a", Type: "admin"}},
		{"admin with project", "a2", "p1", "admin", "", errdefs.ErrInvalidArgument, auth.Identity{}},
		{"bad role", "x", "p1", "root", "", errdefs.ErrInvalidArgument, auth.Identity{}},
		{"bad name", "a/b", "p1", "viewer", "", errdefs.ErrInvalidArgument, auth.Identity{}},
		{"bad expiry", "x", "p1", "viewer", "soon", errdefs.ErrInvalidArgument, auth.Identity{}},
		{"zero expiry", "x", "p1", "viewer", "0d", errdefs.ErrInvalidArgument, auth.Identity{}},
		{"unknown project", "x", "nope", "viewer", "", errdefs.ErrNotFound, auth.Identity{}},
		{"name taken", "v", "p1", "viewer", "", errdefs.ErrConflict, auth.Identity{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, tok, err := s.Create(ctx, tc.tname, tc.project, tc.role, tc.expiry)
			if tc.kind != nil {
				if !errors.Is(err, tc.kind) {
					t.Fatalf("err %v, want %v", err, tc.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.SecretHash != nil || !strings.HasPrefix(tok, "hgr_") {
				t.Fatalf("record %+v, token %q", rec, tok)
			}
			id, err := s.Identify(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if id.Kind != tc.want.Kind || id.Name != tc.want.Name || id.Type != tc.want.Type || id.Restricted != tc.want.Restricted || !slices.Equal(id.Projects, tc.want.Projects) {
				t.Errorf("identity %+v, want %+v", id, tc.want)
			}
		})
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("%d tokens listed, want 3", len(list))
	}
	for _, r := range list {
		if r.SecretHash != nil {
			t.Errorf("list shows %q's secret hash", r.Name)
		}
	}
}

func TestAPITokenIdentifyRefuses(t *testing.T) {
	ctx := context.Background()
	s, clk := newAPITokens(t)
	_, tok, err := s.Create(ctx, "t", "p1", "viewer", "1H")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := s.Create(ctx, "u", "p1", "operator", "")
	if err != nil {
		t.Fatal(err)
	}
	idPart := strings.Split(tok, "_")[1]
	otherSecret := other[strings.LastIndex(other, "_")+1:]
	for _, tc := range []struct{ name, tok string }{
		{"empty", ""},
		{"no prefix", strings.TrimPrefix(tok, "hgr_")},
		{"no secret", "hgr_" + idPart + "_"},
		{"no separator", "hgr_" + idPart},
		{"id not a number", "hgr_x_" + otherSecret},
		{"negative id", "hgr_-1_" + otherSecret},
		{"unknown id", "hgr_999_" + otherSecret},
		{"another token's secret", "hgr_" + idPart + "_" + otherSecret},
		{"truncated secret", tok[:len(tok)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if id, err := s.Identify(ctx, tc.tok); !errors.Is(err, ErrBadToken) {
				t.Fatalf("Identify(%q) = %+v, %v: want ErrBadToken", tc.tok, id, err)
			}
		})
	}
	if _, err := s.Identify(ctx, tok); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	clk.add(time.Hour)
	if _, err := s.Identify(ctx, tok); !errors.Is(err, ErrBadToken) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
	if _, err := s.Identify(ctx, other); err != nil {
		t.Fatalf("token without expiry: %v", err)
	}
	if err := s.Revoke(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Identify(ctx, other); !errors.Is(err, ErrBadToken) {
		t.Errorf("revoked token: %v", err)
	}
	if err := s.Revoke(ctx, "u"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("revoke twice: %v", err)
	}
}
