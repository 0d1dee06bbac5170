// Package egress is hangard's egress proxy: the host side of seed 002's
// credentials. An instance's guest sees a credential only as a
// placeholder in its environment; the proxy, on the instance's network
// path, sets the credential's header with the real value on requests to
// the hosts the credential names. The real value never enters the guest.
//
// # Path of a connection
//
// The firewall (internal/network/firewall, Egress rules) redirects new
// TCP connections to ports 80 and 443 from an egress-enabled instance's
// addresses on its bridge to the proxy's port on the bridge's own
// address. The proxy:
//
//  1. asks its Resolver for the policy of the source address (the
//     network manager maps address -> instance, the core instance ->
//     credentials and real values); an unknown source is closed;
//  2. reads the original destination with SO_ORIGINAL_DST (conntrack);
//     a connection that was not redirected is closed;
//  3. with no credential at all, splices bytes through untouched;
//  4. else peeks the first byte: 0x16 is a TLS handshake, anything else
//     HTTP/1.x.
//
// HTTP: each request on the connection (keep-alive) is read, the headers
// of rules whose hosts match its Host are set (replacing what the guest
// sent: typically the placeholder), and it is written to the original
// destination; bodies stream both ways, 1xx answers pass, a 101 upgrade
// turns the connection into a splice. The Host header is the guest's
// word only, so a secret goes out in clear text only when Host resolves
// (on the host) to the original destination: a guest cannot send
// "Host: api.example.com" to its own server and collect the value.
//
// HTTPS: the ClientHello's server name is read (by crypto/tls, on a
// copy of the first record; nothing is consumed). A name a credential
// names is intercepted: the proxy first connects to the original
// destination over TLS and verifies its certificate for that name against
// the host's roots (Options.RootCAs; nil is the system pool, which honours
// SSL_CERT_FILE), then completes the guest's handshake with a leaf for
// the name signed by the daemon's CA, and relays HTTP as above with the
// rules of the verified name. Only http/1.1 is offered on both sides. Any
// other name, or none (an IP literal sends none), is spliced: no
// interception, the guest sees the server's own certificate. A malformed
// ClientHello closes the connection.
//
// # The CA
//
// One per daemon, made once in DATADIR/egress: ca.key (ECDSA P-256, PEM,
// 0600, written before the certificate) and ca.crt (PEM, ten years).
// Leaves (ECDSA P-256, seven days) are made on first use per name and
// cached in memory. Guests trust ca.crt; the key never leaves the host.
// The core hands the certificate to the driver of each instance with
// egress (driver.Spec.EgressCA) and the guest trusts it from its first
// process on: the VM agent, or the container driver in the root before
// PID 1, writes /etc/ssl/certs/hangar-egress-ca.pem and a marked block in
// /etc/ssl/certs/ca-certificates.crt (driver.TrustCA: once, replaced by a
// new CA, removed when egress is turned off).
//
// # What it must not do
//
// Never log or return a real value, never terminate TLS for a host no
// credential names, never send a secret to a server that did not prove
// (TLS) or resolve (HTTP) to be the named host.
//
// Identity is the source address on the bridge. Spoofing another
// instance's address is what security.mac_filtering (and IP filtering)
// stop; an instance sharing a bridge with untrusted neighbours should have
// them.
package egress
