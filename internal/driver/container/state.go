package container

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroupLayout is where the host mounts the cgroup controllers the driver
// reads. runc's cgroupfs manager creates path(id) in each of them.
type cgroupLayout struct {
	v2     bool
	parent string // cgroup of all containers, e.g. /hangar
	// v2: the unified mount. v1: controller name → mount point and the
	// mount's root (non-"/" when the daemon runs in a cgroup namespace).
	unified string
	v1      map[string]v1Mount
}

type v1Mount struct{ point, root string }

// cgroupFiles are the files State reads for one container, resolved once at
// start so State only opens and reads.
type cgroupFiles struct {
	v2       bool
	freeze   string // v1 freezer.state, v2 cgroup.events
	pids     string // pids.current
	memUsage string // v1 memory.usage_in_bytes, v2 memory.current
	memPeak  string // v1 memory.max_usage_in_bytes, v2 memory.peak
	cpu      string // v1 cpuacct.usage (ns), v2 cpu.stat (usage_usec)
	// Read only by Metrics (metrics.go); see there for their formats.
	memStat  string // memory.stat
	cpuAll   string // v1 cpuacct.usage_all; v2 cpu.stat again
	ioBytes  string // v1 blkio.throttle.io_service_bytes_recursive, v2 io.stat
	ioOps    string // v1 blkio.throttle.io_serviced_recursive, v2 none
	oom      string // v1 memory.oom_control, v2 memory.events
	swap     string // v1 none (memory.stat has it), v2 memory.swap.current
	memLimit string // v1 memory.limit_in_bytes, v2 memory.max
	cpuset   string // v1 cpuset.effective_cpus, v2 cpuset.cpus.effective
}

// detectCgroups finds the cgroup mounts as runc does: a cgroup2 filesystem
// at /sys/fs/cgroup means unified mode; otherwise (legacy or hybrid) the
// controllers are the v1 hierarchies listed in mountinfo.
func detectCgroups() (cgroupLayout, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &fs); err != nil {
		return cgroupLayout{}, fmt.Errorf("statfs %s: %w", cgroupRoot, err)
	}
	if fs.Type == unix.CGROUP2_SUPER_MAGIC {
		return cgroupLayout{v2: true, unified: cgroupRoot}, nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return cgroupLayout{}, err
	}
	defer f.Close()
	l := cgroupLayout{v1: map[string]v1Mount{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent maj:min root point opts [optional...] - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(sf) < 3 || sf[0] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(sf[2], ",") {
			switch opt {
			case "freezer", "pids", "memory", "cpuacct", "blkio", "cpuset": // blkio and cpuset are optional
				if _, dup := l.v1[opt]; !dup {
					l.v1[opt] = v1Mount{point: unescapeMountinfo(pf[4]), root: unescapeMountinfo(pf[3])}
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return cgroupLayout{}, err
	}
	for _, c := range []string{"freezer", "pids", "memory", "cpuacct"} {
		if _, ok := l.v1[c]; !ok {
			return cgroupLayout{}, fmt.Errorf("cgroup v1 controller %s is not mounted", c)
		}
	}
	return l, nil
}

// dir returns the directory of cgroup path in controller's hierarchy.
func (l cgroupLayout) dir(controller, path string) string {
	if l.v2 {
		return filepath.Join(l.unified, path)
	}
	m := l.v1[controller]
	if m.root != "/" {
		if rel, err := filepath.Rel(m.root, path); err == nil && !strings.HasPrefix(rel, "..") {
			path = rel
		}
	}
	return filepath.Join(m.point, path)
}

// removeParent removes the parent cgroup from every hierarchy where it is
// empty, so a daemon that stops with no container running leaves no cgroup
// behind. Where containers still run, rmdir fails with EBUSY and the parent
// stays for them.
func (l cgroupLayout) removeParent() {
	for _, d := range l.allDirs(l.parent) {
		_ = os.Remove(d)
	}
}

// allDirs returns the directories cgroup path has in every hierarchy runc
// creates it in: each v1 controller the driver knows (deduplicated, as
// co-mounted controllers share one) and, on hybrid hosts, the unified and
// named (systemd) hierarchies, which the driver does not read.
func (l cgroupLayout) allDirs(path string) []string {
	if l.v2 {
		return []string{l.dir("", path)}
	}
	var out []string
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	for c := range l.v1 {
		add(l.dir(c, path))
	}
	others, _ := filepath.Glob(filepath.Join(cgroupRoot, "*", path))
	for _, d := range others {
		add(d)
	}
	return out
}

// dirs returns every directory the container's cgroup has in the
// controllers the driver reads.
func (l cgroupLayout) dirs(id string) []string {
	p := l.path(id)
	if l.v2 {
		return []string{l.dir("", p)}
	}
	return []string{l.dir("freezer", p), l.dir("pids", p), l.dir("memory", p), l.dir("cpuacct", p)}
}

func (l cgroupLayout) files(id string) cgroupFiles {
	p := l.path(id)
	if l.v2 {
		d := l.dir("", p)
		return cgroupFiles{
			v2:       true,
			freeze:   d + "/cgroup.events",
			pids:     d + "/pids.current",
			memUsage: d + "/memory.current",
			memPeak:  d + "/memory.peak",
			cpu:      d + "/cpu.stat",
			memStat:  d + "/memory.stat",
			cpuAll:   d + "/cpu.stat",
			ioBytes:  d + "/io.stat",
			oom:      d + "/memory.events",
			swap:     d + "/memory.swap.current",
			memLimit: d + "/memory.max",
			cpuset:   d + "/cpuset.cpus.effective",
		}
	}
	// A controller the host does not mount leaves its files empty: their
	// figures are left out.
	var ioBytes, ioOps, cpuset string
	if _, ok := l.v1["blkio"]; ok {
		ioBytes = l.dir("blkio", p) + "/blkio.throttle.io_service_bytes_recursive"
		ioOps = l.dir("blkio", p) + "/blkio.throttle.io_serviced_recursive"
	}
	if _, ok := l.v1["cpuset"]; ok {
		cpuset = l.dir("cpuset", p) + "/cpuset.effective_cpus"
	}
	return cgroupFiles{
		freeze:   l.dir("freezer", p) + "/freezer.state",
		pids:     l.dir("pids", p) + "/pids.current",
		memUsage: l.dir("memory", p) + "/memory.usage_in_bytes",
		memPeak:  l.dir("memory", p) + "/memory.max_usage_in_bytes",
		cpu:      l.dir("cpuacct", p) + "/cpuacct.usage",
		memStat:  l.dir("memory", p) + "/memory.stat",
		cpuAll:   l.dir("cpuacct", p) + "/cpuacct.usage_all",
		ioBytes:  ioBytes,
		ioOps:    ioOps,
		oom:      l.dir("memory", p) + "/memory.oom_control",
		memLimit: l.dir("memory", p) + "/memory.limit_in_bytes",
		cpuset:   cpuset,
	}
}

// cgroupStats holds the container's cgroup files open, so that reading
// one is a single pread: open+read+close costs about four times as much.
// It costs up to thirteen descriptors per running container (five for
// State, the rest for Metrics). mu guards the
// descriptors against reuse: they are closed (by the watcher) only under
// the write lock.
type cgroupStats struct {
	v2     bool
	mu     sync.RWMutex
	fds    [numStats]int // -1: the file could not be opened
	closed bool
}

// The files of cgroupStats.fds.
const (
	statFreeze = iota
	statPids
	statMemUsage
	statMemPeak
	statCPU
	statMemStat
	statCPUAll
	statIOBytes
	statIOOps
	statOOM
	statSwap
	statMemLimit
	statCPUSet
	numStats
)

// openStats opens the cgroup files of a running container. A file that
// cannot be opened (memory.peak before Linux 5.19) reads as zero.
func openStats(f cgroupFiles) *cgroupStats {
	c := &cgroupStats{v2: f.v2}
	for i, p := range [numStats]string{f.freeze, f.pids, f.memUsage, f.memPeak, f.cpu,
		f.memStat, f.cpuAll, f.ioBytes, f.ioOps, f.oom, f.swap, f.memLimit, f.cpuset} {
		if p == "" {
			c.fds[i] = -1
			continue
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			fd = -1
		}
		c.fds[i] = fd
	}
	return c
}

func (c *cgroupStats) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for i, fd := range c.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
		c.fds[i] = -1
	}
}

// read returns the start of file i. Caller holds c.mu (read).
func (c *cgroupStats) read(i int, buf []byte) ([]byte, error) {
	fd := c.fds[i]
	if fd < 0 {
		return nil, unix.EBADF
	}
	for {
		n, err := unix.Pread(fd, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func (c *cgroupStats) readInt(i int, buf []byte) int64 {
	b, err := c.read(i, buf)
	if err != nil {
		return 0
	}
	v, _ := parseInt(bytes.TrimSpace(b))
	return v
}

// State reads the live state from the driver's own tracking and the cgroup
// files: it never runs runc, and costs five preads.
func (d *Driver) State(ctx context.Context, id string) (driver.State, error) {
	in := d.lookup(id)
	if in == nil {
		return driver.State{Status: driver.StatusStopped}, nil
	}
	return in.state(), nil
}

// state reads in's cgroup. A file that cannot be read leaves its figure at
// zero. Once the watcher has closed the files, PID 1 is gone: Stopped.
func (in *instance) state() driver.State {
	c := in.stats
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return driver.State{Status: driver.StatusStopped}
	}
	// A container's PID 1 is its entrypoint: it runs while the
	// container does.
	st := driver.State{Status: driver.StatusRunning, Pid: in.pid, WorkloadStarted: true}
	var buf [128]byte
	if c.frozenLocked(buf[:]) {
		st.Status = driver.StatusFrozen
	}
	st.Processes = c.readInt(statPids, buf[:])
	st.MemoryUsage = c.readInt(statMemUsage, buf[:])
	st.MemoryPeak = c.readInt(statMemPeak, buf[:])
	if c.v2 {
		// usage_usec is the first line of cpu.stat.
		if b, err := c.read(statCPU, buf[:]); err == nil {
			if v, ok := keyedValue(b, "usage_usec"); ok {
				st.CPUUsage = v * 1000
			}
		}
	} else {
		st.CPUUsage = c.readInt(statCPU, buf[:])
	}
	return st
}

// frozen says whether the freezer reports the cgroup frozen (not merely
// freezing).
func (c *cgroupStats) frozen() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var buf [128]byte
	return c.frozenLocked(buf[:])
}

func (c *cgroupStats) frozenLocked(buf []byte) bool {
	b, err := c.read(statFreeze, buf)
	if err != nil {
		return false
	}
	if c.v2 {
		v, ok := keyedValue(b, "frozen")
		return ok && v == 1
	}
	return bytes.Equal(bytes.TrimSpace(b), []byte("FROZEN"))
}

var errNotNumber = errors.New("not a number")

// parseInt parses a non-negative decimal ("max" is not a number).
func parseInt(b []byte) (int64, error) {
	if len(b) == 0 || len(b) > 19 {
		return 0, errNotNumber
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errNotNumber
		}
		v = v*10 + int64(c-'0')
	}
	return v, nil
}

// keyedValue finds "key N" in a flat-keyed cgroup file.
func keyedValue(b []byte, key string) (int64, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(line, []byte{' '})
		if ok && string(k) == key {
			n, err := parseInt(bytes.TrimSpace(v))
			return n, err == nil
		}
	}
	return 0, false
}
