package autostandby

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// The instance config keys of the policy (the seed's AutoStandbyPolicy).
const (
	KeyEnabled      = "autostandby.enabled"
	KeyIdleTimeout  = "autostandby.idle_timeout"
	KeyIgnorePorts  = "autostandby.ignore_destination_ports"
	KeyIgnoreCIDRs  = "autostandby.ignore_source_cidrs"
	keyPrefix       = "autostandby."
	MinIdleTimeout  = time.Second
	maxIdleTimeout  = 365 * 24 * time.Hour
	DefaultIdleTime = 5 * time.Minute
)

// Policy is an instance's auto-standby policy as its expanded config
// holds it.
type Policy struct {
	// Configured: at least one autostandby.* key is set.
	Configured bool
	Enabled    bool
	// IdleTimeout is how long the instance must have no qualifying
	// inbound connection; IdleTimeoutSpec is the key as written ("" when
	// unset, then DefaultIdleTime applies).
	IdleTimeout     time.Duration
	IdleTimeoutSpec string
	IgnorePorts     []uint16
	IgnoreCIDRs     []netip.Prefix
}

// ParsePolicy reads the policy from an instance's expanded config.
func ParsePolicy(cfg map[string]string) (Policy, error) {
	p := Policy{IdleTimeout: DefaultIdleTime}
	for k := range cfg {
		if strings.HasPrefix(k, keyPrefix) {
			p.Configured = true
			break
		}
	}
	var err error
	if v, ok := cfg[KeyEnabled]; ok {
		if p.Enabled, err = parseBool(v); err != nil {
			return Policy{}, keyErr(KeyEnabled, v, err)
		}
	}
	if v := cfg[KeyIdleTimeout]; v != "" {
		if p.IdleTimeout, err = ParseIdleTimeout(v); err != nil {
			return Policy{}, keyErr(KeyIdleTimeout, v, err)
		}
		p.IdleTimeoutSpec = v
	}
	if p.IgnorePorts, err = ParsePorts(cfg[KeyIgnorePorts]); err != nil {
		return Policy{}, keyErr(KeyIgnorePorts, cfg[KeyIgnorePorts], err)
	}
	if p.IgnoreCIDRs, err = ParseCIDRs(cfg[KeyIgnoreCIDRs]); err != nil {
		return Policy{}, keyErr(KeyIgnoreCIDRs, cfg[KeyIgnoreCIDRs], err)
	}
	return p, nil
}

func keyErr(k, v string, err error) error {
	return errdefs.Invalid("invalid value %q for config key %q: %v", v, k, err)
}

// parseBool accepts LXD's spellings of a boolean ("" is false).
func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true or false)", v)
}

// ParseIdleTimeout reads a Go duration of at least MinIdleTimeout: a
// shorter one would put an instance in standby between two polls.
func ParseIdleTimeout(v string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30s, 5m or 1h30m", v)
	}
	if d < MinIdleTimeout {
		return 0, fmt.Errorf("the idle timeout must be at least %s", MinIdleTimeout)
	}
	if d > maxIdleTimeout {
		return 0, fmt.Errorf("the idle timeout must be at most %s", maxIdleTimeout)
	}
	return d, nil
}

// ParsePorts reads a comma list of TCP ports (1-65535); "" is none.
func ParsePorts(v string) ([]uint16, error) {
	var out []uint16
	for _, f := range splitList(v) {
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q is not a port between 1 and 65535", f)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

// ParseCIDRs reads a comma list of CIDRs (IPv4 or IPv6); "" is none. A
// bare address is refused: a prefix length says what was meant.
func ParseCIDRs(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range splitList(v) {
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or fd00::/8", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// splitList splits a comma list, trimming spaces; an empty item is an
// item (and refused by the parsers), so "80,,443" is an error.
func splitList(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	fs := strings.Split(v, ",")
	for i := range fs {
		fs[i] = strings.TrimSpace(fs[i])
	}
	return fs
}

// Validators for the core's config key table: each checks one key's
// value alone.
var Validators = map[string]func(string) error{
	KeyEnabled: func(v string) error { _, err := parseBool(v); return err },
	KeyIdleTimeout: func(v string) error {
		if v == "" {
			return nil
		}
		_, err := ParseIdleTimeout(v)
		return err
	},
	KeyIgnorePorts: func(v string) error { _, err := ParsePorts(v); return err },
	KeyIgnoreCIDRs: func(v string) error { _, err := ParseCIDRs(v); return err },
}

// ignored tells whether a connection to port from src does not keep the
// instance awake.
func (p Policy) ignored(src netip.Addr, port uint16) bool {
	for _, ip := range p.IgnorePorts {
		if ip == port {
			return true
		}
	}
	src = src.Unmap()
	for _, c := range p.IgnoreCIDRs {
		if c.Contains(src) {
			return true
		}
	}
	return false
}

// idleTimeoutString is the policy's timeout as the status shows it.
func (p Policy) idleTimeoutString() string {
	if p.IdleTimeoutSpec != "" {
		return p.IdleTimeoutSpec
	}
	return p.IdleTimeout.String()
}
