// Package edge is what every HTTP dialect does before its own routes:
// say who the request is (Authenticator: an auth.Identity in the request's
// context) and keep the audit log (Audit: every denied and every mutating
// request, with who, where and the outcome).
//
// It decides nothing about permissions: an untrusted identity is still
// served, and each dialect gates what untrusted clients may reach (the
// LXD edge lets them read / and /1.0 and redeem a trust token);
// everything finer is the authorization core's.
//
// Identities:
//   - a request that came over a unix socket is the host's root
//     ({Kind: unix, Name: "root"}): the socket's permissions are the
//     check;
//   - a TLS request whose client certificate is in the trust store is
//     that certificate ({Kind: certificate} with the record's name,
//     fingerprint, type, restriction and projects);
//   - a request with an "Authorization: Bearer TOKEN" header is that
//     API token ({Kind: token}, its role as Type, confined to its project
//     unless it is an admin token), whatever the transport: the header
//     always wins, over the socket's root and over a client certificate,
//     so a tool handed a token acts with that token's power and no more.
//     A malformed, unknown, revoked, expired or wrong token is untrusted
//     (never a fallback to the transport's identity): the dialect answers
//     403, the audit log records it, and the Authenticator logs why;
//   - anything else is untrusted.
package edge
