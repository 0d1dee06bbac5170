package instance

import (
	"context"
	"fmt"
	"strconv"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
	"github.com/hangar-dev/hangar/internal/units"
)

// Project limits. The project domain knows the limits and the tree of
// projects; the core knows what each instance takes. A create reserves
// its usage in its project (pending) under quotaMu before it answers, so
// two concurrent creates cannot both pass the last free slot; the
// reservation ends when the instance is registered (and counted from
// then on) or the create fails.

// Quota checks growth against project limits (project.Service.CheckAdd).
type Quota interface {
	CheckAdd(ctx context.Context, project string, delta project.Usage) error
}

// limitKeys are the instance keys whose sum a project may limit, with the
// project limit that counts them: LXD requires every instance of such a
// project to set them, so that the sum means something.
var limitKeys = []struct{ instance, project string }{
	{"limits.cpu", "limits.cpu"},
	{"limits.memory", "limits.memory"},
	{"limits.processes", "limits.processes"},
}

// ProjectUsage is what the instances of project p take, those being
// created included: the core's part of the project's usage (networks are
// the network service's). It reads each instance's few summed keys
// through its profiles in place, without expanding its whole config and
// devices: a create's quota check sums every project up the tree
// (BenchmarkQuotaCheck5Levels in internal/api/velocity).
func (s *Service) ProjectUsage(ctx context.Context, p string) (project.Usage, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u := s.pending[p]
	var refs []ref
	for r, in := range s.byName {
		if r.project != p {
			continue
		}
		gen := s.usageGen.Load()
		if c := in.usage.Load(); c != nil && c.gen == gen {
			u = u.Add(c.u)
			continue
		}
		refs = refs[:0]
		for _, n := range in.rec.Profiles {
			refs = append(refs, ref{in.rec.ProfileProject, n})
		}
		views, err := s.profileViewsLocked(refs)
		if err != nil {
			continue // its profiles are gone mid-delete: it no longer counts
		}
		rec := in.rec
		get := func(k string) string {
			if v, ok := rec.Config[k]; ok {
				return v
			}
			for i := len(views) - 1; i >= 0; i-- {
				if v, ok := views[i].Config[k]; ok {
					return v
				}
			}
			return ""
		}
		iu := s.usageFrom(Type(rec.Type), get, layeredRootSize(rec.Devices, views))
		in.usage.Store(&cachedUsage{gen: gen, u: iu})
		u = u.Add(iu)
	}
	return u, nil
}

// cachedUsage is one instance's usage at one usageGen.
type cachedUsage struct {
	gen uint64
	u   project.Usage
}

// usageOf is what one instance with this expanded config and devices
// takes from its project.
func (s *Service) usageOf(typ Type, cfg map[string]string, devs map[string]map[string]string) project.Usage {
	var disk int64
	if r, err := rootDiskOf(devs); err == nil && r.Device != "" {
		disk = rootSize(devs[r.Device])
	}
	return s.usageFrom(typ, func(k string) string { return cfg[k] }, disk)
}

// usageFrom is usageOf over a config lookup and a root disk size.
func (s *Service) usageFrom(typ Type, get func(string) string, disk int64) project.Usage {
	u := project.Usage{Instances: 1, Disk: disk}
	if typ == TypeVM {
		u.VMs = 1
	} else {
		u.Containers = 1
	}
	u.CPU = cpuCount(get("limits.cpu"))
	if v := get("limits.memory"); v != "" {
		if n, err := parseMemory(v, s.cfg.HostMemory); err == nil {
			u.Memory = n
		}
	}
	if n, err := strconv.ParseInt(get("limits.processes"), 10, 64); err == nil {
		u.Processes = n
	}
	return u
}

func rootSize(d map[string]string) int64 {
	n, err := units.ParseByteSize(d["size"])
	if err != nil {
		return 0
	}
	return n
}

// layeredRootSize is the size of the root disk the instance's devices
// over its profiles' make (expandDevices then rootDiskOf), without
// building the expanded map: 0 with none or more than one.
func layeredRootSize(local map[string]map[string]string, views []profileView) int64 {
	var found int
	var size int64
	// effective tells whether the device name from layer i (len(views)
	// is the instance's own) is the one expansion keeps.
	effective := func(name string, i int) bool {
		if i < len(views) {
			if _, ok := local[name]; ok {
				return false
			}
			for j := i + 1; j < len(views); j++ {
				if _, ok := views[j].Devices[name]; ok {
					return false
				}
			}
		}
		return true
	}
	check := func(name string, d map[string]string, i int) {
		if d["type"] == "disk" && d["path"] == "/" && effective(name, i) {
			found++
			size = rootSize(d)
		}
	}
	for i, v := range views {
		for name, d := range v.Devices {
			check(name, d, i)
		}
	}
	for name, d := range local {
		check(name, d, len(views))
	}
	if found != 1 {
		return 0
	}
	return size
}

// cpuCount is how many CPUs limits.cpu gives: a count, or the size of a
// CPU list ("0-3,6").
func cpuCount(v string) int64 {
	if v == "" {
		return 0
	}
	count, set, err := parseCPU(v)
	if err != nil || set == "" {
		return int64(count)
	}
	ranges, _ := parseCPUList(set) // parseCPU read it
	var n int64
	for _, r := range ranges {
		n += int64(r.hi - r.lo + 1)
	}
	return n
}

// checkProjectRules checks an instance's expanded config and devices
// against its project: its restrictions (restricted.*), and, where the
// project or an ancestor limits a sum (limits.cpu, limits.memory,
// limits.processes, limits.disk), that the instance sets what is summed.
func (s *Service) checkProjectRules(ctx context.Context, typ Type, cfg map[string]string, devs map[string]map[string]string) error {
	p := project.From(ctx)
	instType := "container"
	if typ == TypeVM {
		instType = "virtual-machine"
	}
	if err := project.CheckRestrictions(p, instType, cfg, devs); err != nil {
		return err
	}
	chain, err := s.projectChain(ctx, p)
	if err != nil {
		return err
	}
	for _, anc := range chain {
		for _, k := range limitKeys {
			if anc.Config[k.project] != "" && cfg[k.instance] == "" {
				return errdefs.Invalid("%s must be set: project %q limits %s to %s", k.instance, anc.Name, k.project, anc.Config[k.project])
			}
		}
		if anc.Config["limits.disk"] != "" {
			r, err := rootDiskOf(devs)
			if err != nil || r.Device == "" || devs[r.Device]["size"] == "" {
				return errdefs.Invalid("the root disk needs a size: project %q limits limits.disk to %s", anc.Name, anc.Config["limits.disk"])
			}
		}
	}
	return nil
}

// projectChain returns p and its ancestors, nearest first.
func (s *Service) projectChain(ctx context.Context, p project.Project) ([]project.Project, error) {
	chain := []project.Project{p}
	seen := map[string]bool{p.Name: true}
	for cur := p; cur.Parent != "" && s.cfg.Projects != nil; {
		next, err := s.cfg.Projects.Project(ctx, cur.Parent)
		if err != nil {
			return nil, fmt.Errorf("project %q parent: %w", cur.Name, err)
		}
		if seen[next.Name] {
			break // the project domain refuses loops; never spin on one
		}
		seen[next.Name] = true
		chain = append(chain, next)
		cur = next
	}
	return chain, nil
}

// reservation is a creation's usage counted as pending in its project.
// It ends in the same critical section that registers the instance
// (endLocked), so the instance is never counted twice, nor not at all.
type reservation struct {
	s       *Service
	project string
	delta   project.Usage
	ended   bool
}

// end ends the reservation of a creation that will not register.
func (r *reservation) end() {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	r.endLocked()
}

// endLocked ends the reservation; the caller holds s.mu.
func (r *reservation) endLocked() {
	if !r.ended {
		r.ended = true
		r.s.pending[r.project] = r.s.pending[r.project].Add(negate(r.delta))
	}
}

// reserve checks that delta fits project p's limits (and its ancestors')
// and counts it as pending until the reservation ends.
func (s *Service) reserve(ctx context.Context, p string, delta project.Usage) (*reservation, error) {
	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	if s.cfg.Quota != nil {
		if err := s.cfg.Quota.CheckAdd(ctx, p, delta); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	s.pending[p] = s.pending[p].Add(delta)
	s.mu.Unlock()
	return &reservation{s: s, project: p, delta: delta}, nil
}

// checkGrowth checks a change of one instance from before to after
// against its project's limits: only what grows is checked, so shrinking
// an instance in a project over a lowered limit works.
func (s *Service) checkGrowth(ctx context.Context, p string, before, after project.Usage) error {
	grow := project.Usage{
		CPU: max(after.CPU-before.CPU, 0), Memory: max(after.Memory-before.Memory, 0),
		Processes: max(after.Processes-before.Processes, 0), Disk: max(after.Disk-before.Disk, 0),
	}
	if grow == (project.Usage{}) || s.cfg.Quota == nil {
		return nil
	}
	s.quotaMu.Lock()
	defer s.quotaMu.Unlock()
	return s.cfg.Quota.CheckAdd(ctx, p, grow)
}

func negate(u project.Usage) project.Usage {
	return project.Usage{
		Instances: -u.Instances, Containers: -u.Containers, VMs: -u.VMs, Processes: -u.Processes,
		Networks: -u.Networks, CPU: -u.CPU, Memory: -u.Memory, Disk: -u.Disk,
	}
}

// checkProjectChange checks a change of an instance's record against its
// project: the new expanded config and devices against its rules, and
// what grows against its limits.
func (s *Service) checkProjectChange(ctx context.Context, rec, next store.Instance) error {
	bcfg, bdevs, err := s.expanded(rec)
	if err != nil {
		return err
	}
	ncfg, ndevs, err := s.expanded(next)
	if err != nil {
		return err
	}
	if err := s.checkProjectRules(ctx, Type(next.Type), ncfg, ndevs); err != nil {
		return err
	}
	return s.checkGrowth(ctx, next.Project, s.usageOf(Type(rec.Type), bcfg, bdevs), s.usageOf(Type(next.Type), ncfg, ndevs))
}
