package client

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// The trust store: /1.0/certificates, trust tokens (operations of class
// "token") and the redemption of a token or the trust password by a client
// the server does not trust yet.
//
// Tokens and certificates belong to the server, not to a project: the
// calls here act from the default project whatever UseProject chose, so
// that a token issued while a project is current is listed and revoked
// from any.

// GetCertificates returns the trusted certificates.
func (c *Client) GetCertificates(ctx context.Context) ([]api.Certificate, error) {
	certs := []api.Certificate{}
	if _, err := c.UseProject("").queryStruct(ctx, http.MethodGet, "/1.0/certificates?recursion=1", nil, "", &certs); err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return certs, nil
}

// GetCertificate returns one trusted certificate, by its fingerprint or a
// prefix of it that names only one, and its ETag.
func (c *Client) GetCertificate(ctx context.Context, fingerprint string) (*api.Certificate, string, error) {
	var cert api.Certificate
	etag, err := c.UseProject("").queryStruct(ctx, http.MethodGet, certificatePath(fingerprint), nil, "", &cert)
	if err != nil {
		return nil, "", err
	}
	return &cert, etag, nil
}

// CertificateDER reads a certificate given as PEM (a client.crt) or as
// raw DER, which is what POST /1.0/certificates wants (base64 encoded).
func CertificateDER(data []byte) ([]byte, error) {
	if cert, err := ParseCertificatePEM(data); err == nil {
		return cert.Raw, nil
	} else if strings.Contains(string(data), "-----BEGIN") {
		return nil, err
	}
	if _, err := x509.ParseCertificate(data); err != nil {
		return nil, errors.New("not an X.509 certificate (neither PEM nor DER)")
	}
	return data, nil
}

// AddCertificate trusts the certificate cert (PEM or DER) as put says
// (put.Certificate is ignored) and returns its fingerprint.
func (c *Client) AddCertificate(ctx context.Context, cert []byte, put api.CertificatePut) (string, error) {
	der, err := CertificateDER(cert)
	if err != nil {
		return "", err
	}
	put.Certificate = base64.StdEncoding.EncodeToString(der)
	if put.Type == "" {
		put.Type = api.CertificateTypeClient
	}
	if _, err := c.UseProject("").queryStruct(ctx, http.MethodPost, "/1.0/certificates", api.CertificatesPost{CertificatePut: put}, "", nil); err != nil {
		return "", err
	}
	return CertificateFingerprint(der), nil
}

// UpdateCertificate replaces a certificate's name, type, restriction and
// projects (put.Certificate empty keeps the certificate itself); etag as
// in UpdateInstance.
func (c *Client) UpdateCertificate(ctx context.Context, fingerprint string, put api.CertificatePut, etag string) error {
	_, err := c.UseProject("").queryStruct(ctx, http.MethodPut, certificatePath(fingerprint), put, etag, nil)
	return err
}

// DeleteCertificate stops trusting a certificate.
func (c *Client) DeleteCertificate(ctx context.Context, fingerprint string) error {
	_, err := c.UseProject("").queryStruct(ctx, http.MethodDelete, certificatePath(fingerprint), nil, "", nil)
	return err
}

func certificatePath(fp string) string { return "/1.0/certificates/" + url.PathEscape(fp) }

// TokenRequest is what a trust token grants the client that redeems it.
type TokenRequest struct {
	// Name is the name the redeeming client's certificate gets; it is
	// also how list-tokens and revoke name the token.
	Name       string
	Restricted bool
	// Projects confines a restricted client to these projects.
	Projects []string
}

// TrustToken is a pending trust token: the operation that holds it and
// what it carries.
type TrustToken struct {
	// OperationID is the token's operation; cancelling it revokes the
	// token.
	OperationID string
	api.CertificateAddToken
}

// CreateToken asks the server for a one-time trust token for a client
// certificate. Its String() is the text to hand to the client, built as
// LXD builds it from the token operation's metadata.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (*TrustToken, error) {
	if req.Name == "" {
		return nil, errors.New("a trust token needs the name of the client it is for")
	}
	post := api.CertificatesPost{
		CertificatePut: api.CertificatePut{
			Name: req.Name, Type: api.CertificateTypeClient, Restricted: req.Restricted, Projects: req.Projects,
		},
		Token: true,
	}
	if post.Projects == nil {
		post.Projects = []string{}
	}
	r, _, err := c.UseProject("").Query(ctx, http.MethodPost, "/1.0/certificates", post, "")
	if err != nil {
		return nil, err
	}
	if r.Type != api.AsyncResponse {
		return nil, errors.New("invalid response from the server: a token request must answer with an operation")
	}
	op, err := c.newOperation(r)
	if err != nil {
		return nil, err
	}
	tok, err := api.CertificateAddTokenFromOperation(op.Get())
	if err != nil {
		return nil, fmt.Errorf("invalid token from the server: %w", err)
	}
	return &TrustToken{OperationID: op.ID(), CertificateAddToken: tok}, nil
}

// GetTokens returns the pending trust tokens (running token operations),
// oldest first.
func (c *Client) GetTokens(ctx context.Context) ([]TrustToken, error) {
	ops, err := c.UseProject("").GetOperations(ctx)
	if err != nil {
		return nil, err
	}
	toks := []TrustToken{}
	for _, op := range ops {
		if op.Class != api.OperationClassToken || op.StatusCode.IsFinal() {
			continue
		}
		tok, err := api.CertificateAddTokenFromOperation(op)
		if err != nil {
			// Not a certificate token (another kind of token
			// operation): not ours to list.
			continue
		}
		toks = append(toks, TrustToken{OperationID: op.ID, CertificateAddToken: tok})
	}
	return toks, nil
}

// RevokeToken cancels the pending tokens issued for client name (there may
// be several) and reports how many; none is a not-found error.
func (c *Client) RevokeToken(ctx context.Context, name string) (int, error) {
	toks, err := c.GetTokens(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range toks {
		if t.ClientName != name {
			continue
		}
		if err := c.UseProject("").CancelOperation(ctx, t.OperationID); err != nil && !IsNotFound(err) {
			return n, fmt.Errorf("revoke token for %s: %w", name, err)
		}
		n++
	}
	if n == 0 {
		return 0, &Error{StatusCode: http.StatusNotFound, Message: fmt.Sprintf("no pending trust token for %q", name)}
	}
	return n, nil
}

// IsTrusted reports whether the server trusts this client (GET /1.0's
// auth field).
func (c *Client) IsTrusted(ctx context.Context) (bool, error) {
	srv, _, err := c.GetServer(ctx)
	if err != nil {
		return false, err
	}
	return srv.Auth == "trusted", nil
}

// RedeemTrust asks the server to trust this client's TLS certificate,
// proving the right to with secret: a trust token (its full text, as the
// server needs the whole token) or the server's trust password. The
// server's refusal (used, expired or revoked token, wrong password, too
// many tries) is its own message.
func (c *Client) RedeemTrust(ctx context.Context, secret string) error {
	if c.addr == "" {
		return errors.New("trust is granted to a TLS client certificate: connect over HTTPS first")
	}
	_, err := c.UseProject("").queryStruct(ctx, http.MethodPost, "/1.0/certificates", api.CertificatesPost{Password: secret}, "", nil)
	return err
}

// Remote is a remote server this client was just trusted by (or already
// was): where it is, the certificate it is pinned to, and a client for it.
type Remote struct {
	Addr          string
	ServerCertPEM []byte
	Client        *Client
}

// ParseToken decodes a trust token's text and checks what a client needs
// of it: an address to go to, the server's fingerprint, and that it has
// not expired (by this machine's clock; the server decides in the end).
func ParseToken(s string, now time.Time) (api.CertificateAddToken, error) {
	tok, err := api.DecodeCertificateAddToken(strings.TrimSpace(s))
	if err != nil {
		return tok, fmt.Errorf("invalid trust token: %w", err)
	}
	switch {
	case len(tok.Fingerprint) != 64 || strings.Trim(strings.ToLower(tok.Fingerprint), "0123456789abcdef") != "":
		return tok, fmt.Errorf("invalid trust token: server fingerprint %q is not a SHA-256 in hex", tok.Fingerprint)
	case len(tok.Addresses) == 0:
		return tok, errors.New("invalid trust token: it names no server address")
	case !tok.ExpiresAt.IsZero() && now.After(tok.ExpiresAt):
		return tok, fmt.Errorf("trust token expired at %s", tok.ExpiresAt.Local().Format(time.RFC3339))
	}
	return tok, nil
}

// AddRemoteWithToken redeems a trust token: it goes to the token's
// addresses in turn, keeps the first server whose certificate has the
// token's fingerprint (another one is never sent the token), and has it
// trust clientCertPEM. The returned Remote's client is pinned to that
// server certificate.
func AddRemoteWithToken(ctx context.Context, token string, clientCertPEM, clientKeyPEM []byte) (*Remote, error) {
	tok, err := ParseToken(token, time.Now())
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, addr := range tok.Addresses {
		cert, err := GetServerCertificate(ctx, addr)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs = append(errs, err)
			continue
		}
		if fp := CertificateFingerprint(cert.Raw); !strings.EqualFold(fp, tok.Fingerprint) {
			errs = append(errs, &CertificateMismatchError{Addr: addr, Want: strings.ToLower(tok.Fingerprint), Found: fp})
			continue
		}
		certPEM := EncodeCertificatePEM(cert.Raw)
		c, err := ConnectHTTPS(addr, clientCertPEM, clientKeyPEM, certPEM)
		if err != nil {
			return nil, err
		}
		if err := trustOnce(ctx, c, strings.TrimSpace(token)); err != nil {
			c.Close()
			return nil, err
		}
		return &Remote{Addr: c.Addr(), ServerCertPEM: certPEM, Client: c}, nil
	}
	return nil, fmt.Errorf("no server of the token could be used: %w", errors.Join(errs...))
}

// AddRemoteWithPassword connects to addr pinned to serverCertPEM (which the
// caller accepted, from GetServerCertificate) and, unless the server
// already trusts clientCertPEM, has it trusted with the trust password.
func AddRemoteWithPassword(ctx context.Context, addr, password string, clientCertPEM, clientKeyPEM, serverCertPEM []byte) (*Remote, error) {
	if len(serverCertPEM) == 0 {
		return nil, errors.New("the server certificate to pin is missing")
	}
	c, err := ConnectHTTPS(addr, clientCertPEM, clientKeyPEM, serverCertPEM)
	if err != nil {
		return nil, err
	}
	if err := trustOnce(ctx, c, password); err != nil {
		c.Close()
		return nil, err
	}
	return &Remote{Addr: c.Addr(), ServerCertPEM: slices.Clone(serverCertPEM), Client: c}, nil
}

// trustOnce redeems secret unless the server already trusts the client
// (a certificate added before: nothing to spend).
func trustOnce(ctx context.Context, c *Client, secret string) error {
	ok, err := c.IsTrusted(ctx)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	if secret == "" {
		return errors.New("the server does not trust this client: give a trust token or the trust password")
	}
	if err := c.RedeemTrust(ctx, secret); err != nil {
		return err
	}
	// The answer says the certificate was added; check the server now
	// lets it in, so that a remote is never saved that does not work.
	if ok, err = c.IsTrusted(ctx); err != nil {
		return err
	}
	if !ok {
		return errors.New("the server accepted the secret but does not trust this client's certificate")
	}
	return nil
}
