package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// keyCheck validates one device value.
type keyCheck func(v string) error

var nicKeys = map[string]keyCheck{
	"type":                   nil,
	"nictype":                oneOf("bridged", "macvlan"),
	"network":                ifaceName,
	"parent":                 ifaceName,
	"name":                   ifaceName,
	"hwaddr":                 mac,
	"mtu":                    intRange(1280, 16384),
	"host_name":              ifaceName,
	"ipv4.address":           ipOf(4),
	"ipv6.address":           ipOf(6),
	"limits.ingress":         bitRate,
	"limits.egress":          bitRate,
	"limits.max":             bitRate,
	"security.mac_filtering": boolean,
	"boot.priority":          intRange(0, 1<<31-1),
}

var proxyKeys = map[string]keyCheck{
	"type":           nil,
	"listen":         nil, // checked as a pair with connect
	"connect":        nil,
	"bind":           oneOf("host"),
	"nat":            boolean,
	"proxy_protocol": oneOf("false", "0", "no", "off"),
	"description":    func(string) error { return nil },
}

// Validate checks an instance's (or profile's) devices. vm selects the
// rules of virtual machines; a profile passes both kinds through its
// instances.
func (m *Manager) Validate(ctx context.Context, devs map[string]map[string]string, vm bool) error {
	names := make([]string, 0, len(devs))
	for n := range devs {
		names = append(names, n)
	}
	sort.Strings(names)
	nics := map[string]string{} // interface name -> device
	roots := ""                 // the root disk device
	for _, n := range names {
		d := devs[n]
		if n == "" || strings.ContainsAny(n, "/ ") {
			return errdefs.Invalid("invalid device name %q", n)
		}
		var err error
		switch d["type"] {
		case "":
			err = errdefs.Invalid("device %q: missing type", n)
		case "none":
			if len(d) > 1 {
				err = errdefs.Invalid("device %q: type none takes no other keys", n)
			}
		case "nic":
			err = m.validateNIC(ctx, n, d)
			if err == nil {
				ifname := d["name"]
				if ifname == "" {
					ifname = n
				}
				if other, dup := nics[ifname]; dup {
					err = errdefs.Invalid("device %q: interface name %q is already used by device %q", n, ifname, other)
				}
				nics[ifname] = n
			}
		case "proxy":
			if vm {
				// Forwarding into a VM needs nat=true (no namespace to
				// connect from): LXD's rule too.
				if !isTrue(d["nat"]) {
					err = errdefs.Invalid("device %q: proxy devices of virtual machines need nat=true", n)
					break
				}
			}
			err = validateProxy(n, d)
		case "disk":
			err = m.validateDisk(ctx, n, d, vm)
			if err == nil && isRoot(d) {
				if roots != "" {
					err = errdefs.Invalid("devices %q and %q: only one disk may have path \"/\"", roots, n)
				}
				roots = n
			}
		case "usb":
			err = validateUSB(n, d, vm)
		case "gpu":
			err = validateGPU(n, d, vm)
		case "pci":
			err = validatePCI(n, d, vm)
		case "display":
			err = validateDisplay(n, d, vm)
		case "tpm":
			err = validateTPM(n, d, vm)
		case "unix-char", "unix-block", "infiniband", "unix-hotplug":
			err = errdefs.Invalid("device %q: device type %q is not supported yet", n, d["type"])
		default:
			err = errdefs.Invalid("device %q: unknown device type %q", n, d["type"])
		}
		if err != nil {
			return err
		}
	}
	if err := checkDisplays(devs); err != nil {
		return err
	}
	return checkTPMs(devs)
}

func checkKeys(dev string, d map[string]string, table map[string]keyCheck) error {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		check, ok := table[k]
		if !ok {
			if strings.HasPrefix(k, "user.") {
				continue
			}
			return errdefs.Invalid("device %q: invalid key %q for type %s", dev, k, d["type"])
		}
		// An empty value is an unset key, as LXD takes it (lxc config
		// device unset sends one).
		if check == nil || d[k] == "" {
			continue
		}
		if err := check(d[k]); err != nil {
			return errdefs.Invalid("device %q: %s: %v", dev, k, err)
		}
	}
	return nil
}

func (m *Manager) validateNIC(ctx context.Context, n string, d map[string]string) error {
	if err := checkKeys(n, d, nicKeys); err != nil {
		return err
	}
	switch {
	case d["network"] != "" && (d["nictype"] != "" || d["parent"] != ""):
		return errdefs.Invalid("device %q: network and nictype/parent exclude each other", n)
	case d["network"] == "" && d["nictype"] == "":
		return errdefs.Invalid("device %q: a nic needs network or nictype", n)
	case d["nictype"] != "" && d["parent"] == "":
		return errdefs.Invalid("device %q: nictype %s needs parent", n, d["nictype"])
	}
	if d["nictype"] == "macvlan" && isTrue(d["security.mac_filtering"]) {
		return errMACFilterMacvlan(n)
	}
	net := d["network"]
	if d["nictype"] == "bridged" {
		// A managed bridge named as parent is that network, as in LXD.
		net = d["parent"]
	}
	if d["nictype"] == "macvlan" && m.cfg.Networks != nil {
		// A macvlan over a managed bridge would bypass its DHCP, DNS and
		// firewall: LXD refuses it too.
		if typ, err := m.cfg.Networks.NetworkType(ctx, d["parent"]); err == nil && typ == "bridge" {
			return errdefs.Invalid("device %q: parent %q is a managed bridge; use network=%s", n, d["parent"], d["parent"])
		}
	}
	if net == "" || m.cfg.Networks == nil {
		if d["ipv4.address"] != "" || d["ipv6.address"] != "" {
			if d["nictype"] != "macvlan" {
				return errdefs.Invalid("device %q: static addresses need a managed network", n)
			}
		}
		return m.checkParent(n, d)
	}
	typ, err := m.cfg.Networks.NetworkType(ctx, net)
	switch {
	case errors.Is(err, errdefs.ErrNotFound) && d["nictype"] == "bridged":
		// A host bridge hangard does not manage: it allocates nothing
		// there, so a static address would be silently dropped.
		if d["ipv4.address"] != "" || d["ipv6.address"] != "" {
			return errdefs.Invalid("device %q: static addresses need a managed network (%q is not one)", n, net)
		}
		return m.checkParent(n, d)
	case errors.Is(err, errdefs.ErrNotFound):
		return errdefs.NotFound("device %q: network %q not found", n, net)
	case err != nil:
		return err
	}
	if typ == "macvlan" && isTrue(d["security.mac_filtering"]) {
		return errMACFilterMacvlan(n)
	}
	return nil
}

// errMACFilterMacvlan: a macvlan's frames leave by its parent with no
// host-side port to filter them on (LXD's macvlan NICs lack the key too).
func errMACFilterMacvlan(dev string) error {
	return errdefs.Invalid("device %q: security.mac_filtering needs a bridged NIC; a macvlan has no host-side port to filter", dev)
}

// checkParent checks that an unmanaged parent exists on the host.
func (m *Manager) checkParent(n string, d map[string]string) error {
	p := d["parent"]
	if p == "" {
		return nil
	}
	if _, err := net.InterfaceByName(p); err != nil {
		return errdefs.NotFound("device %q: parent %q: no such host interface", n, p)
	}
	return nil
}

func validateProxy(n string, d map[string]string) error {
	if err := checkKeys(n, d, proxyKeys); err != nil {
		return err
	}
	if d["listen"] == "" || d["connect"] == "" {
		return errdefs.Invalid("device %q: a proxy needs listen and connect", n)
	}
	_, _, err := parseProxy(d)
	if err != nil {
		return errdefs.Invalid("device %q: %v", n, err)
	}
	return nil
}

func oneOf(vals ...string) keyCheck {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(vals, ", "))
	}
}

func ifaceName(v string) error {
	if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ :") || v == "." || v == ".." {
		return fmt.Errorf("%q is not an interface name (1-15 characters, no '/', ':' or space)", v)
	}
	return nil
}

func mac(v string) error {
	hw, err := net.ParseMAC(v)
	if err != nil || len(hw) != 6 || strings.Count(v, ":") != 5 {
		return fmt.Errorf("%q is not a MAC address (xx:xx:xx:xx:xx:xx)", v)
	}
	if hw[0]&1 != 0 {
		return fmt.Errorf("%q is a multicast MAC address", v)
	}
	return nil
}

func intRange(lo, hi int) keyCheck {
	return func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%q is not an integer from %d to %d", v, lo, hi)
		}
		return nil
	}
}

func ipOf(fam int) keyCheck {
	return func(v string) error {
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" || (fam == 4) != a.Is4() {
			return fmt.Errorf("%q is not an IPv%d address", v, fam)
		}
		return nil
	}
}

func boolean(v string) error {
	switch strings.ToLower(v) {
	case "true", "false", "1", "0", "yes", "no", "on", "off":
		return nil
	}
	return fmt.Errorf("%q is not a boolean", v)
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	}
	return false
}

func bitRate(v string) error {
	_, err := parseBitRate(v)
	return err
}

// parseBitRate reads LXD's rates: "100Mbit", "1Gbit", "500kbit", "10MB"
// (bytes), a bare number of bits per second.
func parseBitRate(v string) (uint64, error) {
	s := strings.TrimSpace(v)
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	n, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a bit rate (like 100Mbit)", v)
	}
	mult := map[string]float64{
		"": 1, "bit": 1, "kbit": 1e3, "Mbit": 1e6, "Gbit": 1e9, "Tbit": 1e12,
		"B": 8, "kB": 8e3, "MB": 8e6, "GB": 8e9, "TB": 8e12,
	}[strings.TrimSpace(s[i:])]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit (bit, kbit, Mbit, Gbit, B, kB, MB, GB)", v)
	}
	r := n * mult
	if r < 8 || r > 1e13 {
		return 0, fmt.Errorf("%q is out of range", v)
	}
	return uint64(r), nil
}
