package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// PullRequest names an image in an OCI registry (the Docker Registry HTTP
// API v2, as Docker Hub, ghcr.io, quay.io and `registry:2` serve it).
type PullRequest struct {
	// Server is the registry: a host[:port], optionally with a scheme
	// ("docker.io", "https://ghcr.io", "http://127.0.0.1:5000"). An
	// http:// scheme means Insecure. Empty: Name is a full reference.
	Server string
	// Name is the repository with a tag or a digest ("library/alpine:3.20",
	// "org/app@sha256:..."); no tag means "latest".
	Name string
	// Insecure allows plain HTTP, to loopback registries only.
	Insecure bool
	// Username and Password authenticate to the registry; empty uses the
	// daemon's ~/.docker/config.json (and credential helpers) if it has an
	// entry for the registry, else anonymous access. They are never
	// logged nor stored.
	Username, Password string
}

// Reference returns the full image reference the request names, without
// credentials.
func (r PullRequest) Reference() (string, error) {
	ref, _, err := r.parse()
	if err != nil {
		return "", err
	}
	return ref.String(), nil
}

// parse validates the request and returns its reference.
func (r PullRequest) parse() (name.Reference, bool, error) {
	server, insecure := strings.TrimSpace(r.Server), r.Insecure
	switch {
	case strings.HasPrefix(server, "http://"):
		server, insecure = strings.TrimPrefix(server, "http://"), true
	case strings.HasPrefix(server, "https://"):
		server = strings.TrimPrefix(server, "https://")
	case strings.Contains(server, "://"):
		return nil, false, errdefs.Invalid("server %q: only http:// and https:// registries are supported", r.Server)
	}
	server = strings.TrimSuffix(server, "/")
	if strings.ContainsAny(server, "/?#@") {
		return nil, false, errdefs.Invalid("server %q: want a registry host[:port], like docker.io or 127.0.0.1:5000", r.Server)
	}
	if server != "" && insecure && !loopbackHost(server) {
		return nil, false, errdefs.Invalid("registry %s: plain HTTP (--insecure) is allowed only for loopback registries (127.0.0.0/8, ::1, localhost)", server)
	}
	if r.Name == "" {
		return nil, false, errdefs.Invalid("image reference: a repository name is required")
	}
	full := r.Name
	if server != "" {
		switch server {
		case "registry-1.docker.io", "index.docker.io":
			server = name.DefaultRegistry
		}
		full = server + "/" + strings.TrimPrefix(r.Name, "/")
	}
	var opts []name.Option
	if insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(full, opts...)
	if err != nil {
		return nil, false, errdefs.Invalid("invalid image reference %q: %v", full, err)
	}
	if insecure && !loopbackHost(ref.Context().RegistryStr()) {
		return nil, false, errdefs.Invalid("registry %s: plain HTTP (--insecure) is allowed only for loopback registries (127.0.0.0/8, ::1, localhost)", ref.Context().RegistryStr())
	}
	if (r.Username == "") != (r.Password == "") {
		return nil, false, errdefs.Invalid("credentials: both a user name and a password are needed")
	}
	return ref, insecure, nil
}

// loopbackHost reports whether host[:port] names this machine's loopback.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// schemeGuard keeps registry traffic on TLS unless the request allowed
// plain HTTP: go-containerregistry itself falls back to HTTP for loopback
// and private-range hosts, which would send credentials in the clear.
type schemeGuard struct {
	base     http.RoundTripper
	insecure bool
}

func (g schemeGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" {
		if !g.insecure || !loopbackHost(req.URL.Host) {
			// Try TLS instead, so a TLS registry on a private address
			// still works and a plain one fails.
			r2 := req.Clone(req.Context())
			u := *req.URL
			u.Scheme = "https"
			r2.URL = &u
			return g.base.RoundTrip(r2)
		}
	}
	return g.base.RoundTrip(req)
}

// registryClient talks to one repository with one set of credentials.
type registryClient struct {
	ref    name.Reference
	opts   []remote.Option
	blobRT http.RoundTripper // authenticated transport for blob GETs
	scheme string
}

func newRegistryClient(ctx context.Context, req PullRequest) (*registryClient, error) {
	ref, insecure, err := req.parse()
	if err != nil {
		return nil, err
	}
	base := remote.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = 30 * time.Second
	rt := schemeGuard{base: base, insecure: insecure}
	var auth authn.Authenticator = authn.Anonymous
	if req.Username != "" {
		auth = authn.FromConfig(authn.AuthConfig{Username: req.Username, Password: req.Password})
	} else if auth, err = authn.Resolve(ctx, authn.DefaultKeychain, ref.Context()); err != nil {
		return nil, errdefs.Invalid("registry credentials for %s: %v", ref.Context().RegistryStr(), err)
	}
	c := &registryClient{
		ref: ref,
		opts: []remote.Option{
			remote.WithContext(ctx),
			remote.WithTransport(rt),
			remote.WithAuth(auth),
			remote.WithUserAgent("hangard"),
			remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}),
		},
		scheme: "https",
	}
	if insecure {
		c.scheme = "http"
	}
	scopes := []string{ref.Context().Scope(transport.PullScope)}
	if c.blobRT, err = transport.NewWithContext(ctx, ref.Context().Registry, auth, rt, scopes); err != nil {
		return nil, registryError(ref, err)
	}
	return c, nil
}

// ResolveRemote reads an image's manifest and config from its registry and
// checks that this host can run it, without fetching its layers. For an
// index (a multi-architecture image) it picks the host's manifest; none is
// an invalid-argument error naming the architectures there are.
func (s *Service) ResolveRemote(ctx context.Context, req PullRequest) (*ResolvedImage, error) {
	if err := s.allowCreate(ctx); err != nil {
		return nil, err
	}
	c, err := newRegistryClient(ctx, req)
	if err != nil {
		return nil, err
	}
	what := c.ref.String()
	desc, err := remote.Get(c.ref, c.opts...)
	if err != nil {
		return nil, registryError(c.ref, err)
	}
	raw, mediaType, digest := desc.Manifest, desc.MediaType, desc.Digest
	if mediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, errdefs.Invalid("%s: invalid index: %v", what, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, errdefs.Invalid("%s: invalid index: %v", what, err)
		}
		d, err := pickManifest(im, what)
		if err != nil {
			return nil, err
		}
		if !d.MediaType.IsImage() {
			return nil, errdefs.Invalid("%s: the manifest for this host is a %s, not an image", what, d.MediaType)
		}
		child := c.ref.Context().Digest(d.Digest.String())
		cd, err := remote.Get(child, c.opts...)
		if err != nil {
			return nil, registryError(child, err)
		}
		raw, mediaType, digest = cd.Manifest, cd.MediaType, cd.Digest
	}
	if !mediaType.IsImage() {
		if mediaType.IsSchema1() {
			return nil, errdefs.Invalid("%s: Docker schema 1 manifests are not supported", what)
		}
		return nil, errdefs.Invalid("%s: %s is not an image manifest", what, mediaType)
	}
	if len(raw) > maxManifestSize {
		return nil, errdefs.Invalid("%s: manifest larger than %d bytes", what, maxManifestSize)
	}
	// Pulled by digest, go-containerregistry checked it; by tag, the digest
	// is what the bytes hash to, which verifyBytes confirms.
	if err := verifyBytes(raw, v1.Descriptor{Digest: digest}, "manifest"); err != nil {
		return nil, err
	}
	man, err := parseManifest(raw, what)
	if err != nil {
		return nil, err
	}
	fetch := registryFetcher{c: c}
	config, err := readBlob(ctx, fetch, man.Config, maxConfigSize, "config")
	if err != nil {
		return nil, err
	}
	cfg, arch, err := checkConfig(config, what)
	if err != nil {
		return nil, err
	}
	return &ResolvedImage{
		ref:      what,
		manifest: raw,
		digest:   digest,
		man:      man,
		config:   config,
		cfg:      cfg,
		arch:     arch,
		fetch:    fetch,
		source:   sourceRegistry,
	}, nil
}

// Pull fetches an image from a registry (ResolveRemote, then StoreRemote).
func (s *Service) Pull(ctx context.Context, req PullRequest, opts StoreOptions) (*RemoteImage, error) {
	ri, err := s.ResolveRemote(ctx, req)
	if err != nil {
		return nil, err
	}
	img, err := s.storeOCI(ctx, ri, opts)
	if err != nil {
		return nil, err
	}
	return &RemoteImage{Image: img, Reference: ri.ref}, nil
}

// StoreRemote stores an image ResolveRemote resolved; see storeOCI.
func (s *Service) StoreRemote(ctx context.Context, ri *ResolvedImage, opts StoreOptions) (*RemoteImage, error) {
	if err := s.allowCreate(ctx); err != nil {
		return nil, err
	}
	img, err := s.storeOCI(ctx, ri, opts)
	if err != nil {
		return nil, err
	}
	return &RemoteImage{Image: img, Reference: ri.ref}, nil
}

// registryFetcher reads blobs from the registry, with plain GETs on the
// authenticated transport: hashing and size checks are the caller's, so a
// wrong blob is named as such.
type registryFetcher struct{ c *registryClient }

func (f registryFetcher) open(ctx context.Context, d v1.Descriptor) (io.ReadCloser, error) {
	repo := f.c.ref.Context()
	u := url.URL{Scheme: f.c.scheme, Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/blobs/" + d.Digest.String()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: f.c.blobRT}).Do(req)
	if err != nil {
		return nil, registryError(f.c.ref, err)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, registryError(f.c.ref.Context().Digest(d.Digest.String()), err)
	}
	return resp.Body, nil
}

// blobReadError classifies an error reading a blob's body mid-way.
func blobReadError(d v1.Descriptor, err error) error {
	return fmt.Errorf("download blob %s: %w", d.Digest, err)
}

// registryError turns a registry or network error into one of the API's
// kinds: what does not exist is not found; refusals, unreachable
// registries and protocol errors are the request's fault as far as the
// client can tell (a 4xx naming the registry), never a 500.
func registryError(ref name.Reference, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return cancelled(err)
	}
	reg := ref.Context().RegistryStr()
	var terr *transport.Error
	if errors.As(err, &terr) {
		for _, d := range terr.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return errdefs.NotFound("image %s not found in registry %s: %s", ref, reg, d.Message)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return errdefs.Invalid("registry %s refused access to %s (check --creds or ~/.docker/config.json): %s", reg, ref, d.Message)
			}
		}
		switch terr.StatusCode {
		case http.StatusNotFound:
			return errdefs.NotFound("image %s not found in registry %s", ref, reg)
		case http.StatusUnauthorized, http.StatusForbidden:
			return errdefs.Invalid("registry %s refused access to %s (check --creds or ~/.docker/config.json)", reg, ref)
		}
		return errdefs.Invalid("registry %s: %v", reg, err)
	}
	var nerr net.Error
	var uerr *url.Error
	if errors.As(err, &nerr) || errors.As(err, &uerr) {
		return errdefs.Invalid("registry %s is unreachable: %v", reg, err)
	}
	return errdefs.Invalid("registry %s: %v", reg, err)
}

// RemoteImage is a stored image and the reference it was pulled as.
type RemoteImage struct {
	Image     api.Image
	Reference string
}
