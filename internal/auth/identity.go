package auth

import "context"

// Kind says how an identity proved itself.
type Kind string

const (
	// KindUnix is whoever reached the unix socket: root on the host.
	KindUnix Kind = "unix"
	// KindCertificate is a trusted TLS client certificate.
	KindCertificate Kind = "certificate"
	// KindToken is a bearer token or API key.
	KindToken Kind = "token"
	// KindUser is a local user who logged in with a name and password
	// (trust.Users): a dialect's session (a JSON-RPC connection, a /v/
	// authkey) acts as the user. A user holds only what its groups grant.
	KindUser Kind = "user"
	// KindInternal is the daemon itself (recovery, schedules).
	KindInternal Kind = "internal"
	// KindUntrusted is a client that proved nothing.
	KindUntrusted Kind = "untrusted"
)

// Identity is who a request acts as.
type Identity struct {
	Kind Kind
	// Name is what the identity is called in events and audit logs: the
	// certificate's name, the token's name, "root" for the socket.
	Name string
	// Fingerprint is a certificate's SHA-256 fingerprint (hex).
	Fingerprint string
	// Type is a certificate's type: "client" or "metrics".
	Type string
	// Restricted confines the identity to Projects.
	Restricted bool
	Projects   []string
	// Groups the identity belongs to, by name.
	Groups []string
	// Address is where the request came from ("@" for the unix socket).
	Address string
}

// Trusted tells whether the identity proved itself.
func (id Identity) Trusted() bool { return id.Kind != "" && id.Kind != KindUntrusted }

// Requestor is how the identity appears in a lifecycle event's requestor.
func (id Identity) Requestor() (username, protocol string) {
	switch id.Kind {
	case KindCertificate:
		return id.Fingerprint, "tls"
	case KindUnix:
		return "root", "unix"
	case KindToken:
		return id.Name, "token"
	case KindUser:
		return id.Name, "user"
	}
	return id.Name, string(id.Kind)
}

type ctxKey struct{}

// WithIdentity returns ctx acting as id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From returns the identity ctx acts as. A context without one acts as
// the daemon itself: the edges always set one, so only daemon-internal
// work (recovery, schedules, tests of a domain) reaches here without.
func From(ctx context.Context) Identity {
	if id, ok := ctx.Value(ctxKey{}).(Identity); ok {
		return id
	}
	return Identity{Kind: KindInternal, Name: "hangard"}
}

// Daemon is the identity of the daemon itself.
var Daemon = Identity{Kind: KindInternal, Name: "hangard"}

// AsDaemon returns ctx acting as the daemon: for the core's own reads
// whose answer must not depend on who asked (is this network in use by
// anyone?), never to act on a caller's behalf.
func AsDaemon(ctx context.Context) context.Context { return WithIdentity(ctx, Daemon) }
