// Package trust owns who may use hangard over the network: the server's
// TLS certificate, the trust store of client certificates, one-time trust
// tokens and the trust password (core.trust_password), with a rate limit
// on attempts to redeem either.
//
// # What it owns
//
//   - The server certificate: DATA_DIR/server.crt and server.key (mode
//     0600), an ECDSA P-384 self-signed certificate made at first start,
//     as LXD makes its own. Clients pin it (lxc stores it under
//     servercerts/), so it is never regenerated while the files exist.
//   - The trust store: the certificates table (store migration 10), with
//     an in-memory copy keyed by fingerprint so that authenticating a TLS
//     request (Identify) costs a map lookup, not a query. Every write
//     goes to the store first and then replaces the copy.
//   - Trust tokens: a token is an operation of class "token" (as in LXD
//     5.0: `lxc config trust list-tokens` and `revoke-token` read and
//     cancel operations) whose metadata holds the secret, the server's
//     fingerprint, its addresses and the request the token grants. The
//     secret itself is kept here, hashed, with the token's fate (live,
//     used, expired, revoked), so a second redemption says "already used"
//     rather than "not found". Tokens live in memory: a restart voids
//     them, as LXD's do.
//   - The trust password: stored only as a salted PBKDF2-SHA256 hash
//     (HashPassword), which the server configuration keeps and shows as
//     "true".
//   - Bearer API tokens (APITokens, store migration 12).
//   - Local users (Users, store migration 15): a name and a password,
//     kept only as its PBKDF2 hash (600,000 iterations, OWASP's figure:
//     about 0.1 s a login on one core, so a dialect logs in once per
//     session, not per request). Login is limited per source host, and
//     an unknown name is hashed against a dummy of the same work, so
//     neither the answer nor its time tells whether a name exists. A
//     user holds only what the auth groups naming it grant; Delete
//     takes it out of them in the same store transaction.
//
// # What it must not touch
//
// Authorization: what a trusted, restricted or metrics identity may do
// is the authorization core's business. This package says who a
// certificate is (auth.Identity); the edges put that in the request's
// context.
//
// # Invariants
//
//   - A fingerprint is the SHA-256 of the certificate's DER, lowercase
//     hex, everywhere (store, identity, API).
//   - Redeeming a token or the password, and a user's login, are limited
//     per source address (Limiter): a client guessing a password gets a
//     few tries a second.
//   - A token is redeemed at most once, even by concurrent requests.
package trust
