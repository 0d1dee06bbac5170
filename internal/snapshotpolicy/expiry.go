package snapshotpolicy

import (
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Expiry is a parsed snapshots.expiry: how long a snapshot lives. The zero
// Expiry never expires.
type Expiry struct {
	spec                string
	set                 bool
	years, months, days int
	clock               time.Duration // the S, M and H units
}

// expiryUnits are LXD's units, shortest first; the parser's arrays follow
// this order.
const expiryUnits = "SMHdwmy"

// maxExpiryYears bounds a span so that expires_at stays a year JSON can carry
// (time.Time's MarshalJSON refuses years past 9999).
const maxExpiryYears = 1000

// maxClockSeconds keeps the S/M/H sum inside a time.Duration.
const maxClockSeconds = int64(maxExpiryYears) * 366 * 24 * 3600 / 4 // about 250 years

// ParseExpiry reads a snapshots.expiry value such as "1M 2H 3d 4w 5m 6y":
// minutes, hours, days, weeks, months and years (and S, seconds), each
// unit at most once, space separated. "" never expires.
func ParseExpiry(spec string) (Expiry, error) {
	fields := strings.Fields(spec)
	if len(fields) == 0 {
		return Expiry{spec: spec}, nil
	}
	e := Expiry{spec: spec, set: true}
	var n [len(expiryUnits)]int64
	var seen [len(expiryUnits)]bool
	for _, f := range fields {
		unit := f[len(f)-1:]
		i := strings.Index(expiryUnits, unit)
		num := f[:len(f)-1]
		if i < 0 || num == "" || strings.TrimLeft(num, "0123456789") != "" {
			return Expiry{}, errdefs.Invalid("expiry %q: %q is not a number followed by one of S (seconds), M (minutes), H (hours), d (days), w (weeks), m (months), y (years)", spec, f)
		}
		if seen[i] {
			return Expiry{}, errdefs.Invalid("expiry %q: unit %s is given twice", spec, unit)
		}
		seen[i] = true
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v > maxClockSeconds {
			return Expiry{}, errdefs.Invalid("expiry %q: %q is too large", spec, f)
		}
		n[i] = v
	}
	secs := n[0] + 60*n[1] + 3600*n[2]
	if secs > maxClockSeconds || n[3]+7*n[4] > maxExpiryYears*366 || n[5] > maxExpiryYears*12 || n[6] > maxExpiryYears {
		return Expiry{}, errdefs.Invalid("expiry %q is longer than %d years", spec, maxExpiryYears)
	}
	e.clock = time.Duration(secs) * time.Second
	e.days, e.months, e.years = int(n[3]+7*n[4]), int(n[5]), int(n[6])
	ref := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	if e.After(ref).After(ref.AddDate(maxExpiryYears, 0, 0)) {
		return Expiry{}, errdefs.Invalid("expiry %q is longer than %d years", spec, maxExpiryYears)
	}
	return e, nil
}

// IsZero reports whether the expiry is "never".
func (e Expiry) IsZero() bool { return !e.set }

// String returns the spec as it was given.
func (e Expiry) String() string { return e.spec }

// After returns when a snapshot taken at t expires: the zero time for the
// zero Expiry. As in LXD, an expiry of only zeros ("0d") expires at t.
// Calendar units follow t's location (in UTC a day is always 24 hours).
func (e Expiry) After(t time.Time) time.Time {
	if !e.set {
		return time.Time{}
	}
	return t.AddDate(e.years, e.months, e.days).Add(e.clock)
}
