package instance

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// Start starts a stopped instance.
func (s *Service) Start(ctx context.Context, name string) error {
	if err := s.allow(ctx, name, canUpdateState); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	return s.startLocked(ctx, in)
}

// startLocked starts an instance whose op lock the caller holds.
func (s *Service) startLocked(ctx context.Context, in *inst) error {
	return s.startWith(ctx, in, startOptions{})
}

// startOptions say how a start differs from a boot.
type startOptions struct {
	// state is a saved VM state to resume from (a stateful snapshot, a
	// fork's source), kept after the start.
	state string
	// forked: the state is another VM's, whose identity the guest is
	// told to drop.
	forked bool
}

// startFromState starts a VM from a saved state: it runs on with the
// processes it had.
func (s *Service) startFromState(ctx context.Context, in *inst, state string) error {
	return s.startWith(ctx, in, startOptions{state: state})
}

// startWith is startLocked as opts say.
func (s *Service) startWith(ctx context.Context, in *inst, opts startOptions) error {
	// The status leaves Stopped under the record lock, with the record
	// the start runs: a config change sees either the new status (and
	// applies its limits live, after the start) or is in this record.
	in.cfg.Lock()
	rec, status, _ := s.snapshot(in)
	if isActive(status) {
		in.cfg.Unlock()
		return errdefs.Conflict("instance %q is already running", rec.Name)
	}
	err := s.setStatus(in, StatusStarting)
	in.cfg.Unlock()
	if err != nil {
		return err
	}
	s.setIdmapKeys(&rec) // a profile may have changed what it is
	pid, volatile, err := s.runStart(ctx, rec, opts)
	if err != nil {
		s.forceStatus(in, StatusStopped, 0)
		return fmt.Errorf("start %s: %w", rec.Name, err)
	}
	started := time.Now()
	s.mu.Lock()
	in.status, in.pid = StatusRunning, pid
	s.mu.Unlock()

	// Merged into the record as it is now: a config change may have been
	// saved while the instance started.
	startedIdmap(&rec)
	err = s.updateRecord(ctx, in, func(r *store.Instance) {
		for _, k := range []string{keyIdmapBase, keyIdmapNext, keyIdmapCurrent, keyLastIdmap} {
			if v, ok := rec.Config[k]; ok {
				r.Config[k] = v
			} else {
				delete(r.Config, k)
			}
		}
		r.Config[keyLastPower] = powerRunning
		clearExit(r)
		r.Config[keyLastStart] = stamp(started)
		r.Stateful = false // a saved state is consumed by the start
		for k, v := range volatile {
			r.Config[k] = v
		}
		r.LastUsedAt = nowUTC()
	})
	if err != nil {
		// The container runs; only the bookkeeping failed. Say so loudly
		// rather than kill a working instance.
		s.log.Error("record start", "instance", rec.Name, "err", err)
	}
	s.cfg.Events.Lifecycle(ctx, "instance-started", instanceEntity(rec.Project, rec.Name), nil)
	s.log.Info("instance started", "instance", rec.Name, "pid", pid)
	return nil
}

// runStart starts the runtime with its devices: NICs made before, proxies
// after; a failure anywhere leaves neither running. It returns the
// volatile keys the devices set.
func (s *Service) runStart(ctx context.Context, rec store.Instance, opts startOptions) (int, map[string]string, error) {
	spec, err := s.buildSpec(ctx, rec)
	if err != nil {
		return 0, nil, err
	}
	spec.RestoreState, spec.Forked = opts.state, opts.forked
	if Type(rec.Type) == TypeVM {
		s.mu.RLock()
		views, _ := s.profileViewsLocked(profileRefs(rec))
		s.mu.RUnlock()
		spec.SkipAgent = agentSkipped(expandConfig(rec.Config, views))
	}
	if s.cfg.Devices == nil {
		pid, err := s.driverOf(rec).Start(ctx, spec)
		return pid, nil, err
	}
	cfg, devs, err := s.expanded(rec)
	if err != nil {
		return 0, nil, err
	}
	din := s.deviceInstance(rec, cfg)
	din.IDMap = spec.IDMap
	run, err := s.cfg.Devices.Start(ctx, din, devs)
	if err != nil {
		return 0, nil, err
	}
	spec.NetNS, spec.UserNS, spec.NICs = run.NetNS, run.UserNS, run.NICs
	spec.Mounts, spec.Disks, spec.Limits.BlockIO = run.Mounts, run.Disks, run.BlockIO
	spec.Displays, spec.TPM = run.Displays, run.TPM
	if spec.Root.Disk != nil {
		spec.Root.Disk.Bus, spec.Root.Disk.Limits = run.RootBus, run.RootLimits
	}
	pid, err := s.driverOf(rec).Start(ctx, spec)
	if err == nil {
		if err = s.cfg.Devices.Started(ctx, din, devs); err != nil {
			if serr := s.driverOf(rec).Stop(context.WithoutCancel(ctx), spec.ID, spec.StopSignal, 0, true); serr != nil {
				s.log.Error("stop after devices failed", "instance", rec.Name, "err", serr)
			}
		}
	}
	if err != nil {
		if derr := s.cfg.Devices.Stop(context.WithoutCancel(ctx), din, devs); derr != nil {
			s.log.Error("remove devices after failed start", "instance", rec.Name, "err", derr)
		}
		return 0, nil, err
	}
	return pid, run.Volatile, nil
}

// buildSpec turns an instance's expanded config into what the driver runs.
func (s *Service) buildSpec(ctx context.Context, rec store.Instance) (driver.Spec, error) {
	s.mu.RLock()
	views, err := s.profileViewsLocked(profileRefs(rec))
	s.mu.RUnlock()
	if err != nil {
		return driver.Spec{}, err
	}
	cfg := expandConfig(rec.Config, views)
	spec := driver.Spec{
		ID:       runtimeID(rec.ID),
		Hostname: rec.Name,
		Args:     commandOf(rec),
		Cwd:      "/",
	}
	spec.StopSignal = stopSignal(spec.Args)

	isVM := Type(rec.Type) == TypeVM
	spec.IDMap = s.idmapOf(Type(rec.Type), cfg)
	_, devs, err := s.expanded(rec)
	if err != nil {
		return driver.Spec{}, err
	}
	if spec.Root, err = s.rootOf(ctx, rec, cfg, devs); err != nil {
		return driver.Spec{}, err
	}
	if spec.Root.Firmware {
		if spec.SecureBoot, err = secureBootOf(cfg); err != nil {
			return driver.Spec{}, err
		}
	}

	envKeys := make([]string, 0)
	for k := range cfg {
		if strings.HasPrefix(k, prefixEnvironment) {
			envKeys = append(envKeys, k)
		}
	}
	sort.Strings(envKeys)
	if !isVM {
		spec.Env = append(spec.Env, "container=hangar")
	}
	proc, isOCI, err := ociProcessOf(rec.Config, cfg)
	if err != nil {
		return driver.Spec{}, err
	}
	if isOCI {
		// The image's environment lies under the instance's environment.*.
		spec.Args, spec.Cwd, spec.UID, spec.GID, spec.StopSignal = proc.args, proc.cwd, proc.uid, proc.gid, proc.stop
		spec.Env = mergeEnv(spec.Env, proc.env...)
	}
	vars := make([]string, 0, len(envKeys))
	for _, k := range envKeys {
		vars = append(vars, strings.TrimPrefix(k, prefixEnvironment)+"="+cfg[k])
	}
	spec.Env = mergeEnv(spec.Env, vars...)

	limits, err := s.limitsOf(cfg)
	if err != nil {
		return driver.Spec{}, err
	}
	spec.Limits = limits
	// The guest trusts the proxy's CA only while its traffic goes
	// through the proxy: that is when a host may answer with one of its
	// leaves.
	if on, _ := EgressOf(cfg); on && len(s.cfg.EgressCA) > 0 {
		spec.EgressCA = append([]byte(nil), s.cfg.EgressCA...)
	}
	return spec, nil
}

// limitsOf reads the cgroup limits from an expanded config.
func (s *Service) limitsOf(cfg map[string]string) (driver.Limits, error) {
	var l driver.Limits
	if v := cfg["limits.cpu"]; v != "" {
		count, set, err := parseCPU(v)
		if err != nil {
			return l, errdefs.Invalid("limits.cpu: %v", err)
		}
		// Input is checked against the host (checkHost); a record saved
		// on a larger host still starts here: more CPUs than exist means
		// "all of them", while a cpuset the kernel would refuse is named.
		if online, err := s.hostCPUSet(); err == nil {
			count = min(count, len(online))
			if set != "" {
				ranges, _ := parseCPUList(set)
				if miss := online.missing(newCPUSet(ranges)); miss != "" {
					return l, invalidValue("limits.cpu", v, fmt.Errorf("CPUs %s are not online on this host", miss))
				}
			}
		}
		l.CPUCount, l.CPUSet = count, set
	}
	if v := cfg["limits.memory"]; v != "" {
		b, err := parseMemory(v, s.cfg.HostMemory)
		if err != nil {
			return l, errdefs.Invalid("limits.memory: %v", err)
		}
		l.MemoryBytes = b
	}
	if v := cfg[keyMemoryHotplug]; v != "" {
		b, err := parseHotplug(v)
		if err != nil {
			return l, invalidValue(keyMemoryHotplug, v, err)
		}
		l.MemoryHotplug = b
	}
	l.DiskPriority = -1
	if v := cfg["limits.disk.priority"]; v != "" {
		if err := validateDiskPriority(v); err != nil {
			return l, errdefs.Invalid("limits.disk.priority: %v", err)
		}
		l.DiskPriority, _ = strconv.Atoi(v)
	}
	if v := cfg["limits.processes"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return l, errdefs.Invalid("limits.processes: %v", err)
		}
		l.Processes = n
	}
	return l, nil
}

// commandOf is what PID 1 runs when the image says nothing: plain
// root-filesystem images carry no command, so it is the image's init. OCI
// images carry theirs (ociProcessOf, which buildSpec applies over this).
func commandOf(store.Instance) []string { return []string{"/sbin/init"} }

// stopSignal is what asks PID 1 to shut down: an init system takes
// SIGPWR (what LXD sends, honoured by sysvinit, busybox init and systemd),
// an application SIGTERM.
func stopSignal(args []string) syscall.Signal {
	if len(args) > 0 && (strings.HasSuffix(args[0], "/init") || strings.HasSuffix(args[0], "/systemd")) {
		return syscall.SIGPWR
	}
	return syscall.SIGTERM
}
