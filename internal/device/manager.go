package device

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/netdev"
	"github.com/hangar-dev/hangar/internal/network"
	"github.com/hangar-dev/hangar/internal/revert"
)

// Networks is what devices ask of the network manager.
type Networks interface {
	NetworkType(ctx context.Context, name string) (string, error)
	Allocate(ctx context.Context, req network.NICRequest) (network.NICConfig, error)
	Release(ctx context.Context, instanceID int64, device string) error
	SetProxyRules(ctx context.Context, owner string, rules []network.ForwardRule) error
	// SetMACFilter sets (nil: removes) the MAC filter of one NIC.
	SetMACFilter(ctx context.Context, owner string, f *network.MACFilter) error
	// SetEgress sets (nil: removes) the egress rule of one NIC.
	SetEgress(ctx context.Context, owner string, r *network.EgressRule) error
	InstanceRenamed(ctx context.Context) error
}

// NICHotplug plugs NICs into a running VM (its driver, over QMP).
type NICHotplug interface {
	AttachNIC(ctx context.Context, nic driver.NIC) error
	DetachNIC(ctx context.Context, name string) error
}

// Links makes host links (package netdev).
type Links interface {
	CreateNetNS(path string) error
	// CreateUserNetNS makes a network namespace owned by a new user
	// namespace with the id map m, each bind-mounted on its path.
	CreateUserNetNS(netns, userns string, m driver.IDMap) error
	DeleteNetNS(path string) error
	// AddNIC makes a veth (Kind "veth": host end on Bridge) or a macvlan
	// (Kind "macvlan" on Parent) and configures its instance end in NetNS.
	AddNIC(l Link) error
	// CreateTap makes a persistent tap on a bridge, up.
	CreateTap(name, bridge string, mtu int) error
	// CreateMacvtap makes a macvtap (bridge mode) on the host NIC
	// parent with the guest's MAC and the MTU (0: the parent's), up, and
	// returns its MTU: a VM's macvlan NIC, whose QEMU gets its character
	// device. One left by an earlier run is replaced.
	CreateMacvtap(name, parent, hwaddr string, mtu int) (int, error)
	DeleteLink(name string) error
	// DeleteLinkInNetNS removes an interface inside a namespace (a
	// macvlan, which has no host side); an absent one is not an error.
	DeleteLinkInNetNS(netns, name string) error
	// SetLimits shapes a host-side link: ingress is what the instance
	// receives, egress what it sends, in bits per second (0: none).
	SetLimits(hostName string, ingress, egress uint64) error
	// SetNeighbors points the host's neighbour entries for addrs on bridge
	// at mac.
	SetNeighbors(bridge, mac string, addrs []netip.Prefix) error
	// PinNeighbors points them at mac for good (permanent entries: no
	// resolution that could fail while nothing answers);
	// UnpinNeighbors removes those still pinned at mac. A missing entry
	// or bridge is no error.
	PinNeighbors(bridge, mac string, addrs []netip.Prefix) error
	UnpinNeighbors(bridge, mac string, addrs []netip.Prefix) error
	// DeleteLimits removes a link's shaping (and its ifb); nothing to
	// remove is not an error.
	DeleteLimits(hostName string) error
}

// Link is one instance NIC for Links.AddNIC.
type Link struct {
	Kind      string // veth or macvlan
	HostName  string
	Bridge    string
	Parent    string
	NetNS     string
	Name      string
	Hwaddr    string
	MTU       int
	Addresses []netip.Prefix
	Gateway4  netip.Addr
	Gateway6  netip.Addr
}

// Forwarder is a running userspace proxy.
type Forwarder interface{ Close() error }

// StartForwarder starts a userspace proxy from a host listen address to a
// connect address inside a network namespace (package proxy).
type StartForwarder func(ctx context.Context, listen, connect, netns string) (Forwarder, error)

// Config wires a Manager.
type Config struct {
	// Dir holds containers' network namespace files.
	Dir        string
	Networks   Networks // nil: nic devices on managed networks are refused
	Links      Links
	Forwarders StartForwarder
	// Volumes resolves disk devices' pools and volumes (nil: disk
	// devices other than host paths are refused).
	Volumes Volumes
	Log     *slog.Logger
}

// Manager makes and removes the host side of instances' devices.
type Manager struct {
	cfg Config

	mu   sync.Mutex
	runs map[string]*running // by runtime ID
	// standby is what stays on the host for instances in standby (a
	// stateful stop: standby.go), by runtime ID.
	standby map[string]*kept

	// nsMu orders namespace files made in Dir against the unmount of Dir
	// when its last one goes: an unmount racing a create would take the
	// new namespace's mount with it.
	nsMu sync.Mutex
}

// running is what the manager made for one running instance.
type running struct {
	nics       map[string]network.NICConfig // by device
	hostLinks  map[string]string            // device -> host-side link
	forwarders map[string][]Forwarder       // device -> forwarders
	proxyNAT   map[string]bool              // devices with DNAT rules
}

// New makes a Manager.
func New(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Manager{cfg: cfg, runs: map[string]*running{}, standby: map[string]*kept{}}
}

// Instance is what devices need to know of an instance.
type Instance struct {
	ID        int64
	RuntimeID string
	Name      string
	VM        bool
	// IDMap is an unprivileged container's id map: its network namespace
	// is then owned by a user namespace of that map, which it joins.
	IDMap *driver.IDMap
	// Hotplug plugs a running VM's NICs (nil: NIC changes of a running VM
	// apply at its next start). Update unplugs before it deletes a tap
	// and plugs after it made one.
	Hotplug NICHotplug
	// Mounts and Disks change a running instance's disk devices: a
	// container's mounts, a VM's block disks (nil: at the next start).
	Mounts MountHotplug
	Disks  DiskHotplug
	// Config is the instance's expanded config: volatile.DEV.hwaddr keeps
	// a NIC's MAC across starts.
	Config map[string]string
	// Egress is the egress mode of its bridged NICs ("all",
	// "http_https_only"), "" for none: their web traffic then goes
	// through the daemon's egress proxy (egress.go).
	Egress string
}

// Run is what the runtime gets from the devices.
type Run struct {
	NetNS  string
	UserNS string // with NetNS, for a container with an id map
	NICs   []driver.NIC
	// Mounts and Disks are the disk devices' (driver.Spec's).
	Mounts []driver.Mount
	Disks  []driver.Disk
	// BlockIO are a container's disk limits per host block device.
	BlockIO []driver.BlockIOLimit
	// RootBus and RootLimits are the root disk device's io.bus and
	// limits, for a VM's root disk.
	RootBus    string
	RootLimits driver.IOLimits
	// Displays and TPM are a VM's display and tpm devices (driver.Spec's).
	Displays []driver.Display
	TPM      *driver.TPM
	// Volatile are keys to record on the instance (volatile.DEV.hwaddr,
	// volatile.DEV.host_name, a display's volatile.DEV.port).
	Volatile map[string]string
}

// netnsPath is where a container's network namespace is bind-mounted.
func (m *Manager) netnsPath(in Instance) string {
	return filepath.Join(m.cfg.Dir, in.RuntimeID)
}

// usernsPath is where the user namespace owning it is bind-mounted.
func (m *Manager) usernsPath(in Instance) string {
	return filepath.Join(m.cfg.Dir, in.RuntimeID+".user")
}

// Start makes the host side of an instance's NICs before its runtime
// starts. On failure nothing it made is left.
func (m *Manager) Start(ctx context.Context, in Instance, devs map[string]map[string]string) (Run, error) {
	// A usb device absent at create (required=false) may be present now:
	// refused rather than started without it (hostdev_validate.go).
	if err := checkHostDevices(devs, in.VM); err != nil {
		return Run{}, err
	}
	rv := revert.New()
	defer rv.Fail()
	run := Run{Volatile: map[string]string{}}
	r := &running{nics: map[string]network.NICConfig{}, hostLinks: map[string]string{},
		forwarders: map[string][]Forwarder{}, proxyNAT: map[string]bool{}}
	// An instance coming out of standby: what it kept is taken over
	// (its NICs' start re-points the pinned neighbours, Started sets its
	// proxies' rules again under the same owners: in place); a failed
	// start drops it.
	k := m.takeStandby(in)
	if k != nil {
		rv.Add(func() { _ = m.dropKept(context.WithoutCancel(ctx), in, k) })
	}
	if !in.VM {
		run.NetNS = m.netnsPath(in)
		if err := m.makeNamespaces(in, &run, rv); err != nil {
			return Run{}, err
		}

	}
	for _, name := range sortedNICs(devs) {
		nic, err := m.startNIC(ctx, in, name, devs[name], run.NetNS, r)
		if err != nil {
			return Run{}, fmt.Errorf("device %s: %w", name, err)
		}
		if macFiltered(devs[name]) {
			dev := name
			rv.Add(func() { _ = m.clearMACFilter(context.WithoutCancel(ctx), in, dev) })
		}
		host := nic.HostName
		rv.Add(func() { _ = m.cfg.Links.DeleteLink(host) })
		run.NICs = append(run.NICs, nic)
		run.Volatile["volatile."+name+".hwaddr"] = nic.Hwaddr
		run.Volatile["volatile."+name+".host_name"] = nic.HostName
	}
	disks, err := m.startDisks(ctx, in, devs)
	if err != nil {
		return Run{}, err
	}
	run.Mounts, run.Disks, run.BlockIO = disks.mounts, disks.disks, disks.blockIO
	run.RootBus, run.RootLimits = disks.rootBus, disks.rootIO
	if run.Displays, err = startDisplays(in, devs, run.Volatile); err != nil {
		return Run{}, err
	}
	if run.TPM, err = startTPM(in, devs); err != nil {
		return Run{}, err
	}
	if k != nil {
		m.adoptKept(ctx, in, devs, k, r)
	}
	m.mu.Lock()
	m.runs[in.RuntimeID] = r
	m.mu.Unlock()
	rv.Success()
	return run, nil
}

// makeNamespaces makes a container's network namespace (owned by a user
// namespace of its own when it has an id map), undone by rv.
func (m *Manager) makeNamespaces(in Instance, run *Run, rv *revert.Reverter) error {
	m.nsMu.Lock()
	defer m.nsMu.Unlock()
	// A file left by a daemon killed -9 while this instance stopped
	// holds a stale namespace: start from a fresh one.
	if err := m.cfg.Links.DeleteNetNS(run.NetNS); err != nil {
		return fmt.Errorf("clear network namespace: %w", err)
	}
	if err := os.MkdirAll(m.cfg.Dir, 0o711); err != nil {
		return err
	}
	if in.IDMap != nil {
		run.UserNS = m.usernsPath(in)
		if err := m.cfg.Links.DeleteNetNS(run.UserNS); err != nil {
			return fmt.Errorf("clear user namespace: %w", err)
		}
		err := m.cfg.Links.CreateUserNetNS(run.NetNS, run.UserNS, *in.IDMap)
		if err != nil {
			return fmt.Errorf("network namespace: %w", err)
		}
		rv.Add(func() { _ = m.cfg.Links.DeleteNetNS(run.UserNS) })
	} else if err := m.cfg.Links.CreateNetNS(run.NetNS); err != nil {
		return fmt.Errorf("network namespace: %w", err)
	}
	rv.Add(func() { _ = m.cfg.Links.DeleteNetNS(run.NetNS) })
	return nil
}

func sortedNICs(devs map[string]map[string]string) []string {
	var names []string
	for n, d := range devs {
		if d["type"] == "nic" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// HostLinkName is the host side of an instance's NIC: derived from the
// instance and device, so a restarted daemon finds it again.
func HostLinkName(runtimeID, device string) string {
	h := fnv.New32a()
	h.Write([]byte(runtimeID + "/" + device))
	return fmt.Sprintf("%s%08x", network.HostLinkPrefix, h.Sum32())
}

// nicConfig resolves a device into its allocation (MAC and addresses).
func (m *Manager) nicConfig(ctx context.Context, in Instance, name string, d map[string]string) (network.NICConfig, error) {
	netName := d["network"]
	if d["nictype"] == "bridged" {
		netName = d["parent"]
	}
	hw := d["hwaddr"]
	if hw == "" {
		hw = in.Config["volatile."+name+".hwaddr"]
	}
	if d["nictype"] == "macvlan" || (netName != "" && m.cfg.Networks == nil) {
		if d["nictype"] != "macvlan" {
			return network.NICConfig{}, errdefs.Invalid("networks are not available")
		}
		nc := network.NICConfig{Type: network.TypeMacvlan, Parent: d["parent"], Hwaddr: hw}
		if nc.Hwaddr == "" {
			nc.Hwaddr = netdev.RandomMAC()
		}
		return nc, nil
	}
	if typ, err := m.cfg.Networks.NetworkType(ctx, netName); errors.Is(err, errdefs.ErrNotFound) && d["nictype"] == "bridged" {
		// An unmanaged bridge: no addresses from hangard.
		if hw == "" {
			hw = netdev.RandomMAC()
		}
		return network.NICConfig{Type: network.TypeBridge, Bridge: netName, Hwaddr: hw}, nil
	} else if err != nil {
		return network.NICConfig{}, err
	} else if typ != network.TypeBridge && typ != network.TypeMacvlan {
		return network.NICConfig{}, errdefs.Invalid("network %q of type %s cannot take NICs", netName, typ)
	}
	return m.cfg.Networks.Allocate(ctx, network.NICRequest{InstanceID: in.ID, Device: name, Network: netName,
		Hwaddr: hw, IPv4: d["ipv4.address"], IPv6: d["ipv6.address"]})
}

func (m *Manager) startNIC(ctx context.Context, in Instance, name string, d map[string]string, netns string, r *running) (driver.NIC, error) {
	nc, err := m.nicConfig(ctx, in, name, d)
	if err != nil {
		return driver.NIC{}, err
	}
	if v, err := atoiOr(d["mtu"], nc.MTU); err == nil {
		nc.MTU = v
	}
	ifname := d["name"]
	if ifname == "" {
		ifname = name
	}
	host := d["host_name"]
	if host == "" {
		host = HostLinkName(in.RuntimeID, name)
	}
	nic := driver.NIC{Name: ifname, HostName: host, Hwaddr: nc.Hwaddr, MTU: nc.MTU, Addresses: nc.Addresses,
		Gateway4: nc.Gateway4, Gateway6: nc.Gateway6, Nameservers: nc.Nameservers, SearchDomain: nc.SearchDomain}
	if nc.Type == network.TypeMacvlan && macFiltered(d) {
		return driver.NIC{}, errdefs.Invalid("security.mac_filtering needs a bridged NIC: a macvlan has no host-side port to filter")
	}
	rv := revert.New()
	defer rv.Fail()
	if macFiltered(d) {
		// Before the link: its first frame is filtered already.
		if err := m.setMACFilter(ctx, in, name, d, host, nc.Hwaddr); err != nil {
			return driver.NIC{}, fmt.Errorf("mac filter: %w", err)
		}
		rv.Add(func() { _ = m.clearMACFilter(context.WithoutCancel(ctx), in, name) })
	}
	if err := m.setEgress(ctx, in, name, nc); err != nil {
		return driver.NIC{}, fmt.Errorf("egress: %w", err)
	}
	rv.Add(func() { _ = m.clearEgress(context.WithoutCancel(ctx), in, name) })
	switch {
	case in.VM && nc.Type == network.TypeMacvlan:
		// LXD's way: a macvtap on the parent, whose character device
		// QEMU gets as its tap (the driver opens it by the link's name).
		// The link carries the guest's MAC: a macvtap takes only frames
		// for its own address.
		mtu, err := m.cfg.Links.CreateMacvtap(host, nc.Parent, nc.Hwaddr, nc.MTU)
		if err != nil {
			return driver.NIC{}, err
		}
		nic.MTU = mtu
	case in.VM:
		if err := m.cfg.Links.CreateTap(host, nc.Bridge, nc.MTU); err != nil {
			return driver.NIC{}, err
		}
	default:
		l := Link{Kind: "veth", HostName: host, Bridge: nc.Bridge, NetNS: netns, Name: ifname,
			Hwaddr: nc.Hwaddr, MTU: nc.MTU, Addresses: nc.Addresses, Gateway4: nc.Gateway4, Gateway6: nc.Gateway6}
		if nc.Type == network.TypeMacvlan {
			l.Kind, l.Parent, l.Bridge = "macvlan", nc.Parent, ""
		}
		if err := m.cfg.Links.AddNIC(l); err != nil {
			return driver.NIC{}, err
		}
	}
	ing, _ := parseBitRate(or(d["limits.ingress"], d["limits.max"]))
	egr, _ := parseBitRate(or(d["limits.egress"], d["limits.max"]))
	if (ing > 0 || egr > 0) && nc.Type != network.TypeMacvlan {
		if err := m.cfg.Links.SetLimits(host, ing, egr); err != nil {
			_ = m.cfg.Links.DeleteLink(host)
			return driver.NIC{}, fmt.Errorf("limits: %w", err)
		}
	}
	if nc.Type == network.TypeBridge && len(nc.Addresses) > 0 {
		// An address freed a moment ago by another instance: the host
		// must not keep sending it to the old MAC.
		if err := m.cfg.Links.SetNeighbors(nc.Bridge, nc.Hwaddr, nc.Addresses); err != nil {
			m.cfg.Log.Warn("point the host at a NIC", "instance", in.Name, "device", name, "err", err)
		}
	}
	r.nics[name] = nc
	r.hostLinks[name] = host
	rv.Success()
	return nic, nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func atoiOr(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	var n int
	_, err := fmt.Sscanf(s, "%d", &n)
	return n, err
}

// Started starts an instance's proxies, once it runs.
func (m *Manager) Started(ctx context.Context, in Instance, devs map[string]map[string]string) error {
	m.mu.Lock()
	r := m.runs[in.RuntimeID]
	m.mu.Unlock()
	if r == nil {
		return nil
	}
	var names []string
	for n, d := range devs {
		if d["type"] == "proxy" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		if err := m.startProxy(ctx, in, n, devs[n], r); err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// Reattach rebuilds what the manager keeps in memory for an instance that
// kept running while the daemon was away, and restarts its proxies.
func (m *Manager) Reattach(ctx context.Context, in Instance, devs map[string]map[string]string) error {
	r := &running{nics: map[string]network.NICConfig{}, hostLinks: map[string]string{},
		forwarders: map[string][]Forwarder{}, proxyNAT: map[string]bool{}}
	var errs []error
	for _, name := range sortedNICs(devs) {
		d := devs[name]
		host := d["host_name"]
		if host == "" {
			host = HostLinkName(in.RuntimeID, name)
		}
		nc, err := m.nicConfig(ctx, in, name, d)
		if err != nil {
			m.cfg.Log.Warn("reattach nic", "instance", in.Name, "device", name, "err", err)
			// The NIC runs all the same: it keeps its filter, on the
			// MAC it was started with.
			nc = network.NICConfig{Hwaddr: or(d["hwaddr"], in.Config["volatile."+name+".hwaddr"])}
			if d["nictype"] == "macvlan" {
				nc.Type = network.TypeMacvlan
			}
		} else {
			r.nics[name] = nc
			r.hostLinks[name] = host
		}
		if macFiltered(d) && nc.Type != network.TypeMacvlan {
			if err := m.setMACFilter(ctx, in, name, d, host, nc.Hwaddr); err != nil {
				errs = append(errs, fmt.Errorf("device %s: mac filter: %w", name, err))
			}
		}
		if err == nil {
			if err := m.setEgress(ctx, in, name, nc); err != nil {
				errs = append(errs, fmt.Errorf("device %s: egress: %w", name, err))
			}
		}
	}
	m.mu.Lock()
	m.runs[in.RuntimeID] = r
	m.mu.Unlock()
	return errors.Join(append(errs, m.Started(ctx, in, devs))...)
}

// Stop removes the host side of a stopped instance's devices: proxies,
// host links, its network namespace, and what it kept in standby (a
// stateless stop, a delete, a failed start, devices changed while in
// standby).
func (m *Manager) Stop(ctx context.Context, in Instance, devs map[string]map[string]string) error {
	m.mu.Lock()
	r := m.runs[in.RuntimeID]
	delete(m.runs, in.RuntimeID)
	m.mu.Unlock()
	errs := m.release(ctx, in, devs, r, false)
	if k := m.takeStandby(in); k != nil {
		errs = append(errs, m.dropKept(ctx, in, k))
	}
	return errors.Join(errs...)
}

// release is Stop's removal of what r and devs hold on the host; with
// keepNAT, the DNAT rules of proxies with nat=true stay (and r forgets
// them).
func (m *Manager) release(ctx context.Context, in Instance, devs map[string]map[string]string, r *running, keepNAT bool) []error {
	var errs []error
	if r != nil {
		for dev := range r.forwarders {
			errs = append(errs, m.stopProxy(ctx, in, dev, r))
		}
		if keepNAT {
			m.mu.Lock()
			clear(r.proxyNAT)
			m.mu.Unlock()
		}
		for dev := range r.proxyNAT {
			errs = append(errs, m.stopProxy(ctx, in, dev, r))
		}
	}
	// Links are named from the devices, so even a daemon that lost its
	// memory (killed -9, then the instance stopped) removes them. A
	// container's veths go with its namespace, in the background: a
	// DeleteLink would wait for the kernel (~20 ms a veth).
	for _, name := range sortedNICs(devs) {
		host := devs[name]["host_name"]
		if host == "" {
			host = HostLinkName(in.RuntimeID, name)
		}
		d := devs[name]
		switch {
		case in.VM:
			errs = append(errs, m.cfg.Links.DeleteLink(host))
		case d["limits.ingress"] != "" || d["limits.egress"] != "" || d["limits.max"] != "":
			errs = append(errs, m.cfg.Links.DeleteLimits(host))
		}
	}
	if !in.VM {
		m.nsMu.Lock()
		errs = append(errs, m.cfg.Links.DeleteNetNS(m.netnsPath(in)), m.cfg.Links.DeleteNetNS(m.usernsPath(in)))
		// The last namespace gone: the directory's own mount goes too,
		// so a host with nothing running has no mount of hangard's.
		errs = append(errs, m.releaseDirLocked())
		m.nsMu.Unlock()
	}
	// The filters go once their links are gone (or going, with a
	// stopped instance behind them): no frame ever passes unfiltered.
	// Clearing a NIC that has none costs nothing.
	nics := map[string]bool{}
	for _, name := range sortedNICs(devs) {
		nics[name] = true
	}
	if r != nil {
		for name := range r.hostLinks {
			nics[name] = true
		}
	}
	for _, name := range sortedNames(nics) {
		errs = append(errs, m.clearMACFilter(ctx, in, name), m.clearEgress(ctx, in, name))
	}
	return errs
}

// Close releases the namespace directory when no namespace is left in it
// (a daemon that leaves instances running keeps it for the next start).
func (m *Manager) Close() error {
	m.nsMu.Lock()
	defer m.nsMu.Unlock()
	return m.releaseDirLocked()
}

// releaseDirLocked unmounts Dir if it holds no namespace; nsMu is held.
func (m *Manager) releaseDirLocked() error {
	ents, err := os.ReadDir(m.cfg.Dir)
	if err != nil || len(ents) > 0 {
		return nil
	}
	if err := unix.Unmount(m.cfg.Dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", m.cfg.Dir, err)
	}
	return nil
}

// Renamed tells the networks an instance changed name (DNS).
func (m *Manager) Renamed(ctx context.Context) error {
	if m.cfg.Networks == nil {
		return nil
	}
	return m.cfg.Networks.InstanceRenamed(ctx)
}

// Removed releases what removed NIC devices held (addresses, MACs).
func (m *Manager) Removed(ctx context.Context, in Instance, devices []string) error {
	if m.cfg.Networks == nil {
		return nil
	}
	var errs []error
	for _, d := range devices {
		errs = append(errs, m.cfg.Networks.Release(ctx, in.ID, d))
	}
	return errors.Join(errs...)
}

// Address is an instance's first address of a family on a managed network,
// for proxies with nat=true.
func (r *running) address(v4 bool) (netip.Addr, bool) {
	names := make([]string, 0, len(r.nics))
	for n := range r.nics {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		for _, a := range r.nics[n].Addresses {
			if a.Addr().Is4() == v4 {
				return a.Addr(), true
			}
		}
	}
	return netip.Addr{}, false
}
