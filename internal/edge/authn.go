package edge

import (
	"net"
	"net/http"

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

// Authenticator identifies requests.
type Authenticator struct {
	Trust TrustStore
}

// Identify returns who r is.
func (a *Authenticator) Identify(r *http.Request) auth.Identity {
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
