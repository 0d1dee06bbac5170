package instance

import (
	"context"
	"github.com/hangar-dev/hangar/internal/auth"
	"slices"
	"sort"
	"strings"

	"github.com/hangar-dev/hangar/internal/device"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/store"
)

// DeviceLayer makes the host side of instances' devices (package device): NICs
// before a start, proxies once running, all of it gone after a stop.
type DeviceLayer interface {
	Validate(ctx context.Context, devs map[string]map[string]string, vm bool) error
	Start(ctx context.Context, in device.Instance, devs map[string]map[string]string) (device.Run, error)
	Started(ctx context.Context, in device.Instance, devs map[string]map[string]string) error
	Reattach(ctx context.Context, in device.Instance, devs map[string]map[string]string) error
	Stop(ctx context.Context, in device.Instance, devs map[string]map[string]string) error
	// Standby is Stop for an instance stopped with its state saved: the
	// DNAT rules of its proxies with nat=true and pinned neighbour
	// entries of its addresses stay, so a client still reaches its
	// address (and wakes it) until the next Start takes them over; Stop
	// removes them. Called for an instance already stopped (recovery),
	// it puts them back.
	Standby(ctx context.Context, in device.Instance, devs map[string]map[string]string) error
	Update(ctx context.Context, in device.Instance, old, cur map[string]map[string]string) ([]driver.NIC, []string, error)
	Removed(ctx context.Context, in device.Instance, devices []string) error
	Renamed(ctx context.Context) error
	// BlockIO are a container's disk limits per host block device.
	BlockIO(ctx context.Context, in device.Instance, devs map[string]map[string]string) ([]driver.BlockIOLimit, error)
}

// NICHotplugger is a driver that plugs NICs into a running instance (a
// VM through QMP). Without it NIC changes of a running VM apply at its
// next start.
type NICHotplugger interface {
	AttachNIC(ctx context.Context, id string, nic driver.NIC) error
	DetachNIC(ctx context.Context, id, name string) error
}

// networkForgetter is a driver that caches an instance's interfaces and
// must read them afresh after its NICs changed.
type networkForgetter interface{ ForgetNetwork(id string) }

// deviceInstance is what the device layer knows of an instance.
func (s *Service) deviceInstance(rec store.Instance, cfg map[string]string) device.Instance {
	di := device.Instance{ID: rec.ID, RuntimeID: runtimeID(rec.ID), Name: rec.Name,
		VM: Type(rec.Type) == TypeVM, Config: cfg, IDMap: s.idmapOf(Type(rec.Type), cfg)}
	if on, mode := EgressOf(cfg); on {
		di.Egress = mode
	}
	return di
}

// expanded returns a record's expanded config and devices.
func (s *Service) expanded(rec store.Instance) (map[string]string, map[string]map[string]string, error) {
	s.mu.RLock()
	views, err := s.profileViewsLocked(profileRefs(rec))
	s.mu.RUnlock()
	if err != nil {
		return nil, nil, err
	}
	return expandConfig(rec.Config, views), expandDevices(rec.Devices, views), nil
}

// stopDevices removes the host side of a stopped instance's devices;
// with standby (a stateful stop) what lets a client reach it stays
// (DeviceLayer.Standby).
func (s *Service) stopDevices(ctx context.Context, rec store.Instance, standby bool) {
	if s.cfg.Devices == nil {
		return
	}
	cfg, devs, err := s.expanded(rec)
	if err != nil {
		s.log.Error("devices of stopped instance", "instance", rec.Name, "err", err)
		return
	}
	stop := s.cfg.Devices.Stop
	if standby {
		stop = s.cfg.Devices.Standby
	}
	if err := stop(context.WithoutCancel(ctx), s.deviceInstance(rec, cfg), devs); err != nil {
		s.log.Error("remove devices of stopped instance", "instance", rec.Name, "standby", standby, "err", err)
	}
}

// updateDevices applies a change of a running instance's devices.
func (s *Service) updateDevices(ctx context.Context, before, after store.Instance) error {
	if s.cfg.Devices == nil {
		return nil
	}
	_, oldDevs, err := s.expanded(before)
	if err != nil {
		return err
	}
	cfg, newDevs, err := s.expanded(after)
	if err != nil {
		return err
	}
	return s.applyDevices(ctx, after, cfg, oldDevs, newDevs)
}

// applyDevices changes a running instance's devices from old to cur: the
// device layer makes and removes the host side, a VM's driver plugs NICs.
func (s *Service) applyDevices(ctx context.Context, rec store.Instance, cfg map[string]string, old, cur Devices) error {
	in := s.deviceInstance(rec, cfg)
	if hp, ok := s.driverOf(rec).(NICHotplugger); ok {
		in.Hotplug = hotplug{hp, in.RuntimeID}
	}
	if mh, ok := s.driverOf(rec).(driver.MountHotplugger); ok {
		in.Mounts = mountHotplug{mh, in.RuntimeID}
	}
	if dh, ok := s.driverOf(rec).(driver.DiskHotplugger); ok {
		in.Disks = diskHotplug{dh, in.RuntimeID}
	}
	_, _, err := s.cfg.Devices.Update(ctx, in, old, cur)
	if nf, ok := s.driverOf(rec).(networkForgetter); ok {
		nf.ForgetNetwork(in.RuntimeID)
	}
	return err
}

// hotplug is a driver's NIC hotplug for one instance.
type hotplug struct {
	hp NICHotplugger
	id string
}

func (h hotplug) AttachNIC(ctx context.Context, nic driver.NIC) error {
	return h.hp.AttachNIC(ctx, h.id, nic)
}

func (h hotplug) DetachNIC(ctx context.Context, name string) error {
	return h.hp.DetachNIC(ctx, h.id, name)
}

// mountHotplug and diskHotplug are a driver's disk hotplug for one
// instance.
type mountHotplug struct {
	h  driver.MountHotplugger
	id string
}

func (h mountHotplug) AttachMount(ctx context.Context, m driver.Mount) error {
	return h.h.AttachMount(ctx, h.id, m)
}

func (h mountHotplug) DetachMount(ctx context.Context, dst string) error {
	return h.h.DetachMount(ctx, h.id, dst)
}

type diskHotplug struct {
	h  driver.DiskHotplugger
	id string
}

func (h diskHotplug) AttachDisk(ctx context.Context, d driver.Disk) error {
	return h.h.AttachDisk(ctx, h.id, d)
}

func (h diskHotplug) DetachDisk(ctx context.Context, name string) error {
	return h.h.DetachDisk(ctx, h.id, name)
}

// releaseRemovedNICs frees the addresses of NICs a change removed.
func (s *Service) releaseRemovedNICs(ctx context.Context, before, after store.Instance) {
	if s.cfg.Devices == nil {
		return
	}
	_, oldDevs, err1 := s.expanded(before)
	cfg, newDevs, err2 := s.expanded(after)
	if err1 != nil || err2 != nil {
		return
	}
	var gone []string
	for name, d := range oldDevs {
		if d["type"] != "nic" {
			continue
		}
		if nd, ok := newDevs[name]; !ok || nd["type"] != "nic" || nd["network"] != d["network"] || nd["parent"] != d["parent"] {
			gone = append(gone, name)
		}
	}
	if len(gone) == 0 {
		return
	}
	if err := s.cfg.Devices.Removed(ctx, s.deviceInstance(after, cfg), gone); err != nil {
		s.log.Warn("release NIC addresses", "instance", after.Name, "err", err)
	}
}

// NetworkUsers names the instances and profiles of every project whose
// devices use a network, as "instances/NAME" and "profiles/NAME" (with
// "?project=P" outside the default project), those ctx may see: ask as
// the daemon (auth.AsDaemon) to know whether anything uses it.
func (s *Service) NetworkUsers(ctx context.Context, network string) ([]string, error) {
	uses := func(devs map[string]map[string]string) bool {
		for _, d := range devs {
			if d["type"] == "nic" && (d["network"] == network || d["nictype"] == "bridged" && d["parent"] == network) {
				return true
			}
		}
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for r, p := range s.profiles {
		if uses(p.Devices) && s.shows(ctx, auth.Profile(r.project, r.name)) {
			out = append(out, r.usedBy("profiles"))
		}
	}
	for r, in := range s.byName {
		if !s.shows(ctx, auth.Instance(r.project, r.name)) {
			continue
		}
		views, err := s.profileViewsLocked(profileRefs(in.rec))
		if err != nil {
			continue
		}
		if uses(expandDevices(in.rec.Devices, views)) {
			out = append(out, r.usedBy("instances"))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		// Instances first, as LXD lists them.
		pi, pj := strings.HasPrefix(out[i], "profiles/"), strings.HasPrefix(out[j], "profiles/")
		if pi != pj {
			return !pi
		}
		return out[i] < out[j]
	})
	return out, nil
}

// devicesDiffer tells whether a change touches the expanded devices.
func (s *Service) devicesDiffer(before, after store.Instance) (bool, error) {
	if s.cfg.Devices == nil {
		return false, nil
	}
	// The common change (config keys) touches neither: no expansion.
	if sameDevices(before.Devices, after.Devices) && slices.Equal(before.Profiles, after.Profiles) {
		return false, nil
	}
	_, a, err := s.expanded(before)
	if err != nil {
		return false, err
	}
	_, b, err := s.expanded(after)
	if err != nil {
		return false, err
	}
	return !sameDevices(a, b), nil
}

// recoverDevices, after a daemon start, reattaches the devices of running
// instances (proxies, the manager's memory), clears what a daemon killed
// -9 left of stopped ones (namespaces, host links) and puts back what
// instances in standby (stopped with a saved state) keep: their NAT
// proxies' rules (the firewall is rebuilt from the running instances')
// and pinned neighbours.
func (s *Service) recoverDevices(ctx context.Context) {
	if s.cfg.Devices == nil {
		return
	}
	type item struct {
		rec    store.Instance
		active bool
	}
	s.mu.RLock()
	items := make([]item, 0, len(s.byName))
	for _, in := range s.byName {
		items = append(items, item{cloneRecord(in.rec), isActive(in.status)})
	}
	s.mu.RUnlock()
	for _, it := range items {
		cfg, devs, err := s.expanded(it.rec)
		if err != nil {
			s.log.Error("recover devices", "instance", it.rec.Name, "err", err)
			continue
		}
		din := s.deviceInstance(it.rec, cfg)
		switch {
		case it.active:
			err = s.cfg.Devices.Reattach(ctx, din, devs)
		case it.rec.Stateful:
			err = s.cfg.Devices.Standby(ctx, din, devs)
		default:
			err = s.cfg.Devices.Stop(ctx, din, devs)
		}
		if err != nil {
			s.log.Error("recover devices", "instance", it.rec.Name, "err", err)
		}
	}
}
