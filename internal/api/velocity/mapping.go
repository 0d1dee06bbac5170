package velocity

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"

	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/units"
)

// stateOf maps the core's status to the seed's state. The core's status
// is set for the whole of an operation on the instance (Starting while
// QEMU is set up, Stopping while it shuts down, Freezing while QEMU
// stops its CPUs), so the in-between states are what runs now.
// RESUMING is never shown: the core's resume is one hop Frozen ->
// Running taken under the instance's lock, with no status between. An
// Error (the runtime crashed) has no seed state: the VM does not run,
// so it is STOPPED.
func stateOf(st instance.Status) wire.State {
	switch st {
	case instance.StatusStarting:
		return wire.StateStarting
	case instance.StatusRunning:
		return wire.StateRunning
	case instance.StatusStopping:
		return wire.StateStopping
	case instance.StatusFreezing:
		return wire.StatePausing
	case instance.StatusFrozen:
		return wire.StatePaused
	}
	return wire.StateStopped
}

// mediaBus maps a medium's mode to the disk's io.bus, and back.
var mediaBus = map[string]string{
	wire.ModeUSB:    "usb",
	wire.ModeBlock:  "virtio-scsi",
	wire.ModeVirtIO: "virtio-blk",
}

func modeOf(bus string) string {
	for m, b := range mediaBus {
		if b == bus {
			return m
		}
	}
	if bus == "nvme" {
		return wire.ModeBlock
	}
	return wire.ModeVirtIO // a disk without io.bus is virtio-blk
}

// Key of the VMs' disk size.
const (
	// DefaultDiskSize is the empty disk an EFI VM gets.
	DefaultDiskSize = 8 << 30
	// maxCPUs and maxMemoryMiB bound a request before the core's rules.
	maxCPUs      = 512
	maxMemoryMiB = 16 << 20
	maxDevices   = 32
)

// mid splits a MID ("POOL/VOLUME").
func mid(s string) (pool, volume string, ok bool) {
	pool, volume, ok = strings.Cut(s, "/")
	return pool, volume, ok && pool != "" && volume != "" && !strings.Contains(volume, "/")
}

// render maps an instance to the seed's VM; nicID names a host
// interface's NICID ("" when none does).
func render(in instance.Instance, nicID func(iface string) string) wire.VM {
	cfg := in.ExpandedConfig
	vm := wire.VM{VMID: in.ID, Name: in.Name, Type: typeOf(in), State: stateOf(in.Status),
		CPUs: wire.Num(cpusOf(cfg)), MemoryMiB: wire.Num(memoryMiBOf(cfg)),
		Displays: []wire.Display{}, Media: []wire.Media{}, NICs: []wire.NIC{},
		Autostart: cfg["boot.autostart"] == "true"}
	names := make([]string, 0, len(in.ExpandedDevices))
	for n := range in.ExpandedDevices {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := in.ExpandedDevices[n]
		switch d["type"] {
		case "display":
			name := d["description"]
			if name == "" {
				name = n
			}
			vm.Displays = append(vm.Displays, wire.Display{Name: name, Width: num(d["width"]), Height: num(d["height"]), PPI: num(d["ppi"])})
		case "disk":
			if d["path"] == "/" || d["pool"] == "" || d["source"] == "" {
				continue
			}
			vm.Media = append(vm.Media, wire.Media{MID: d["pool"] + "/" + d["source"], Mode: modeOf(d["io.bus"]), ReadOnly: d["readonly"] == "true"})
		case "nic":
			switch {
			case d["nictype"] == "macvlan" || d["nictype"] == "bridged":
				vm.NICs = append(vm.NICs, wire.NIC{Type: wire.NICBridge, Host: nicID(d["parent"])})
			case d["network"] != "":
				vm.NICs = append(vm.NICs, wire.NIC{Type: wire.NICNAT})
			}
		}
	}
	return vm
}

// typeOf is EFI for a VM made from no image: its empty disk boots only
// by firmware. Other VMs boot what their image holds: "IMAGE".
func typeOf(in instance.Instance) string {
	if in.Config["volatile.base_image"] == "" {
		return wire.TypeEFI
	}
	return "IMAGE"
}

func num(s string) wire.Num {
	n, _ := strconv.ParseInt(s, 10, 64)
	return wire.Num(n)
}

// cpusOf reads limits.cpu: a count, or a set ("0-3,6") as LXD allows.
func cpusOf(cfg map[string]string) int64 {
	v := cfg["limits.cpu"]
	if v == "" {
		return 1 // the QEMU driver's default
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	var n int64
	for _, part := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseInt(lo, 10, 64)
		b, err2 := strconv.ParseInt(hi, 10, 64)
		switch {
		case isRange && err1 == nil && err2 == nil && b >= a:
			n += b - a + 1
		case !isRange && err1 == nil:
			n++
		}
	}
	return n
}

// memoryMiBOf reads limits.memory in MiB (the driver's default when
// unset).
func memoryMiBOf(cfg map[string]string) int64 {
	v := cfg["limits.memory"]
	if v == "" {
		return 1024
	}
	b, err := units.ParseByteSize(v)
	if err != nil {
		return 0
	}
	return b >> 20
}

// devicesOf builds the devices of an EFI VM: its empty root disk, its
// media, NICs and displays. nic resolves a BRIDGE NIC's NICID to its host
// interface and whether that interface is a bridge.
func (s *Server) devicesOf(req wire.EFIRequest, nic func(id string) (HostNIC, error)) (instance.Devices, error) {
	devs := instance.Devices{
		"root": {"type": "disk", "path": "/", "pool": s.rootPool(), "size": strconv.Itoa(DefaultDiskSize)},
	}
	for i, m := range req.Media {
		field := fmt.Sprintf("media[%d]", i)
		pool, vol, ok := mid(m.MID)
		if !ok {
			return nil, fieldErr(field+".mid", "%q: a MID is POOL/VOLUME", m.MID)
		}
		bus, ok := mediaBus[m.Mode]
		if !ok {
			return nil, notAcceptable("%s.mode: %q: want USB, BLOCK or VIRTIO", field, m.Mode)
		}
		devs[fmt.Sprintf("media%d", i)] = map[string]string{"type": "disk", "pool": pool, "source": vol,
			"io.bus": bus, "readonly": strconv.FormatBool(m.ReadOnly)}
	}
	for i, n := range req.NICs {
		field := fmt.Sprintf("nics[%d]", i)
		name := fmt.Sprintf("eth%d", i)
		switch n.Type {
		case wire.NICNAT:
			if n.Host != "" {
				return nil, fieldErr(field+".host", "only BRIDGE NICs name a host NIC")
			}
			devs[name] = map[string]string{"type": "nic", "network": s.natNetwork(), "name": name}
		case wire.NICBridge:
			if n.Host == "" {
				return nil, fieldErr(field+".host", "a BRIDGE NIC needs the host NICID")
			}
			h, err := nic(n.Host)
			if err != nil {
				return nil, fmt.Errorf("%s.host: %w", field, err)
			}
			switch h.Type {
			case "bridge":
				// A tap on the bridge.
				devs[name] = map[string]string{"type": "nic", "nictype": "bridged", "parent": h.Interface, "name": name}
			case "loopback":
				return nil, notAcceptable("%s.host: host NIC %q (%s) is the loopback interface: a BRIDGE NIC needs a NIC on a network",
					field, n.Host, h.Interface)
			default:
				// Any other host NIC (physical, bond, vlan, veth, ...):
				// a macvlan on it, a macvtap for a VM (LXD's way). The
				// guest reaches the NIC's network, not the host itself
				// through it (a property of macvlan).
				devs[name] = map[string]string{"type": "nic", "nictype": "macvlan", "parent": h.Interface, "name": name}
			}
		default:
			return nil, notAcceptable("%s.type: %q: want NAT or BRIDGE", field, n.Type)
		}
	}
	for i, d := range req.Displays {
		field := fmt.Sprintf("displays[%d]", i)
		if strings.TrimSpace(d.Name) == "" || len(d.Name) > 255 || strings.ContainsFunc(d.Name, unicode.IsControl) {
			return nil, fieldErr(field+".name", "%q: a name of 1 to 255 printable characters", d.Name)
		}
		// The display device's limits (internal/device/display.go).
		for _, f := range []struct {
			name     string
			v        wire.Num
			min, max int64
		}{{"width", d.Width, 320, 7680}, {"height", d.Height, 200, 4320}, {"ppi", d.PPI, 1, 1000}} {
			if int64(f.v) < f.min || int64(f.v) > f.max {
				return nil, fieldErr(field+"."+f.name, "%d: from %d to %d", f.v, f.min, f.max)
			}
		}
		devs[fmt.Sprintf("display%d", i)] = map[string]string{"type": "display", "protocol": "vnc", "description": d.Name,
			"width": strconv.FormatInt(int64(d.Width), 10), "height": strconv.FormatInt(int64(d.Height), 10),
			"ppi": strconv.FormatInt(int64(d.PPI), 10)}
	}
	return devs, nil
}

func (s *Server) rootPool() string {
	if s.RootPool == "" {
		return "default"
	}
	return s.RootPool
}

func (s *Server) natNetwork() string {
	if s.NATNetwork == "" {
		return "hangarbr0"
	}
	return s.NATNetwork
}

// nicDescription is the host's description of a host NIC.
func nicDescription(n HostNIC) string {
	if n.Type == "" {
		return fmt.Sprintf("%s (not present on the host)", n.Interface)
	}
	if n.Hwaddr != "" {
		return fmt.Sprintf("%s interface %s (%s)", n.Type, n.Interface, n.Hwaddr)
	}
	return fmt.Sprintf("%s interface %s", n.Type, n.Interface)
}
