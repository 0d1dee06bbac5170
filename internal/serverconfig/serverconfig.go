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
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hangar-dev/hangar/internal/errdefs"
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
)

// minUnpackedSize is the least images.max_unpacked_size: below 1 MiB no
// root filesystem fits.
const minUnpackedSize = 1 << 20

type key struct {
	def      string
	validate func(string) error
}

var keys = map[string]key{
	ImagesRemoteCacheExpiry: {def: "10", validate: nonNegativeInt},
	ImagesMaxUnpackedSize:   {def: "", validate: unpackedSize},
	// What the image store's Publish writes; LXD runs any command named
	// here, hangard writes the formats it imports.
	ImagesCompressionAlgorithm: {def: "gzip", validate: oneOf("gzip", "xz", "zstd", "bzip2", "none")},
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
	db  DB
	mu  sync.Mutex
	cur map[string]string
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
		if _, ok := keys[k]; ok {
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
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		kd, ok := keys[k]
		if !ok {
			return errdefs.Invalid("unknown server config key %q", k)
		}
		v, err := stringValue(cfg[k])
		if err != nil {
			return errdefs.Invalid("server config %s: %v", k, err)
		}
		if v != "" {
			if err := kd.validate(v); err != nil {
				return errdefs.Invalid("server config %s: %v", k, err)
			}
		}
		set[k] = v
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := maps.Clone(s.cur)
	if replace {
		for k := range keys {
			delete(next, k)
		}
	}
	for k, v := range set {
		if v == "" {
			delete(next, k)
		} else {
			next[k] = v
		}
	}
	if err := s.db.SetServerConfig(ctx, next); err != nil {
		return err
	}
	s.cur = next
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

// ImagesCompressionAlgorithm returns images.compression_algorithm.
func (s *Service) ImagesCompressionAlgorithm() string {
	return s.value(ImagesCompressionAlgorithm)
}
