package lxd

import (
	"context"
	"net/http"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/edge"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/trust"
)

// Trust is what the edge needs of the trust store (package trust).
type Trust interface {
	ServerCert() *trust.ServerCert
	Addresses() []string
	List(ctx context.Context) ([]trust.Certificate, error)
	Get(ctx context.Context, prefix string) (trust.Certificate, error)
	Add(ctx context.Context, der []byte, put trust.Put) (trust.Certificate, error)
	Update(ctx context.Context, fp string, put trust.Put, certPEM string) (trust.Certificate, error)
	Delete(ctx context.Context, fp string) (string, error)
	IssueToken(ctx context.Context, put trust.Put) (*operation.Op, error)
	RedeemAndAdd(ctx context.Context, source, secret string, der []byte) (trust.Certificate, error)
}

// rootOnly is the identifier of a server without authentication: every
// request is the unix socket's root (no network listener, and tests).
type rootOnly struct{}

func (rootOnly) Identify(*http.Request) auth.Identity { return edge.Root }

// authn wraps next with the edge's authentication and audit log, then
// LXD's gate for untrusted clients: they may read / and /1.0 and redeem
// a token or the trust password (POST /1.0/certificates), nothing else.
func (s *Server) authn(next http.Handler) http.Handler {
	var id edge.Identifier = rootOnly{}
	if s.Authn != nil {
		id = s.Authn
	}
	return edge.Authenticate(id, edge.Audit(edge.AuditLogger(s.Log), s.gateUntrusted(next)))
}

func (s *Server) gateUntrusted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.From(r.Context()).Trusted() && !untrustedAllowed(r) {
			writeError(w, errdefs.Forbidden("not authorized"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// untrustedAllowed is LXD's list of what an untrusted client may reach.
func untrustedAllowed(r *http.Request) bool {
	switch r.URL.Path {
	case "/", "/1.0", "/1.0/":
		return r.Method == http.MethodGet
	case "/1.0/certificates":
		return r.Method == http.MethodPost
	}
	return false
}

// untrustedServer is GET /1.0 for an untrusted client: just enough to
// know how to authenticate, as LXD answers.
func (s *Server) untrustedServer() api.ServerUntrusted {
	info := s.serverInfo()
	u := info.ServerUntrusted
	u.Auth = "untrusted"
	u.AuthMethods = []string{"tls"}
	return u
}

// remoteInfo fills in GET /1.0's parts about the network API: the
// certificate clients pin and where it listens.
func (s *Server) remoteInfo(info *api.Server) {
	if s.Trust == nil {
		return
	}
	info.AuthMethods = []string{"tls"}
	if c := s.Trust.ServerCert(); c != nil {
		info.Environment.Certificate = c.PEM
		info.Environment.CertificateFingerprint = c.Fingerprint
	}
	if addrs := s.Trust.Addresses(); addrs != nil {
		info.Environment.Addresses = addrs
	}
}
