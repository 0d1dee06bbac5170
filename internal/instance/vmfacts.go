package instance

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/fsroot"
	"github.com/hangar-dev/hangar/internal/store"
)

// The facts issue 15's instances API shows of an instance: when it last
// started and stopped, how its workload ended, whether its entrypoint
// runs, a VM's resource use and a guest path's kind; and two VM keys,
// limits.memory.hotplug and agent.skip.
//
// They live in volatile keys, so they survive a daemon restart and show
// in LXD's view too: volatile.last_start and volatile.last_stop (RFC 3339
// with nanoseconds, UTC), volatile.last_state.exit_code (hangar's, older)
// and volatile.last_state.exit_message. A start clears the exit; a stop,
// asked for or not, records the workload's end when the runtime knew it
// (a VM's agent reports it; runc's exit status), so a stopped workload
// shows "killed by signal 15 (SIGTERM)".

// Keys of this file.
const (
	keyAgentSkip       = "agent.skip"
	keyMemoryHotplug   = "limits.memory.hotplug"
	keyLastStart       = "volatile.last_start"
	keyLastStop        = "volatile.last_stop"
	keyLastExitMessage = "volatile.last_state.exit_message"
)

// minHotplug is the least memory headroom: Linux onlines hotplugged
// memory in blocks of 128 MiB on x86-64, so less could never be used.
const minHotplug = 128 << 20

// errAgentSkipped is what an exec, file or stat request to a VM with
// agent.skip gets.
var errAgentSkipped = errdefs.Conflict("the guest agent is disabled for this instance (skip_guest_agent)")

// parseHotplug reads limits.memory.hotplug: "0" or a size ("1GiB") of at
// least minHotplug; no percentage (of what would it be?).
func parseHotplug(v string) (int64, error) {
	if v == "" || v == "0" {
		return 0, nil
	}
	if strings.HasSuffix(v, "%") {
		return 0, fmt.Errorf("a size like 512MiB or 1GB, not a percentage")
	}
	b, err := parseMemory(v, 0)
	if err != nil {
		return 0, err
	}
	if b < minHotplug {
		return 0, fmt.Errorf("at least %d MiB (the guest onlines memory in blocks of that size), or 0", minHotplug>>20)
	}
	return b, nil
}

func validateHotplug(v string) error {
	_, err := parseHotplug(v)
	return err
}

// checkHotplug checks a VM's expanded config's memory headroom against
// the VM driver (its machine must have memory hotplug) and the host
// (memory plus headroom fit in it).
func (s *Service) checkHotplug(cfg map[string]string) error {
	v := cfg[keyMemoryHotplug]
	b, err := parseHotplug(v)
	if err != nil {
		return invalidValue(keyMemoryHotplug, v, err)
	}
	if b == 0 {
		return nil
	}
	hp, ok := s.driverFor(TypeVM).(driver.MemoryHotplugger)
	if !ok {
		return invalidValue(keyMemoryHotplug, v, errors.New("this host's VM runtime has no memory hotplug"))
	}
	if err := hp.MemoryHotplug(); err != nil {
		return invalidValue(keyMemoryHotplug, v, err)
	}
	if s.cfg.HostMemory > 0 {
		mem := int64(0)
		if m := cfg["limits.memory"]; m != "" {
			mem, _ = parseMemory(m, s.cfg.HostMemory)
		}
		if mem+b > s.cfg.HostMemory {
			return invalidValue(keyMemoryHotplug, v, fmt.Errorf("limits.memory and the headroom together are more than the host's %d MiB", s.cfg.HostMemory>>20))
		}
	}
	return nil
}

// agentSkipped says whether an instance's expanded config turns its guest
// agent's service off.
func agentSkipped(cfg map[string]string) bool {
	b, _ := parseBool(cfg[keyAgentSkip])
	return b
}

// exitMessage says in words how a workload ended.
func exitMessage(e driver.Exit) string {
	switch {
	case !e.Known:
		return ""
	case e.NotFound && e.Code == 126:
		return "command not executable"
	case e.NotFound:
		return "command not found"
	case e.Signal > 0:
		msg := fmt.Sprintf("killed by signal %d", e.Signal)
		if name := unix.SignalName(unix.Signal(e.Signal)); name != "" {
			msg += " (" + name + ")"
		}
		if e.OOM {
			msg += " - OOM"
		}
		return msg
	}
	return fmt.Sprintf("exited with code %d", e.Code)
}

// recordExit writes a workload's end into a record's config; an unknown
// end leaves none.
func recordExit(r *store.Instance, e driver.Exit) {
	if !e.Known {
		delete(r.Config, keyLastExitCode)
		delete(r.Config, keyLastExitMessage)
		return
	}
	r.Config[keyLastExitCode] = strconv.Itoa(e.Code)
	r.Config[keyLastExitMessage] = exitMessage(e)
}

// clearExit forgets the last run's end (a start).
func clearExit(r *store.Instance) {
	delete(r.Config, keyLastExitCode)
	delete(r.Config, keyLastExitMessage)
}

// stamp is a time as the volatile keys hold it.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// runFacts fills an instance view's start, stop and exit from its
// config; a value that does not parse is left out.
func runFacts(in *Instance, cfg map[string]string) {
	if t, err := time.Parse(time.RFC3339Nano, cfg[keyLastStart]); err == nil {
		in.StartedAt = t
	}
	if t, err := time.Parse(time.RFC3339Nano, cfg[keyLastStop]); err == nil {
		in.StoppedAt = t
	}
	if v, ok := cfg[keyLastExitCode]; ok {
		if n, err := strconv.Atoi(v); err == nil {
			in.ExitCode = &n
			in.ExitMessage = cfg[keyLastExitMessage]
			if in.ExitMessage == "" {
				in.ExitMessage = fmt.Sprintf("exited with code %d", n)
			}
		}
	}
}

// VMStats reads a running VM's resource use: its QEMU process's CPU time
// (utime+stime) and memory (statm), the memory the machine has
// (limits.memory plus limits.memory.hotplug), its vCPUs, and the bytes
// its NICs carried, read on their taps. A container or a stopped VM is a
// 409.
func (s *Service) VMStats(ctx context.Context, name string) (VMStats, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return VMStats{}, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return VMStats{}, err
	}
	rec, status, _ := s.snapshot(in)
	if Type(rec.Type) != TypeVM {
		return VMStats{}, errdefs.Invalid("instance %q is a container: stats are a virtual machine's", name)
	}
	if !isActive(status) {
		return VMStats{}, errdefs.Conflict("instance %q is %s: stats are a running virtual machine's", name, status)
	}
	r, ok := s.driverOf(rec).(driver.VMStatsReader)
	if !ok {
		return VMStats{}, errdefs.NotImplemented("this host's VM runtime reports no stats")
	}
	st, err := r.VMStats(ctx, runtimeID(rec.ID))
	if errors.Is(err, driver.ErrNotRunning) {
		return VMStats{}, errdefs.Conflict("instance %q is not running", name)
	}
	if err != nil {
		return VMStats{}, fmt.Errorf("stats of %s: %w", name, err)
	}
	return VMStats{
		CPUSeconds: st.CPUSeconds, MemoryRSS: st.MemoryRSS, MemoryVMS: st.MemoryVMS,
		AllocatedMemory: st.Memory + st.MemoryHotplug, VCPUs: st.VCPUs, NetRx: st.NetRx, NetTx: st.NetTx,
	}, nil
}

// StatPath says what path is in an instance: through a VM's guest agent
// (it must run, and its agent serve: agent.skip is a 409), or on a
// container's root (running or not). A missing path is Exists false and
// no error; one that cannot be stat'ed (permission, a file as a
// directory) is Exists false with Err. followLinks stats a symlink's
// target instead of the link.
func (s *Service) StatPath(ctx context.Context, name, p string, followLinks bool) (PathInfo, error) {
	if err := s.allow(ctx, name, canExec); err != nil {
		return PathInfo{}, err
	}
	if !strings.HasPrefix(p, "/") {
		return PathInfo{}, errdefs.Invalid("path %q is not absolute", p)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return PathInfo{}, errdefs.Invalid("path holds a NUL byte")
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return PathInfo{}, err
	}
	rec, _, _ := s.snapshot(in)
	if st, ok := s.driverOf(rec).(driver.GuestStater); ok {
		if err := s.checkAgentServes(rec); err != nil {
			return PathInfo{}, err
		}
		var info PathInfo
		_, err := s.withGuest(ctx, name, func(_ driver.GuestFiles, id string) error {
			gs, err := st.GuestStat(ctx, id, p, followLinks)
			if err != nil {
				return err
			}
			info = pathInfoOf(gs)
			return nil
		})
		return info, err
	}
	var info PathInfo
	err = s.withRoot(ctx, name, func(root *fsroot.Root, _ idMapping) error {
		fi, target, err := root.Stat(p, followLinks)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			return nil
		case errors.Is(err, errdefs.ErrInvalidArgument):
			// A component that is not a directory, a loop, a path
			// that leaves the root: it cannot be reached.
			info.Err = err.Error()
			return nil
		case err != nil:
			return err
		}
		info = PathInfo{
			Exists: true, IsDir: fi.Type == fsroot.TypeDir, IsFile: fi.Type == fsroot.TypeFile,
			IsSymlink: fi.Type == fsroot.TypeSymlink, Mode: fi.Mode, Size: fi.Size, LinkTarget: target,
		}
		return nil
	})
	return info, err
}

// checkAgentServes refuses a request to a VM whose agent serves none.
func (s *Service) checkAgentServes(rec store.Instance) error {
	if Type(rec.Type) != TypeVM {
		return nil
	}
	s.mu.RLock()
	views, _ := s.profileViewsLocked(profileRefs(rec))
	s.mu.RUnlock()
	if agentSkipped(expandConfig(rec.Config, views)) {
		return errAgentSkipped
	}
	return nil
}

func pathInfoOf(g driver.GuestStat) PathInfo {
	return PathInfo{
		Exists: g.Exists, IsDir: g.Type == FileTypeDirectory, IsFile: g.Type == FileTypeFile,
		IsSymlink: g.Type == FileTypeSymlink, LinkTarget: g.Target, Mode: g.Mode, Size: g.Size, Err: g.Err,
	}
}

// VMStats is a running VM's resource use, read from its QEMU process and
// its TAP devices. NetRx and NetTx are the bytes the guest received and
// sent.
type VMStats struct {
	CPUSeconds                            float64
	MemoryRSS, MemoryVMS, AllocatedMemory int64
	VCPUs                                 int
	NetRx, NetTx                          int64
}

// PathInfo is what a guest path is.
type PathInfo struct {
	Exists, IsDir, IsFile, IsSymlink bool
	LinkTarget                       string
	Mode                             uint32
	Size                             int64
	// Err is why the path could not be stat'ed (Exists is then false).
	Err string
}
