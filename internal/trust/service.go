package trust

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/store"
)

// Certificate is a trusted client certificate's record.
type Certificate = store.Certificate

// DB is what the service needs of the store.
type DB interface {
	CreateCertificate(ctx context.Context, c store.Certificate) error
	GetCertificate(ctx context.Context, prefix string) (store.Certificate, error)
	ListCertificates(ctx context.Context) ([]store.Certificate, error)
	UpdateCertificate(ctx context.Context, fp string, c store.Certificate) error
	DeleteCertificate(ctx context.Context, fp string) error
	MissingProjects(ctx context.Context, names []string) ([]string, error)
}

// Ops starts the operations that stand for tokens.
type Ops interface {
	Start(spec operation.Spec) *operation.Op
}

// Config wires a Service.
type Config struct {
	DB   DB
	Ops  Ops
	Cert *ServerCert
	// Password returns the stored hash of core.trust_password, "" when
	// unset. Nil: no password.
	Password func() string
	// TokenExpiry returns core.remote_token_expiry ("" never expires).
	TokenExpiry func() string
	// Addresses returns where the HTTPS API listens ("host:port"), none
	// when it does not.
	Addresses func() []string
	// Limiter caps redemption attempts per source; nil: 5 at once, then
	// 2 a second.
	Limiter *Limiter
	Now     func() time.Time // time.Now when nil
	Log     *slog.Logger
}

// Service is the trust store with tokens and the trust password. Its
// methods are safe for concurrent use.
type Service struct {
	cfg Config

	// cache maps fingerprints to the records, replaced whole after every
	// write: readers (every TLS request) never lock.
	cache   atomic.Pointer[map[string]cached]
	writeMu sync.Mutex // serialises writes with their cache refresh

	tokensMu sync.Mutex
	tokens   map[string]*token // by secret
}

type cached struct {
	cert            Certificate
	notBefore, then time.Time // validity: then is NotAfter
}

// New loads the trust store.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Limiter == nil {
		cfg.Limiter = &Limiter{Rate: 2, Burst: 5}
	}
	if cfg.Password == nil {
		cfg.Password = func() string { return "" }
	}
	if cfg.TokenExpiry == nil {
		cfg.TokenExpiry = func() string { return "" }
	}
	if cfg.Addresses == nil {
		cfg.Addresses = func() []string { return nil }
	}
	s := &Service{cfg: cfg, tokens: map[string]*token{}}
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// ServerCert returns the server's certificate.
func (s *Service) ServerCert() *ServerCert { return s.cfg.Cert }

// Addresses returns where the HTTPS API listens.
func (s *Service) Addresses() []string { return s.cfg.Addresses() }

func (s *Service) reload(ctx context.Context) error {
	certs, err := s.cfg.DB.ListCertificates(ctx)
	if err != nil {
		return fmt.Errorf("load trust store: %w", err)
	}
	m := make(map[string]cached, len(certs))
	for _, c := range certs {
		x, err := parsePEM(c.Certificate)
		if err != nil {
			// A row no client can match: skip it, say so, keep serving.
			s.cfg.Log.Warn("trust store: unreadable certificate", "name", c.Name, "fingerprint", c.Fingerprint, "err", err)
			continue
		}
		m[c.Fingerprint] = cached{cert: c, notBefore: x.NotBefore, then: x.NotAfter}
	}
	s.cache.Store(&m)
	return nil
}

// Identify returns the identity of the client certificate with
// fingerprint fp, false when it is not trusted (unknown, or outside its
// validity).
func (s *Service) Identify(fp string) (auth.Identity, bool) {
	m := s.cache.Load()
	if m == nil {
		return auth.Identity{}, false
	}
	c, ok := (*m)[fp]
	if !ok {
		return auth.Identity{}, false
	}
	if now := s.cfg.Now(); now.Before(c.notBefore) || now.After(c.then) {
		return auth.Identity{}, false
	}
	return auth.Identity{
		Kind:        auth.KindCertificate,
		Name:        c.cert.Name,
		Fingerprint: c.cert.Fingerprint,
		Type:        c.cert.Type,
		Restricted:  c.cert.Restricted,
		Projects:    slices.Clone(c.cert.Projects),
	}, true
}

// List returns every trusted certificate.
func (s *Service) List(ctx context.Context) ([]Certificate, error) {
	return s.cfg.DB.ListCertificates(ctx)
}

// Get returns the certificate whose fingerprint starts with prefix.
func (s *Service) Get(ctx context.Context, prefix string) (Certificate, error) {
	if err := checkFingerprintPrefix(prefix); err != nil {
		return Certificate{}, err
	}
	return s.cfg.DB.GetCertificate(ctx, prefix)
}

func checkFingerprintPrefix(p string) error {
	if p == "" || len(p) > 64 || strings.Trim(strings.ToLower(p), "0123456789abcdef") != "" {
		return errdefs.NotFound("certificate %q not found", p)
	}
	return nil
}

// Put is what a client may set of a certificate.
type Put struct {
	Name       string
	Type       string
	Restricted bool
	Projects   []string
}

// Add trusts the certificate of DER der as put says. An empty name is
// the certificate's common name.
func (s *Service) Add(ctx context.Context, der []byte, put Put) (Certificate, error) {
	x, err := parseDER(der)
	if err != nil {
		return Certificate{}, err
	}
	if err := s.checkUsable(x); err != nil {
		return Certificate{}, err
	}
	if put.Name == "" {
		put.Name = x.Subject.CommonName
	}
	if err := s.validate(ctx, &put); err != nil {
		return Certificate{}, err
	}
	c := Certificate{
		Fingerprint: Fingerprint(x.Raw),
		Name:        put.Name,
		Type:        put.Type,
		Restricted:  put.Restricted,
		Projects:    put.Projects,
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.Raw})),
		CreatedAt:   s.cfg.Now().UTC(),
	}
	err = s.write(ctx, func() error { return s.cfg.DB.CreateCertificate(ctx, c) })
	if err != nil {
		return Certificate{}, err
	}
	s.cfg.Log.Info("certificate trusted", "name", c.Name, "fingerprint", c.Fingerprint, "type", c.Type, "restricted", c.Restricted)
	return c, nil
}

// Update sets put on the certificate of fingerprint prefix fp and, when
// certPEM is not empty, replaces the certificate itself (its fingerprint
// changes with it). It returns the record written.
func (s *Service) Update(ctx context.Context, fp string, put Put, certPEM string) (Certificate, error) {
	old, err := s.Get(ctx, fp)
	if err != nil {
		return Certificate{}, err
	}
	if put.Name == "" {
		return Certificate{}, errdefs.Invalid("certificate name must not be empty")
	}
	if err := s.validate(ctx, &put); err != nil {
		return Certificate{}, err
	}
	c := old
	c.Name, c.Type, c.Restricted, c.Projects = put.Name, put.Type, put.Restricted, put.Projects
	if certPEM != "" && strings.TrimSpace(certPEM) != strings.TrimSpace(old.Certificate) {
		x, err := parsePEM(certPEM)
		if err != nil {
			return Certificate{}, err
		}
		if err := s.checkUsable(x); err != nil {
			return Certificate{}, err
		}
		c.Fingerprint = Fingerprint(x.Raw)
		c.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: x.Raw}))
	}
	if err := s.write(ctx, func() error { return s.cfg.DB.UpdateCertificate(ctx, old.Fingerprint, c) }); err != nil {
		return Certificate{}, err
	}
	return c, nil
}

// Delete stops trusting the certificate of fingerprint prefix fp and
// returns its full fingerprint.
func (s *Service) Delete(ctx context.Context, fp string) (string, error) {
	old, err := s.Get(ctx, fp)
	if err != nil {
		return "", err
	}
	if err := s.write(ctx, func() error { return s.cfg.DB.DeleteCertificate(ctx, old.Fingerprint) }); err != nil {
		return "", err
	}
	s.cfg.Log.Info("certificate removed", "name", old.Name, "fingerprint", old.Fingerprint)
	return old.Fingerprint, nil
}

// write runs a store write and refreshes the cache, one write at a time
// so the cache never goes back to an older state.
func (s *Service) write(ctx context.Context, fn func() error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := fn(); err != nil {
		return err
	}
	// The write is done: refresh even if the caller has gone.
	return s.reload(context.WithoutCancel(ctx))
}

// validate checks put and normalises it: the default type is client, a
// nil project list is empty, and every project named must exist.
func (s *Service) validate(ctx context.Context, put *Put) error {
	if strings.TrimSpace(put.Name) == "" {
		return errdefs.Invalid("certificate name must not be empty")
	}
	switch put.Type {
	case "":
		put.Type = api.CertificateTypeClient
	case api.CertificateTypeClient, api.CertificateTypeMetrics:
	default:
		return errdefs.Invalid("certificate type %q: want %q or %q", put.Type, api.CertificateTypeClient, api.CertificateTypeMetrics)
	}
	if put.Projects == nil {
		put.Projects = []string{}
	}
	seen := map[string]bool{}
	for _, p := range put.Projects {
		if p == "" {
			return errdefs.Invalid("certificate projects: empty project name")
		}
		if seen[p] {
			return errdefs.Invalid("certificate projects: %q listed twice", p)
		}
		seen[p] = true
	}
	missing, err := s.cfg.DB.MissingProjects(ctx, put.Projects)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return errdefs.Invalid("certificate projects: no project %s", strings.Join(quoteAll(missing), ", "))
	}
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// checkUsable refuses certificates no client could use: outside their
// validity, or RSA below 2048 bits (LXD's rules).
func (s *Service) checkUsable(x *x509.Certificate) error {
	now := s.cfg.Now()
	if now.Before(x.NotBefore) {
		return errdefs.Invalid("certificate is not valid before %s", x.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(x.NotAfter) {
		return errdefs.Invalid("certificate expired on %s", x.NotAfter.UTC().Format(time.RFC3339))
	}
	if k, ok := x.PublicKey.(*rsa.PublicKey); ok && k.Size()*8 < 2048 {
		return errdefs.Invalid("certificate's RSA key is too weak (%d bits, 2048 at least)", k.Size()*8)
	}
	return nil
}

func parseDER(der []byte) (*x509.Certificate, error) {
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errdefs.Invalid("not an X.509 certificate: %v", err)
	}
	return x, nil
}

func parsePEM(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errdefs.Invalid("not a PEM certificate")
	}
	return parseDER(b.Bytes)
}

// x509ParseQuiet returns the common name of a DER certificate.
func x509ParseQuiet(der []byte) (string, error) {
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	return x.Subject.CommonName, nil
}
