package instance

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Values are checked here against what the kernel and runc accept, before
// they are saved: a value the runtime refuses would otherwise be a 500 at a
// live update, or a start that fails later, and a bad value in a profile
// (the default one above all) would break every launch that uses it. Two
// levels: validateKey checks one key against fixed bounds (the kernel's
// constants), and checkExpanded checks an instance's expanded config against
// this host and the instance's type.

const (
	// pidMaxLimit is the kernel's PID_MAX_LIMIT on 64-bit hosts: the
	// largest pids.max the pids cgroup accepts (pids_max_write refuses
	// more with EINVAL, and runc update with it). The running limit,
	// /proc/sys/kernel/pid_max, is not the bound: it can be raised at any
	// time, and a pids.max above it is accepted and simply never reached.
	pidMaxLimit = 4 << 20
	// maxCPUID bounds the CPU numbers of a cpuset: the kernel's largest
	// NR_CPUS. It keeps "0-999999999" from being expanded before the
	// host's own CPUs are compared.
	maxCPUID = 8191
	// minContainerMemory is the least limits.memory a container starts
	// with: runc's init runs inside the limit before PID 1 does (measured
	// with runc 1.1.5: it peaks at 2.2 MiB, and a 2 MiB limit kills it);
	// Docker refuses less than 6 MiB for the same reason.
	minContainerMemory = 6 << 20
	// maxArgStrLen is the kernel's MAX_ARG_STRLEN (32 pages): execve
	// refuses a longer argument or "NAME=value" with E2BIG, so runc could
	// not start PID 1.
	maxArgStrLen = 32 * 4096
	// maxArgEnvTotal bounds PID 1's arguments and environment together:
	// execve allows a quarter of the stack limit, 2 MiB with the usual
	// 8 MiB.
	maxArgEnvTotal = 2 << 20
)

// readOnlineCPUs reads the host's online CPUs as a CPU list ("0-3,6").
func readOnlineCPUs() (string, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return "", fmt.Errorf("read online CPUs: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// cpuRange is one "lo-hi" (or "n", lo == hi) of a CPU list.
type cpuRange struct{ lo, hi int }

// parseCPUList reads the kernel's CPU list syntax ("0-1,3"): decimal CPU
// numbers up to maxCPUID and ascending ranges, comma-separated.
func parseCPUList(v string) ([]cpuRange, error) {
	num := func(s string) (int, bool) {
		if s == "" || len(s) > 5 || strings.TrimLeft(s, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		return n, err == nil && n <= maxCPUID
	}
	var out []cpuRange
	for _, part := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, ok := num(lo)
		if !ok {
			return nil, fmt.Errorf("not a CPU count or a CPU set like 0-1,3 (CPU numbers 0 to %d)", maxCPUID)
		}
		b := a
		if isRange {
			if b, ok = num(hi); !ok || b < a {
				return nil, fmt.Errorf("bad CPU range %q", part)
			}
		}
		out = append(out, cpuRange{a, b})
	}
	return out, nil
}

// cpuSet is a set of CPU numbers.
type cpuSet map[int]bool

func newCPUSet(ranges []cpuRange) cpuSet {
	s := cpuSet{}
	for _, r := range ranges {
		for c := r.lo; c <= r.hi; c++ {
			s[c] = true
		}
	}
	return s
}

// missing returns the CPUs of want that s lacks, as a CPU list.
func (s cpuSet) missing(want cpuSet) string {
	var out []int
	for c := range want {
		if !s[c] {
			out = append(out, c)
		}
	}
	sort.Ints(out)
	var parts []string
	for i := 0; i < len(out); {
		j := i
		for j+1 < len(out) && out[j+1] == out[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(out[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", out[i], out[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// hostCPUSet returns the host's online CPUs.
func (s *Service) hostCPUSet() (cpuSet, error) {
	v, err := s.onlineCPUs()
	if err != nil {
		return nil, err
	}
	ranges, err := parseCPUList(v)
	if err != nil {
		return nil, fmt.Errorf("online CPUs %q: %w", v, err)
	}
	return newCPUSet(ranges), nil
}

// checkHost checks the limits of a config against this host: a cpuset
// names only online CPUs, a CPU count is at most the online CPUs, and
// limits.memory is at most the host's memory. The kernel would refuse the
// cpuset (runc update and runc run fail with ERANGE); the other two would
// be accepted but mean nothing the host can give, and are refused so that
// what the config says is what the instance gets.
func (s *Service) checkHost(cfg map[string]string) error {
	if v := cfg["limits.cpu"]; v != "" {
		count, set, err := parseCPU(v)
		if err != nil {
			return invalidValue("limits.cpu", v, err)
		}
		online, err := s.hostCPUSet()
		if err != nil {
			return fmt.Errorf("check limits.cpu: %w", err)
		}
		if count > len(online) {
			return invalidValue("limits.cpu", v, fmt.Errorf("the host has %d online CPUs", len(online)))
		}
		if set != "" {
			ranges, _ := parseCPUList(set) // parseCPU checked it
			if miss := online.missing(newCPUSet(ranges)); miss != "" {
				return invalidValue("limits.cpu", v, fmt.Errorf("CPUs %s are not online on this host (online: %s)", miss, cpuListOf(online)))
			}
		}
	}
	if v := cfg["limits.memory"]; v != "" && s.cfg.HostMemory > 0 {
		b, err := parseMemory(v, s.cfg.HostMemory)
		if err != nil {
			return invalidValue("limits.memory", v, err)
		}
		if b > s.cfg.HostMemory {
			return invalidValue("limits.memory", v, fmt.Errorf("more than the host's %d MiB", s.cfg.HostMemory>>20))
		}
	}
	return nil
}

func cpuListOf(s cpuSet) string { return cpuSet{}.missing(s) }

// invalidValue is the 400 that names a key and its value.
func invalidValue(key, value string, err error) error {
	return errdefs.Invalid("invalid value %q for config key %q: %v", value, key, err)
}

// checkExpanded checks an instance's expanded config (its profiles' config
// under its own) as the runtime will see it: keys of the other instance
// type, limits against the host, and the process PID 1 would run. local is
// the instance's own config, which holds the image's recorded run
// defaults. Every create, update and profile change runs it, so what is
// saved can start.
func (s *Service) checkExpanded(typ Type, local, cfg map[string]string) error {
	if err := s.validateForType(typ, cfg); err != nil {
		return err
	}
	if err := s.checkHost(cfg); err != nil {
		return err
	}
	if typ == TypeVM {
		return nil // the guest's own init runs: no args, env or ids apply
	}
	proc, isOCI, err := ociProcessOf(local, cfg)
	if err != nil {
		return err
	}
	total := 0
	if isOCI {
		for i, a := range proc.args {
			if strings.IndexByte(a, 0) >= 0 {
				return errdefs.Invalid("the command's argument %d holds a NUL byte (oci.entrypoint, oci.cmd)", i)
			}
			if len(a) >= maxArgStrLen {
				return errdefs.Invalid("the command's argument %d is longer than the kernel's %d bytes (oci.entrypoint, oci.cmd)", i, maxArgStrLen-1)
			}
			total += len(a) + 1
		}
		// Ids outside the container's id map cannot be set by runc's init.
		if priv, _ := parseBool(cfg["security.privileged"]); !priv {
			for _, id := range []struct {
				key string
				v   uint32
			}{{keyOCIUID, proc.uid}, {keyOCIGID, proc.gid}} {
				if id.v >= s.cfg.IDMap.Size {
					return invalidValue(id.key, strconv.FormatUint(uint64(id.v), 10),
						fmt.Errorf("an unprivileged container maps ids 0 to %d only", s.cfg.IDMap.Size-1))
				}
			}
		}
		for _, kv := range proc.env {
			total += len(kv) + 1
		}
	}
	for k, v := range cfg {
		if name, ok := strings.CutPrefix(k, prefixEnvironment); ok {
			total += len(name) + len(v) + 2
		}
	}
	if total > maxArgEnvTotal {
		return errdefs.Invalid("the environment and command of PID 1 take %d bytes, more than the %d the kernel's execve allows", total, maxArgEnvTotal)
	}
	return nil
}

// checkWithProfiles checks a config as it expands with the named profiles.
func (s *Service) checkWithProfiles(typ Type, local map[string]string, profiles []ref) error {
	s.mu.RLock()
	views, err := s.profileViewsLocked(profiles)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	return s.checkExpanded(typ, local, expandConfig(local, views))
}
