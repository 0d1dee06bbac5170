package serverconfig

import (
	"fmt"
	"regexp"
	"strings"
)

// VelocityHostNICs is the /v/ API's host NICs (seed 003): the
// administrator gives each host interface a VM may bridge to a stable
// NICID, "NICID=IFACE" pairs separated by commas ("lan=eth0,dmz=br1").
// A NICID stays what it names until the administrator changes it, so a
// renamed or replaced interface is one key change away.
const VelocityHostNICs = "velocity.host_nics"

func init() {
	keys[VelocityHostNICs] = key{def: "", validate: func(v string) error {
		_, err := ParseHostNICs(v)
		return err
	}}
}

// HostNIC is one NICID and the host interface it names.
type HostNIC struct {
	ID, Interface string
}

var (
	nicID     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.:@-]{1,15}$`)
)

// ParseHostNICs reads velocity.host_nics, in the order given. A NICID or
// an interface named twice is an error.
func ParseHostNICs(v string) ([]HostNIC, error) {
	var out []HostNIC
	ids, ifaces := map[string]bool{}, map[string]bool{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, iface, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want NICID=INTERFACE", part)
		}
		if !nicID.MatchString(id) {
			return nil, fmt.Errorf("NICID %q: letters, digits, '_', '.' and '-', at most 64", id)
		}
		if !ifaceName.MatchString(iface) || iface == "." || iface == ".." {
			return nil, fmt.Errorf("interface %q of NICID %q is not a valid interface name", iface, id)
		}
		if ids[id] {
			return nil, fmt.Errorf("NICID %q is given twice", id)
		}
		if ifaces[iface] {
			return nil, fmt.Errorf("interface %q has two NICIDs", iface)
		}
		ids[id], ifaces[iface] = true, true
		out = append(out, HostNIC{ID: id, Interface: iface})
	}
	return out, nil
}

// HostNICs returns velocity.host_nics.
func (s *Service) HostNICs() []HostNIC {
	nics, _ := ParseHostNICs(s.value(VelocityHostNICs)) // validated when set
	return nics
}
