package driver

import "bytes"

// Where a guest trusts the egress proxy's CA (Spec.EgressCA): the
// certificate alone in GuestCAFile, and appended to GuestCABundle, the
// bundle that OpenSSL, GnuTLS, curl, Go (crypto/x509 reads it first on
// Linux), Python and Node read on Debian, Ubuntu and Alpine alike. Both are
// made when absent (a busybox image has neither), with their directory.
// Nothing else in the guest changes: no environment variable, no other
// store.
const (
	GuestCAFile   = "/etc/ssl/certs/hangar-egress-ca.pem"
	GuestCABundle = "/etc/ssl/certs/ca-certificates.crt"
)

// The lines around the CA in the bundle: a start finds and replaces its
// own block, so it is never appended twice and a new CA (a daemon whose
// DATADIR/egress was made again) replaces the old one.
const (
	guestCABegin = "# hangar egress CA: begin (hangar rewrites this block at each start)\n"
	guestCAEnd   = "# hangar egress CA: end\n"
)

// TrustCA returns bundle with certPEM as hangar's block at its end, the
// bundle's other certificates untouched, and whether that changed it. An
// empty certPEM removes the block (egress turned off). Any earlier hangar
// block is dropped, wherever it is.
func TrustCA(bundle, certPEM []byte) ([]byte, bool) {
	out := stripGuestCA(bundle)
	if len(certPEM) > 0 {
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, guestCABegin...)
		out = append(out, certPEM...)
		if certPEM[len(certPEM)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, guestCAEnd...)
	}
	return out, !bytes.Equal(out, bundle)
}

// stripGuestCA removes every hangar block from bundle, into a new slice.
// A block starts with the begin line at the start of a line; a begin line
// without its end line is kept as it is: the bundle is not ours to cut
// short.
func stripGuestCA(bundle []byte) []byte {
	out := make([]byte, 0, len(bundle)+1024)
	rest, from := bundle, 0
	for {
		i := bytes.Index(rest[from:], []byte(guestCABegin))
		if i < 0 {
			break
		}
		i += from
		if i > 0 && rest[i-1] != '\n' {
			from = i + 1 // the text inside a line: not a block
			continue
		}
		j := bytes.Index(rest[i:], []byte(guestCAEnd))
		if j < 0 {
			break
		}
		out = append(out, rest[:i]...)
		rest, from = rest[i+j+len(guestCAEnd):], 0
	}
	return append(out, rest...)
}
