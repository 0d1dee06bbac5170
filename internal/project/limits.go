package project

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/units"
)

// Usage is what a project uses of each resource a limits.* key caps.
// Memory and Disk are bytes, CPU a count of CPUs.
type Usage struct {
	Instances, Containers, VMs, Processes, Networks int64
	CPU                                             int64
	Memory                                          int64
	Disk                                            int64
}

// Add returns u + v.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		Instances: u.Instances + v.Instances, Containers: u.Containers + v.Containers, VMs: u.VMs + v.VMs,
		Processes: u.Processes + v.Processes, Networks: u.Networks + v.Networks,
		CPU: u.CPU + v.CPU, Memory: u.Memory + v.Memory, Disk: u.Disk + v.Disk,
	}
}

// UsageSource reports one project's own usage (not its children's: the
// Service sums subtrees). Several sources sum, so each reports only what
// it owns: StoreCounts the counts of instances and networks, the instance
// core limits.cpu/memory/processes and root disks, storage custom volumes.
type UsageSource interface {
	ProjectUsage(ctx context.Context, project string) (Usage, error)
}

// UsageFunc adapts a function to UsageSource.
type UsageFunc func(ctx context.Context, project string) (Usage, error)

// ProjectUsage calls f.
func (f UsageFunc) ProjectUsage(ctx context.Context, project string) (Usage, error) {
	return f(ctx, project)
}

// limit is one limits.* key: the resource name LXD's project state uses
// and the Usage field it caps.
type limit struct {
	key, resource string
	field         func(*Usage) *int64
	bytes         bool
	noun          string // what one unit of usage is, for messages
}

var limits = []limit{
	{"limits.instances", "instances", func(u *Usage) *int64 { return &u.Instances }, false, "instances"},
	{"limits.containers", "containers", func(u *Usage) *int64 { return &u.Containers }, false, "containers"},
	{"limits.virtual-machines", "virtual-machines", func(u *Usage) *int64 { return &u.VMs }, false, "virtual machines"},
	{"limits.cpu", "cpu", func(u *Usage) *int64 { return &u.CPU }, false, "CPUs"},
	{"limits.memory", "memory", func(u *Usage) *int64 { return &u.Memory }, true, "memory"},
	{"limits.disk", "disk", func(u *Usage) *int64 { return &u.Disk }, true, "disk"},
	{"limits.processes", "processes", func(u *Usage) *int64 { return &u.Processes }, false, "processes"},
	{"limits.networks", "networks", func(u *Usage) *int64 { return &u.Networks }, false, "networks"},
}

// format writes an amount of l's resource.
func (l limit) format(n int64) string {
	if l.bytes {
		return units.FormatByteSize(n)
	}
	return strconv.FormatInt(n, 10)
}

// value returns the limit config sets for l, and whether it sets one.
func (s *Service) limitValue(config map[string]string, l limit) (int64, bool, error) {
	v := config[l.key]
	if v == "" {
		return 0, false, nil
	}
	if pct, ok := strings.CutSuffix(v, "%"); ok && l.key == "limits.memory" {
		n, err := strconv.ParseInt(pct, 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s %q: %w", l.key, v, err)
		}
		total, err := s.hostMemory()
		if err != nil {
			return 0, false, fmt.Errorf("%s %q: %w", l.key, v, err)
		}
		return total * n / 100, true, nil
	}
	if l.bytes {
		n, err := units.ParseByteSize(v)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", l.key, err)
		}
		return n, true, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%s %q: %w", l.key, v, err)
	}
	return n, true, nil
}

func (s *Service) hostMemory() (int64, error) {
	if s.HostMemory != nil {
		return s.HostMemory()
	}
	return memTotal()
}

// memTotal reads MemTotal from /proc/meminfo.
func memTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("host memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("host memory: MemTotal %q: %w", rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("host memory: no MemTotal in /proc/meminfo")
}

// tree is every project by name and the children of each.
type tree struct {
	byName   map[string]Project
	children map[string][]string
}

// tree reads every project, from the cache while no write happened
// since (a quota check runs at every create and must not query the
// whole project table each time). The tree is read only, never changed
// in place, so sharing it is safe.
func (s *Service) tree(ctx context.Context) (tree, error) {
	s.cache.mu.RLock()
	t, ok := s.cache.tree, s.cache.treeOK
	gen := s.cache.gen
	s.cache.mu.RUnlock()
	if ok {
		return t, nil
	}
	all, err := s.List(ctx)
	if err != nil {
		return tree{}, err
	}
	t = tree{byName: map[string]Project{}, children: map[string][]string{}}
	for _, p := range all {
		t.byName[p.Name] = p
		if p.Parent != "" {
			t.children[p.Parent] = append(t.children[p.Parent], p.Name)
		}
	}
	s.cache.mu.Lock()
	if s.cache.gen == gen {
		s.cache.tree, s.cache.treeOK = t, true
	}
	s.cache.mu.Unlock()
	return t, nil
}

// subtree returns name and every project below it.
func (t tree) subtree(name string) []string {
	out := []string{name}
	for i := 0; i < len(out); i++ {
		out = append(out, t.children[out[i]]...)
	}
	return out
}

// ancestors returns name's parent, its parent, and so on up.
func (t tree) ancestors(name string) []string {
	var out []string
	for p := t.byName[name].Parent; p != "" && !slices.Contains(out, p); p = t.byName[p].Parent {
		out = append(out, p)
	}
	return out
}

// ownUsage sums every source's report for one project.
func (s *Service) ownUsage(ctx context.Context, name string) (Usage, error) {
	var total Usage
	for _, src := range s.Sources {
		u, err := src.ProjectUsage(ctx, name)
		if err != nil {
			return Usage{}, fmt.Errorf("usage of project %q: %w", name, err)
		}
		total = total.Add(u)
	}
	return total, nil
}

// subtreeUsage is the usage of name and every project below it: what
// counts against name's limits.
func (s *Service) subtreeUsage(ctx context.Context, t tree, name string) (Usage, error) {
	return s.subtreeUsageMemo(ctx, t, name, nil)
}

// subtreeUsageMemo is subtreeUsage reading each project's own usage at
// most once per memo: a check up a chain of ancestors sums overlapping
// subtrees, and asks each source once per project instead of once per
// ancestor above it.
func (s *Service) subtreeUsageMemo(ctx context.Context, t tree, name string, memo map[string]Usage) (Usage, error) {
	var total Usage
	for _, p := range t.subtree(name) {
		u, ok := memo[p]
		if !ok {
			var err error
			if u, err = s.ownUsage(ctx, p); err != nil {
				return Usage{}, err
			}
			if memo != nil {
				memo[p] = u
			}
		}
		total = total.Add(u)
	}
	return total, nil
}

// CheckAdd checks that project may grow by delta: for the project and
// every ancestor, the usage of its whole subtree plus delta must stay
// within each of its limits. Over a limit is ErrForbidden (a quota
// refusal, as Kubernetes answers an exceeded ResourceQuota; LXD 5.0 gives
// a bare 500) naming the project, the limit, its value and the excess.
// Only the resources delta grows are checked, so shrinking an instance in
// a project already over a lowered limit still works.
func (s *Service) CheckAdd(ctx context.Context, project string, delta Usage) error {
	t, err := s.tree(ctx)
	if err != nil {
		return err
	}
	if _, ok := t.byName[project]; !ok {
		return errdefs.NotFound("project %q not found", project)
	}
	return s.checkChain(ctx, t, project, append([]string{project}, t.ancestors(project)...), delta)
}

// checkChain checks each project of chain against its subtree's usage
// plus delta; origin is the project delta goes into.
func (s *Service) checkChain(ctx context.Context, t tree, origin string, chain []string, delta Usage) error {
	memo := map[string]Usage{}
	for _, name := range chain {
		p := t.byName[name]
		var used *Usage
		for _, l := range limits {
			add := *l.field(&delta)
			if add <= 0 {
				continue
			}
			lim, ok, err := s.limitValue(p.Config, l)
			if err != nil {
				return fmt.Errorf("project %q: %w", name, err)
			}
			if !ok {
				continue
			}
			if used == nil {
				u, err := s.subtreeUsageMemo(ctx, t, name, memo)
				if err != nil {
					return err
				}
				used = &u
			}
			if after := *l.field(used) + add; after > lim {
				whose := fmt.Sprintf("project %q", name)
				if name != origin {
					whose = fmt.Sprintf("project %q (an ancestor of %q)", name, origin)
				}
				return errdefs.Forbidden("%s: %s=%s would be exceeded by %s (%s in use, %s more requested)",
					whose, l.key, p.Config[l.key], l.format(after-lim), l.format(*l.field(used)), l.format(add))
			}
		}
	}
	return nil
}

// checkLimits refuses a config whose limits are below what name's subtree
// uses now: ErrInvalidArgument naming the limit and what uses it.
func (s *Service) checkLimits(ctx context.Context, t tree, name string, config map[string]string) error {
	var used *Usage
	for _, l := range limits {
		lim, ok, err := s.limitValue(config, l)
		if err != nil {
			return errdefs.Invalid("project %q: %v", name, err)
		}
		if !ok {
			continue
		}
		if used == nil {
			u, err := s.subtreeUsage(ctx, t, name)
			if err != nil {
				return err
			}
			used = &u
		}
		if cur := *l.field(used); cur > lim {
			users, err := s.users(ctx, t, name, l)
			if err != nil {
				return err
			}
			return errdefs.Invalid("%s=%s is below the current usage of project %q: %s %s in use%s",
				l.key, config[l.key], name, l.format(cur), l.noun, users)
		}
	}
	return nil
}

// users says what in name's subtree uses l's resource: the instances (of
// l's type) or networks, " by ..." for messages.
func (s *Service) users(ctx context.Context, t tree, name string, l limit) (string, error) {
	var names []string
	for _, p := range t.subtree(name) {
		objs, err := s.Contents(ctx, p)
		if err != nil {
			return "", err
		}
		for _, o := range objs {
			var match bool
			switch l.key {
			case "limits.networks":
				match = o.Kind == KindNetwork
			case "limits.containers":
				match = o.Kind == KindInstance && o.Type == TypeContainer
			case "limits.virtual-machines":
				match = o.Kind == KindInstance && o.Type == TypeVirtualMachine
			default:
				match = o.Kind == KindInstance
			}
			if !match {
				continue
			}
			if p != name {
				names = append(names, p+"/"+o.Name)
			} else {
				names = append(names, o.Name)
			}
		}
	}
	if len(names) == 0 {
		return "", nil
	}
	return " by " + strings.Join(names, ", "), nil
}

// Resource is one resource's limit (-1: none) and usage, as LXD's
// api.ProjectStateResource.
type Resource struct {
	Limit, Usage int64
}

// State returns each limited resource's limit and the usage of the
// project's subtree, keyed by LXD's names (instances, containers,
// virtual-machines, cpu, memory, disk, processes, networks).
func (s *Service) State(ctx context.Context, name string) (map[string]Resource, error) {
	t, err := s.tree(ctx)
	if err != nil {
		return nil, err
	}
	p, ok := t.byName[name]
	if !ok {
		return nil, errdefs.NotFound("project %q not found", name)
	}
	u, err := s.subtreeUsage(ctx, t, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Resource, len(limits))
	for _, l := range limits {
		r := Resource{Limit: -1, Usage: *l.field(&u)}
		lim, ok, err := s.limitValue(p.Config, l)
		if err != nil {
			return nil, fmt.Errorf("project %q: %w", name, err)
		}
		if ok {
			r.Limit = lim
		}
		out[l.resource] = r
	}
	return out, nil
}

// StoreCounts is the UsageSource of what the database alone knows: a
// project's instances (by type) and networks. The instance core adds CPU,
// memory, processes and disk through its own source, and must not count
// instances again.
type StoreCounts struct{ S *Service }

// ProjectUsage counts the project's instances and networks.
func (c StoreCounts) ProjectUsage(ctx context.Context, project string) (Usage, error) {
	objs, err := c.S.Contents(ctx, project)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	for _, o := range objs {
		switch {
		case o.Kind == KindNetwork:
			u.Networks++
		case o.Kind == KindInstance:
			u.Instances++
			if o.Type == TypeVirtualMachine {
				u.VMs++
			} else {
				u.Containers++
			}
		}
	}
	return u, nil
}
