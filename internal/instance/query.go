package instance

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/project"
)

// Names lists the names of the instances in ctx's project, sorted.
func (s *Service) Names(ctx context.Context) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	refs := s.visibleLocked(ctx)
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.name
	}
	return out
}

// visibleLocked returns the instances a list in ctx shows (its project's,
// or every project's with project.WithAll), by project and name; the
// caller holds s.mu.
func (s *Service) visibleLocked(ctx context.Context) []ref {
	all, p := project.All(ctx), project.Name(ctx)
	out := make([]ref, 0, len(s.byName))
	for r := range s.byName {
		if all || r.project == p {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, compareRefs)
	return s.viewable(ctx, out)
}

// List returns the instances in ctx's project, sorted by name.
func (s *Service) List(ctx context.Context) []Instance {
	s.mu.RLock()
	defer s.mu.RUnlock()
	refs := s.visibleLocked(ctx)
	out := make([]Instance, 0, len(refs))
	for _, r := range refs {
		out = append(out, s.instanceLocked(s.byName[r]))
	}
	return out
}

// ListFull returns the instances in ctx's project with their live state,
// sorted by name.
func (s *Service) ListFull(ctx context.Context) []Full {
	s.mu.RLock()
	names := s.visibleLocked(ctx)
	out := make([]Full, 0, len(names))
	ids := make([]string, 0, len(names))
	for _, n := range names {
		in := s.byName[n]
		out = append(out, Full{Instance: s.instanceLocked(in)})
		ids = append(ids, runtimeID(in.rec.ID))
	}
	s.mu.RUnlock()
	// Runtime reads happen outside the lock: they touch the cgroup
	// filesystem and must not hold up writers. They are independent
	// file reads, spread over the CPUs for long lists.
	read := func(i int) {
		out[i].State = s.liveState(ctx, s.driverFor(out[i].Type), ids[i], out[i].Status)
		addHostNames(out[i].State.Network, out[i].Instance)
	}
	workers := min(runtime.GOMAXPROCS(0), 4)
	if len(out) < 16 || workers < 2 {
		for i := range out {
			read(i)
		}
		return out
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(out); i = int(next.Add(1)) - 1 {
				read(i)
			}
		}()
	}
	wg.Wait()
	return out
}

// Get returns one instance.
func (s *Service) Get(ctx context.Context, name string) (Instance, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return Instance{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.byName[instanceRef(ctx, name)]
	if !ok {
		return Instance{}, notFound(name)
	}
	return s.instanceLocked(in), nil
}

// GetFull returns one instance with its live state.
func (s *Service) GetFull(ctx context.Context, name string) (Full, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return Full{}, err
	}
	inst, err := s.Get(ctx, name)
	if err != nil {
		return Full{}, err
	}
	st, err := s.State(ctx, name)
	if err != nil {
		return Full{}, err
	}
	return Full{Instance: inst, State: st}, nil
}

// GetBrief returns one instance with the part of its live state its
// runtime tells at once: status, pid, CPU and memory use, whether its
// workload started. It asks neither the guest (Network is empty) nor
// storage (Disk is empty): an answer right after a VM's restore does
// not wait for its agent.
func (s *Service) GetBrief(ctx context.Context, name string) (Full, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return Full{}, err
	}
	inst, err := s.Get(ctx, name)
	if err != nil {
		return Full{}, err
	}
	s.mu.RLock()
	in, ok := s.byName[instanceRef(ctx, name)]
	var id string
	var status Status
	if ok {
		id, status = runtimeID(in.rec.ID), in.status
	}
	s.mu.RUnlock()
	if !ok {
		return Full{}, notFound(name)
	}
	return Full{Instance: inst, State: s.runtimeState(ctx, s.driverFor(inst.Type), id, status)}, nil
}

// State returns the live state of one instance.
func (s *Service) State(ctx context.Context, name string) (State, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return State{}, err
	}
	s.mu.RLock()
	in, ok := s.byName[instanceRef(ctx, name)]
	var id string
	var typ Type
	var status Status
	var view Instance
	var recID int64
	if ok {
		id, typ, status = runtimeID(in.rec.ID), Type(in.rec.Type), in.status
		view, recID = s.instanceLocked(in), in.rec.ID
	}
	s.mu.RUnlock()
	if !ok {
		return State{}, notFound(name)
	}
	st := s.liveState(ctx, s.driverFor(typ), id, status)
	addHostNames(st.Network, view)
	s.addRootUsage(ctx, &st, recID, view)
	return st, nil
}

// addRootUsage adds the root disk's usage to a state, under the root
// device's name, when storage can tell.
func (s *Service) addRootUsage(ctx context.Context, st *State, id int64, in Instance) {
	u, ok, err := s.cfg.Storage.RootUsage(ctx, id)
	if err != nil {
		s.log.Warn("read root disk usage", "instance", in.Name, "err", err)
	}
	if !ok {
		return
	}
	r, err := rootDiskOf(in.ExpandedDevices)
	if err != nil || r.Device == "" {
		r.Device = "root"
	}
	st.Disk = map[string]DiskState{r.Device: {Usage: u.Used, Total: u.Total}}
}

// addHostNames names the host side of each NIC in a state's network map
// (volatile.DEV.host_name), as LXD shows it.
func addHostNames(nets map[string]NetworkState, in Instance) {
	for dev, d := range in.ExpandedDevices {
		if d["type"] != "nic" {
			continue
		}
		host := in.Config["volatile."+dev+".host_name"]
		ifname := d["name"]
		if ifname == "" {
			ifname = dev
		}
		if n, ok := nets[ifname]; ok && host != "" {
			n.HostName = host
			nets[ifname] = n
		}
	}
}

func (s *Service) liveState(ctx context.Context, drv driver.Driver, id string, status Status) State {
	st := s.runtimeState(ctx, drv, id, status)
	if !isActive(status) {
		return st
	}
	// A VM's interfaces come from its guest agent; a disk-image VM (no
	// agent) shows none rather than invented ones.
	if nr, ok := drv.(driver.NetworkReader); ok {
		nets, err := nr.Network(ctx, id)
		if err != nil && !errors.Is(err, driver.ErrNotRunning) {
			s.log.Warn("read instance network", "id", id, "err", err)
		}
		for name, n := range nets {
			st.Network[name] = networkState(n)
		}
	}
	return st
}

// runtimeState is what the runtime tells of an instance without asking
// its guest: liveState without the network.
func (s *Service) runtimeState(ctx context.Context, drv driver.Driver, id string, status Status) State {
	st := State{Status: status, Network: map[string]NetworkState{}}
	if !isActive(status) {
		return st
	}
	ds, err := drv.State(ctx, id)
	if err != nil {
		s.log.Warn("read instance state", "id", id, "err", err)
		return st
	}
	st.Pid = ds.Pid
	st.Processes = ds.Processes
	st.MemoryUsage, st.MemoryPeak = ds.MemoryUsage, ds.MemoryPeak
	st.CPUUsage = ds.CPUUsage
	st.WorkloadStarted = ds.WorkloadStarted && status == StatusRunning
	if ds.Status == driver.StatusFrozen && status == StatusRunning {
		st.Status = StatusFrozen
	}
	if ds.Status == driver.StatusError {
		// The runtime says it crashed (a VM whose guest panicked); the
		// exit that follows records it.
		st.Status = StatusError
	}
	return st
}

func networkState(n driver.NetInterface) NetworkState {
	out := NetworkState{
		Addresses: make([]NetworkAddress, len(n.Addresses)),
		Counters: NetworkCounters{
			BytesReceived: n.BytesReceived, BytesSent: n.BytesSent,
			PacketsReceived: n.PacketsReceived, PacketsSent: n.PacketsSent,
			ErrorsReceived: n.ErrorsReceived, ErrorsSent: n.ErrorsSent,
			PacketsDroppedInbound: n.DroppedReceived, PacketsDroppedOutbound: n.DroppedSent,
		},
		Hwaddr: n.Hwaddr,
		MTU:    n.MTU,
		State:  "down",
		Type:   n.Type,
	}
	if n.Up {
		out.State = "up"
	}
	for i, a := range n.Addresses {
		out.Addresses[i] = NetworkAddress{Family: a.Family, Address: a.Address, Netmask: strconv.Itoa(a.PrefixLen), Scope: a.Scope}
	}
	return out
}

// instanceLocked renders an instance; the caller holds s.mu.
func (s *Service) instanceLocked(in *inst) Instance {
	r := in.rec
	views, _ := s.profileViewsLocked(profileRefs(r)) // profiles in use cannot be deleted
	out := Instance{
		ID:              r.UID,
		Project:         r.Project,
		Name:            r.Name,
		Type:            Type(r.Type),
		Architecture:    r.Architecture,
		Description:     r.Description,
		Config:          cloneMap(r.Config),
		Devices:         cloneDevices(r.Devices),
		ExpandedConfig:  expandConfig(r.Config, views),
		ExpandedDevices: expandDevices(r.Devices, views),
		Profiles:        append([]string{}, r.Profiles...),
		Ephemeral:       r.Ephemeral,
		Stateful:        r.Stateful,
		Status:          in.status,
		CreatedAt:       r.CreatedAt,
		LastUsedAt:      r.LastUsedAt,
	}
	runFacts(&out, r.Config)
	return out
}

// checkPrecondition runs pre against an instance whose record lock the
// caller holds.
func (s *Service) checkPrecondition(in *inst, pre Precondition) error {
	if pre == nil {
		return nil
	}
	s.mu.RLock()
	cur := s.instanceLocked(in)
	s.mu.RUnlock()
	return pre(cur)
}
