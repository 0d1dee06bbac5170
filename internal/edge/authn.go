package edge

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/trust"
)

// TrustStore says who a client certificate is. *trust.Service is one.
type TrustStore interface {
	Identify(fingerprint string) (auth.Identity, bool)
}

// Root is the identity of whoever reaches the unix socket.
var Root = auth.Identity{Kind: auth.KindUnix, Name: "root"}

// Untrusted is the identity of a client that proved nothing.
var Untrusted = auth.Identity{Kind: auth.KindUntrusted}

// TokenStore says who a bearer token is. *trust.APITokens is one.
type TokenStore interface {
	Identify(ctx context.Context, token string) (auth.Identity, error)
}

// Authenticator identifies requests.
type Authenticator struct {
	Trust TrustStore
	// Tokens checks bearer tokens; nil: a bearer header is untrusted.
	Tokens TokenStore
	// Log gets why a bearer token was refused (never the token itself);
	// slog.Default() when nil.
	Log *slog.Logger
}

// Identify returns who r is.
func (a *Authenticator) Identify(r *http.Request) auth.Identity {
	// A bearer header always means the token's identity, on the socket as
	// over TLS: a tool given a token acts with that token's power, not
	// with whatever its transport would have granted.
	if tok, ok := bearer(r); ok {
		return a.identifyToken(r, tok)
	}
	// net/http records the listener's address on every connection's
	// context: "unix" cannot be forged by a network client.
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok && la.Network() == "unix" {
		return Root
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 || a.Trust == nil {
		return Untrusted
	}
	// The leaf: the client proved it holds its key in the handshake.
	if id, ok := a.Trust.Identify(trust.Fingerprint(r.TLS.PeerCertificates[0].Raw)); ok {
		return id
	}
	return Untrusted
}

// Identifier is anything that says who a request is.
type Identifier interface {
	Identify(r *http.Request) auth.Identity
}

// Authenticate puts the request's identity in its context for next.
func Authenticate(a Identifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := a.Identify(r)
		// Where it came from, for lifecycle events' requestor and the
		// audit log: the peer's address over TCP, "@" on the socket.
		id.Address = r.RemoteAddr
		if id.Address == "" {
			id.Address = "@"
		}
		next.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
	})
}

// bearer returns the token of an "Authorization: Bearer TOKEN" header,
// and whether the request carries such a header at all (an empty or
// blank token is still a bearer request, and untrusted).
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func (a *Authenticator) identifyToken(r *http.Request, tok string) auth.Identity {
	if a.Tokens == nil {
		return Untrusted
	}
	id, err := a.Tokens.Identify(r.Context(), tok)
	if err != nil {
		log := a.Log
		if log == nil {
			log = slog.Default()
		}
		// The audit log records the 403 that follows; this says why.
		log.Warn("bearer token refused", "source", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
		return Untrusted
	}
	return id
}
