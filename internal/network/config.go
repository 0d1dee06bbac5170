package network

import (
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// The network types.
const (
	TypeBridge  = "bridge"
	TypeMacvlan = "macvlan"
)

// keyCheck validates one config value.
type keyCheck func(v string) error

// bridgeKeys are the keys of a managed bridge, LXD's names.
var bridgeKeys = map[string]keyCheck{
	"ipv4.address":       checkAddress(4),
	"ipv4.nat":           checkBool,
	"ipv4.dhcp":          checkBool,
	"ipv4.dhcp.ranges":   checkRanges,
	"ipv4.routing":       checkBool,
	"ipv6.address":       checkAddress(6),
	"ipv6.nat":           checkBool,
	"ipv6.dhcp":          checkBool,
	"ipv6.dhcp.stateful": checkBool,
	"ipv6.routing":       checkBool,
	"dns.domain":         checkDomain,
	"dns.mode":           checkEnum("managed", "dynamic", "none"),
	"bridge.mtu":         checkMTU,
	"bridge.hwaddr":      checkMAC,
	"bridge.driver":      checkEnum("native"),
	"raw.dnsmasq":        refuseRawDnsmasq,
}

// macvlanKeys are the keys of a macvlan network.
var macvlanKeys = map[string]keyCheck{
	"parent": checkInterfaceName,
	"mtu":    checkMTU,
}

// validateConfig checks every key of a network of type typ.
func validateConfig(typ string, cfg map[string]string) error {
	var table map[string]keyCheck
	switch typ {
	case TypeBridge:
		table = bridgeKeys
	case TypeMacvlan:
		table = macvlanKeys
	default:
		return errdefs.Invalid("network type %q is not supported (bridge, macvlan)", typ)
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, "user.") {
			continue
		}
		check, ok := table[k]
		if !ok {
			return errdefs.Invalid("invalid network config key %q for type %s", k, typ)
		}
		if err := check(cfg[k]); err != nil {
			return errdefs.Invalid("network config %q: %v", k, err)
		}
	}
	if typ == TypeMacvlan && cfg["parent"] == "" {
		return errdefs.Invalid("network config %q: a macvlan network needs a parent interface", "parent")
	}
	if typ == TypeBridge {
		for fam, key := range map[int]string{4: "ipv4.dhcp.ranges"} {
			if cfg[key] == "" {
				continue
			}
			p, ok := subnetOf(cfg["ipv4.address"])
			if !ok {
				return errdefs.Invalid("network config %q: needs an IPv%d subnet in ipv4.address", key, fam)
			}
			for _, r := range parseRanges(cfg[key]) {
				if !p.Contains(r[0]) || !p.Contains(r[1]) {
					return errdefs.Invalid("network config %q: range %s-%s is outside %s", key, r[0], r[1], p.Masked())
				}
			}
		}
	}
	return nil
}

var netNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// validateName checks a network name: it names the bridge link too, so it
// must be a valid interface name.
func validateName(name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("network name is empty")
	case len(name) > 15:
		return errdefs.Invalid("network name %q is longer than 15 characters (it names the host interface)", name)
	case name == "." || name == ".." || !netNameRe.MatchString(name):
		return errdefs.Invalid("network name %q: only letters, digits, '-', '_' and '.', not first", name)
	case name == "none" || name == "default":
		return errdefs.Invalid("network name %q is reserved", name)
	}
	return nil
}

func checkBool(v string) error {
	switch strings.ToLower(v) {
	case "", "true", "false", "1", "0", "yes", "no", "on", "off":
		return nil
	}
	return fmt.Errorf("%q is not a boolean", v)
}

// isTrue reads a boolean key; def is the value of an unset key.
func isTrue(v string, def bool) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	case "false", "0", "no", "off":
		return false
	}
	return def
}

func checkEnum(vals ...string) keyCheck {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok || v == "" {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

// checkAddress accepts "auto", "none" or the bridge's address with its
// prefix ("10.0.3.1/24"), never a network or broadcast address.
func checkAddress(family int) keyCheck {
	return func(v string) error {
		if v == "" || v == "auto" || v == "none" {
			return nil
		}
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return fmt.Errorf("%q is not auto, none or ADDRESS/PREFIX", v)
		}
		if (family == 4) != p.Addr().Is4() {
			return fmt.Errorf("%q is not an IPv%d address", v, family)
		}
		if family == 4 && (p.Bits() < 8 || p.Bits() > 30) {
			return fmt.Errorf("%q: the prefix must be /8 to /30", v)
		}
		if family == 6 && (p.Bits() < 8 || p.Bits() > 64) {
			return fmt.Errorf("%q: the prefix must be /8 to /64", v)
		}
		if p.Addr() == p.Masked().Addr() {
			return fmt.Errorf("%q is the network address, not the bridge's", v)
		}
		if family == 4 && p.Addr() == lastAddr(p) {
			return fmt.Errorf("%q is the broadcast address", v)
		}
		return nil
	}
}

// subnetOf parses a configured bridge address; false for auto/none/empty.
func subnetOf(v string) (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(v)
	return p, err == nil
}

func checkRanges(v string) error {
	if v == "" {
		return nil
	}
	for _, part := range strings.Split(v, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			return fmt.Errorf("%q is not START-END", part)
		}
		s, err1 := netip.ParseAddr(strings.TrimSpace(a))
		e, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 != nil || err2 != nil || !s.Is4() || !e.Is4() || e.Less(s) {
			return fmt.Errorf("%q is not an IPv4 range START-END", part)
		}
	}
	return nil
}

// parseRanges reads a checked ipv4.dhcp.ranges value.
func parseRanges(v string) [][2]netip.Addr {
	var out [][2]netip.Addr
	for _, part := range strings.Split(v, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			continue
		}
		s, err1 := netip.ParseAddr(strings.TrimSpace(a))
		e, err2 := netip.ParseAddr(strings.TrimSpace(b))
		if err1 == nil && err2 == nil {
			out = append(out, [2]netip.Addr{s, e})
		}
	}
	return out
}

var labelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func checkDomain(v string) error {
	if v == "" {
		return nil
	}
	for _, l := range strings.Split(strings.ToLower(v), ".") {
		if !labelRe.MatchString(l) {
			return fmt.Errorf("%q is not a DNS domain", v)
		}
	}
	return nil
}

func checkMTU(v string) error {
	if v == "" {
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1280 || n > 16384 {
		return fmt.Errorf("%q is not an MTU from 1280 to 16384", v)
	}
	return nil
}

func checkMAC(v string) error {
	if v == "" {
		return nil
	}
	return validMAC(v)
}

// validMAC accepts a unicast 6-byte MAC in colon form.
func validMAC(v string) error {
	hw, err := net.ParseMAC(v)
	if err != nil || len(hw) != 6 || strings.Count(v, ":") != 5 {
		return fmt.Errorf("%q is not a MAC address (xx:xx:xx:xx:xx:xx)", v)
	}
	if hw[0]&1 != 0 {
		return fmt.Errorf("%q is a multicast MAC address", v)
	}
	return nil
}

func checkInterfaceName(v string) error {
	if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ :") {
		return fmt.Errorf("%q is not an interface name", v)
	}
	return nil
}

// refuseRawDnsmasq: raw dnsmasq lines could take over the host (dhcp-script
// runs programs as root) and hangard cannot check them, so none are taken.
func refuseRawDnsmasq(v string) error {
	if v == "" {
		return nil
	}
	return fmt.Errorf("raw dnsmasq configuration is not accepted: hangard cannot validate it (dhcp-script and conf-file would run or read anything as root)")
}

// lastAddr is the last address of p (IPv4 broadcast).
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
