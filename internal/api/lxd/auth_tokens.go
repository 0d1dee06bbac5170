package lxd

import (
	"context"
	"net/http"
	"net/url"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/trust"
)

// Tokens is what the edge needs of the bearer API tokens
// (trust.APITokens).
type Tokens interface {
	Create(ctx context.Context, name, project, role, expiry string) (trust.APIToken, string, error)
	List(ctx context.Context) ([]trust.APIToken, error)
	Revoke(ctx context.Context, name string) error
}

// tokenRoutes are /1.0/auth/tokens (hangar_api_tokens). Tokens hand out
// rights, so every route needs can_edit on the server, as certificates'
// writes do; an admin token needs admin besides (tokenAdmin), or can_edit
// would be a way up to admin.
func (s *Server) tokenRoutes(route func(string, func(http.ResponseWriter, *http.Request))) {
	need := func(h http.HandlerFunc) http.HandlerFunc {
		return s.Requires(auth.CanEdit, func(w http.ResponseWriter, r *http.Request) {
			if s.Tokens == nil {
				writeError(w, errdefs.NotImplemented("hangard serves no API tokens here"))
				return
			}
			h(w, r)
		})
	}
	route("GET /1.0/auth/tokens", need(s.listTokens))
	route("POST /1.0/auth/tokens", need(s.createToken))
	route("DELETE /1.0/auth/tokens/{name}", need(s.revokeToken))
}

func tokenURL(name string) string { return "/1.0/auth/tokens/" + url.PathEscape(name) }

func toAPIToken(t trust.APIToken) api.AuthToken {
	return api.AuthToken{Name: t.Name, Project: t.Project, Role: t.Role, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	ts, err := s.Tokens.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		urls := make([]string, len(ts))
		for i, t := range ts {
			urls[i] = tokenURL(t.Name)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.AuthToken, len(ts))
	for i, t := range ts {
		out[i] = toAPIToken(t)
	}
	writeSync(w, out, "")
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req api.AuthTokensPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Role == trust.RoleAdmin {
		if err := s.allow(r, auth.Server(), auth.Admin); err != nil {
			writeError(w, err)
			return
		}
	}
	rec, tok, err := s.Tokens.Create(r.Context(), req.Name, req.Project, req.Role, req.Expiry)
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, api.AuthTokenCreated{AuthToken: toAPIToken(rec), Token: tok}, "")
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := s.Tokens.Revoke(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, struct{}{}, "")
}
