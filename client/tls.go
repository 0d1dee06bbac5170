package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"strings"
	"time"
)

// DefaultHTTPSPort is the port of a remote address that names none, as
// LXD's.
const DefaultHTTPSPort = "8443"

// NormalizeAddr turns what a user types for a remote ("host",
// "host:port", "https://host:port/", "[::1]") into HOST:PORT.
func NormalizeAddr(s string) (string, error) {
	orig := s
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if scheme != "https" {
			return "", fmt.Errorf("remote address %q: only https:// is supported", orig)
		}
		s = rest
	}
	s = strings.TrimSuffix(s, "/")
	if s == "" || strings.ContainsAny(s, "/?#@ ") {
		return "", fmt.Errorf("remote address %q: want HOST[:PORT] or https://HOST[:PORT]", orig)
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: the whole is the host, an IPv6 one maybe in brackets.
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), DefaultHTTPSPort
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
			return "", fmt.Errorf("remote address %q: want HOST[:PORT] or https://HOST[:PORT]", orig)
		}
	}
	if host == "" {
		return "", fmt.Errorf("remote address %q has no host", orig)
	}
	return net.JoinHostPort(host, port), nil
}

// CertificateFingerprint is a certificate's fingerprint as LXD and hangard
// show it: the SHA-256 of its DER, in hex.
func CertificateFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ParseCertificatePEM returns the first certificate of a PEM text. Anything
// else (a key, garbage) is an error saying so.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		return cert, nil
	}
}

// EncodeCertificatePEM returns a certificate's PEM text.
func EncodeCertificatePEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// GenerateClientCertificate makes a self-signed client certificate and its
// key, both PEM, as lxc makes its client.crt on first use: ECDSA P-384,
// valid ten years, for TLS client authentication.
func GenerateClientCertificate(commonName string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate client key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("generate client certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"hangar"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create client certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode client key: %w", err)
	}
	return EncodeCertificatePEM(der), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// CertificateMismatchError says the server presented another certificate
// than the one pinned for it: a different server, a regenerated
// certificate, or someone in the middle.
type CertificateMismatchError struct {
	Addr        string
	Want, Found string // fingerprints
}

func (e *CertificateMismatchError) Error() string {
	return fmt.Sprintf("the server at %s presented certificate %s, not the expected %s: refusing to talk to it",
		e.Addr, e.Found, e.Want)
}

// pinnedTLSConfig is the TLS configuration of a connection to addr: TLS 1.2
// at least, our client certificate, and the server's certificate checked
// against pinned (its exact DER) rather than against certificate
// authorities, as lxc does for remotes whose certificate it accepted.
// pinned nil verifies the server against the system's roots instead.
func pinnedTLSConfig(addr string, clientCert *tls.Certificate, pinned *x509.Certificate) (*tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("remote address %q: %w", addr, err)
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: host,
		// Websockets need HTTP/1.1's Upgrade.
		NextProtos: []string{"http/1.1"},
	}
	if clientCert != nil {
		conf.Certificates = []tls.Certificate{*clientCert}
	}
	if pinned != nil {
		// The pin replaces the chain check: a self-signed server
		// certificate names no CA and often not the address either.
		conf.InsecureSkipVerify = true
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("the server at %s presented no certificate", addr)
			}
			if got := cs.PeerCertificates[0].Raw; !bytes.Equal(got, pinned.Raw) {
				return &CertificateMismatchError{Addr: addr, Want: CertificateFingerprint(pinned.Raw), Found: CertificateFingerprint(got)}
			}
			return nil
		}
	}
	return conf, nil
}

// ConnectHTTPS returns a Client for the hangard (or LXD) at addr
// (HOST[:PORT] or https://HOST[:PORT]) over TLS 1.2 or later, presenting
// the client certificate clientCertPEM/clientKeyPEM (both may be nil for
// an anonymous client, which the server treats as untrusted) and accepting
// only the server certificate serverCertPEM; a nil serverCertPEM checks the
// server against the system's certificate authorities instead. Like
// Connect, it does not contact the server.
func ConnectHTTPS(addr string, clientCertPEM, clientKeyPEM, serverCertPEM []byte) (*Client, error) {
	addr, err := NormalizeAddr(addr)
	if err != nil {
		return nil, err
	}
	var clientCert *tls.Certificate
	if len(clientCertPEM) > 0 || len(clientKeyPEM) > 0 {
		pair, err := tls.X509KeyPair(clientCertPEM, clientKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		clientCert = &pair
	}
	var pinned *x509.Certificate
	if len(serverCertPEM) > 0 {
		if pinned, err = ParseCertificatePEM(serverCertPEM); err != nil {
			return nil, fmt.Errorf("server certificate: %w", err)
		}
	}
	conf, err := pinnedTLSConfig(addr, clientCert, pinned)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	transport := &http.Transport{
		DialContext:         dialer.DialContext,
		TLSClientConfig:     conf,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConns:        16,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     60 * time.Second,
	}
	return &Client{
		addr:      addr,
		base:      "https://" + addr,
		wsBase:    "wss://" + addr,
		transport: transport,
		http:      &http.Client{Transport: transport},
		UserAgent: "hangar-client",
	}, nil
}

// GetServerCertificate connects to addr and returns the certificate the
// server presents, without trusting it: the caller decides (a fingerprint
// from a token, or a user who accepts it) whether to pin it.
func GetServerCertificate(ctx context.Context, addr string) (*x509.Certificate, error) {
	addr, err := NormalizeAddr(addr)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 10 * time.Second},
		Config: &tls.Config{
			MinVersion: tls.VersionTLS12,
			ServerName: host,
			// Nothing is sent on this connection: it only reads the
			// certificate, which the caller then checks.
			InsecureSkipVerify: true,
		},
	}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctxErr := contextError(err); ctxErr != nil {
			return nil, ctxErr
		}
		return nil, &ConnectError{Addr: addr, Err: err}
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("the server at %s presented no certificate", addr)
	}
	return certs[0], nil
}
