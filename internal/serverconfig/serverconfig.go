// Package serverconfig owns the server's configuration (GET/PUT/PATCH
// /1.0 "config"): the table of keys hangard knows, their defaults and
// validation, and the current values, persisted in the store's config
// table. It does not act on the values; the daemon's parts read them
// (e.g. the image cache sweep reads images.remote_cache_expiry, the image
// store images.max_unpacked_size at every unpack).
//
// Only keys set explicitly are stored and shown, as in LXD; a key not set
// has its default.
package serverconfig

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/trust"
	"github.com/hangar-dev/hangar/internal/units"
)

// Keys hangard knows.
const (
	// ImagesRemoteCacheExpiry is how many days a cached image (a copy of a
	// remote one) is kept unused; 0 keeps them for ever.
	ImagesRemoteCacheExpiry = "images.remote_cache_expiry"
	// ImagesMaxUnpackedSize caps what one image may expand to when it is
	// unpacked (bytes, or a size with a unit: "10GiB"). Unset, the image
	// store picks a default from the free space of its filesystem at
	// each unpack (internal/image).
	ImagesMaxUnpackedSize = "images.max_unpacked_size"
	// ImagesCompressionAlgorithm is how a published instance is
	// compressed when the request names none (LXD's key and default).
	ImagesCompressionAlgorithm = "images.compression_algorithm"
	// CoreHTTPSAddress is where the API is also served over TLS
	// ("host:port"; "" serves only the unix socket). Applied at once: the
	// daemon registers an OnChange hook that opens and closes listeners.
	CoreHTTPSAddress = "core.https_address"
	// CoreTrustPassword is the password an untrusted client may give to
	// have its certificate trusted. Stored only as a salted hash and shown
	// as "true", as LXD does.
	CoreTrustPassword = "core.trust_password"
	// CoreRemoteTokenExpiry is how long a trust token stays valid (LXD's
	// syntax: "30M", "1H", "2d"; "" never expires).
	CoreRemoteTokenExpiry = "core.remote_token_expiry"
)

// minUnpackedSize is the least images.max_unpacked_size: below 1 MiB no
// root filesystem fits.
const minUnpackedSize = 1 << 20

type key struct {
	def      string
	validate func(string) error
	// store turns a valid value into what is kept (a password's hash);
	// nil keeps it as given.
	store func(string) (string, error)
	// hidden keys show as "true" when set; setting one to true (the JSON
	// boolean or the text a client read back) keeps its value, so a
	// client that PUTs back what it read keeps the password.
	hidden bool
}

var keys = map[string]key{
	ImagesRemoteCacheExpiry: {def: "10", validate: nonNegativeInt},
	ImagesMaxUnpackedSize:   {def: "", validate: unpackedSize},
	// What the image store's Publish writes; LXD runs any command named
	// here, hangard writes the formats it imports.
	ImagesCompressionAlgorithm: {def: "gzip", validate: oneOf("gzip", "xz", "zstd", "bzip2", "none")},
	CoreHTTPSAddress:           {def: "", validate: hostPort},
	CoreTrustPassword:          {def: "", validate: func(string) error { return nil }, store: trust.HashPassword, hidden: true},
	CoreRemoteTokenExpiry: {def: "", validate: func(v string) error {
		_, err := trust.ParseExpiry(time.Now(), v)
		return err
	}},
}

// hostPort accepts "host:port" and ":port" with a numeric port.
func hostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %v", v, err)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", v, port)
	}
	return nil
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(allowed, v) {
			return nil
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

func nonNegativeInt(v string) error {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a whole number of 0 or more", v)
	}
	return nil
}

func unpackedSize(v string) error {
	n, err := ParseByteSize(v)
	if err != nil {
		return err
	}
	if n < minUnpackedSize {
		return fmt.Errorf("%q is below the minimum of 1MiB", v)
	}
	return nil
}

// ParseByteSize reads a size as LXD writes it (package units).
func ParseByteSize(v string) (int64, error) { return units.ParseByteSize(v) }

// DB is what the service needs from persistence.
type DB interface {
	GetServerConfig(ctx context.Context) (map[string]string, error)
	SetServerConfig(ctx context.Context, cfg map[string]string) error
}

// Service holds the configuration. Its methods are safe for concurrent use.
type Service struct {
	db    DB
	mu    sync.Mutex
	cur   map[string]string
	hooks map[string]func(ctx context.Context, value string) error
}

// OnChange registers apply to run when key's value changes (value is the
// new value, its default when unset), before the change is stored: an
// error refuses the change, and the hooks that already ran for the same
// request are called back with the old values. It runs with the service's
// lock held, so it must not call the service.
func (s *Service) OnChange(key string, apply func(ctx context.Context, value string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hooks == nil {
		s.hooks = map[string]func(context.Context, string) error{}
	}
	s.hooks[key] = apply
}

// New loads the configuration. Stored keys this hangard does not know are
// kept (a newer hangard wrote them) but not shown.
func New(ctx context.Context, db DB) (*Service, error) {
	cur, err := db.GetServerConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load server config: %w", err)
	}
	return &Service{db: db, cur: cur}, nil
}

// Get returns the keys set explicitly.
func (s *Service) Get() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.cur {
		if kd, ok := keys[k]; ok {
			if kd.hidden {
				v = "true"
			}
			out[k] = v
		}
	}
	return out
}

// Replace sets the configuration to cfg, as PUT /1.0 does: keys missing
// from it go back to their defaults.
func (s *Service) Replace(ctx context.Context, cfg map[string]any) error {
	return s.update(ctx, cfg, true)
}

// Patch changes the keys in cfg, as PATCH /1.0 does; a key set to "" or
// null goes back to its default.
func (s *Service) Patch(ctx context.Context, cfg map[string]any) error {
	return s.update(ctx, cfg, false)
}

func (s *Service) update(ctx context.Context, cfg map[string]any, replace bool) error {
	set := map[string]string{}
	keep := map[string]bool{}
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		kd, ok := keys[k]
		if !ok {
			return errdefs.Invalid("unknown server config key %q", k)
		}
		if kd.hidden && (cfg[k] == true || cfg[k] == "true") {
			keep[k] = true
			continue
		}
		v, err := stringValue(cfg[k])
		if err != nil {
			return errdefs.Invalid("server config %s: %v", k, err)
		}
		if v != "" {
			if err := kd.validate(v); err != nil {
				return errdefs.Invalid("server config %s: %v", k, err)
			}
			if kd.store != nil {
				if v, err = kd.store(v); err != nil {
					return fmt.Errorf("server config %s: %w", k, err)
				}
			}
		}
		set[k] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := maps.Clone(s.cur)
	if replace {
		for k := range keys {
			if !keep[k] {
				delete(next, k)
			}
		}
	}
	for k, v := range set {
		if v == "" {
			delete(next, k)
		} else {
			next[k] = v
		}
	}
	undo, err := s.applyLocked(ctx, next)
	if err != nil {
		return err
	}
	if err := s.db.SetServerConfig(ctx, next); err != nil {
		undo()
		return err
	}
	s.cur = next
	return nil
}

// applyLocked runs the hooks of the keys whose value differs between the
// current configuration and next, in key order. It returns how to undo
// them; on error it has undone those that ran.
func (s *Service) applyLocked(ctx context.Context, next map[string]string) (undo func(), err error) {
	valueIn := func(m map[string]string, k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		return keys[k].def
	}
	var ran []string
	undo = func() {
		for i := len(ran) - 1; i >= 0; i-- {
			k := ran[i]
			// Back to what was working a moment ago; if even that fails
			// the next change or restart retries.
			_ = s.hooks[k](context.WithoutCancel(ctx), valueIn(s.cur, k))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.hooks)) {
		old, nv := valueIn(s.cur, k), valueIn(next, k)
		if old == nv {
			continue
		}
		if err := s.hooks[k](ctx, nv); err != nil {
			undo()
			return nil, errdefs.Invalid("server config %s: %v", k, err)
		}
		ran = append(ran, k)
	}
	return undo, nil
}

// Apply runs every hook with the current value of its key: at start, to
// open what the stored configuration asks for.
func (s *Service) Apply(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range slices.Sorted(maps.Keys(s.hooks)) {
		v, ok := s.cur[k]
		if !ok {
			v = keys[k].def
		}
		if err := s.hooks[k](ctx, v); err != nil {
			return fmt.Errorf("server config %s: %w", k, err)
		}
	}
	return nil
}

// stringValue takes a JSON value as LXD does: config values are strings,
// and numbers and booleans stand for their text.
func stringValue(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10), nil
		}
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("value of type %T is not a string", v)
}

// value returns a key's value, its default when not set.
func (s *Service) value(k string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.cur[k]; ok {
		return v
	}
	return keys[k].def
}

// ImagesRemoteCacheExpiryDays returns images.remote_cache_expiry.
func (s *Service) ImagesRemoteCacheExpiryDays() int64 {
	n, err := strconv.ParseInt(s.value(ImagesRemoteCacheExpiry), 10, 64)
	if err != nil { // Stored by hand or by a newer hangard: the default.
		n, _ = strconv.ParseInt(keys[ImagesRemoteCacheExpiry].def, 10, 64)
	}
	return n
}

// ImagesMaxUnpackedSize returns images.max_unpacked_size in bytes, or 0
// when it is not set (the image store then uses its default).
func (s *Service) ImagesMaxUnpackedSize() int64 {
	v := s.value(ImagesMaxUnpackedSize)
	if v == "" {
		return 0
	}
	n, err := ParseByteSize(v)
	if err != nil || n < minUnpackedSize { // Stored by hand: the default.
		return 0
	}
	return n
}

// TrustPasswordHash returns the stored hash of core.trust_password, ""
// when none is set.
func (s *Service) TrustPasswordHash() string { return s.value(CoreTrustPassword) }

// RemoteTokenExpiry returns core.remote_token_expiry.
func (s *Service) RemoteTokenExpiry() string { return s.value(CoreRemoteTokenExpiry) }

// HTTPSAddress returns core.https_address.
func (s *Service) HTTPSAddress() string { return s.value(CoreHTTPSAddress) }

// ImagesCompressionAlgorithm returns images.compression_algorithm.
func (s *Service) ImagesCompressionAlgorithm() string {
	return s.value(ImagesCompressionAlgorithm)
}
