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

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroupLayout is where the host mounts the cgroup controllers the driver
// reads. runc's cgroupfs manager creates cgroupPath(id) in each of them.
type cgroupLayout struct {
	v2 bool
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
			case "freezer", "pids", "memory", "cpuacct":
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

// dirs returns every directory the container's cgroup has in the
// controllers the driver reads.
func (l cgroupLayout) dirs(id string) []string {
	p := cgroupPath(id)
	if l.v2 {
		return []string{l.dir("", p)}
	}
	return []string{l.dir("freezer", p), l.dir("pids", p), l.dir("memory", p), l.dir("cpuacct", p)}
}

func (l cgroupLayout) files(id string) cgroupFiles {
	p := cgroupPath(id)
	if l.v2 {
		d := l.dir("", p)
		return cgroupFiles{
			v2:       true,
			freeze:   d + "/cgroup.events",
			pids:     d + "/pids.current",
			memUsage: d + "/memory.current",
			memPeak:  d + "/memory.peak",
			cpu:      d + "/cpu.stat",
		}
	}
	return cgroupFiles{
		freeze:   l.dir("freezer", p) + "/freezer.state",
		pids:     l.dir("pids", p) + "/pids.current",
		memUsage: l.dir("memory", p) + "/memory.usage_in_bytes",
		memPeak:  l.dir("memory", p) + "/memory.max_usage_in_bytes",
		cpu:      l.dir("cpuacct", p) + "/cpuacct.usage",
	}
}

// State reads the live state from the driver's own tracking and the cgroup
// files: it never runs runc, so it costs a few file reads.
func (d *Driver) State(ctx context.Context, id string) (driver.State, error) {
	in := d.lookup(id)
	if in == nil {
		return driver.State{Status: driver.StatusStopped}, nil
	}
	return in.state(), nil
}

// state reads in's cgroup. A file that cannot be read (the container is
// exiting and its cgroup going away) leaves its figure at zero.
func (in *instance) state() driver.State {
	st := driver.State{Status: driver.StatusRunning, Pid: in.pid}
	var buf [256]byte
	if in.cg.frozen(buf[:]) {
		st.Status = driver.StatusFrozen
	}
	st.Processes, _ = readInt(in.cg.pids, buf[:])
	st.MemoryUsage, _ = readInt(in.cg.memUsage, buf[:])
	st.MemoryPeak, _ = readInt(in.cg.memPeak, buf[:])
	if in.cg.v2 {
		b, err := readSmall(in.cg.cpu, buf[:])
		if err == nil {
			if v, ok := keyedValue(b, "usage_usec"); ok {
				st.CPUUsage = v * 1000
			}
		}
	} else {
		st.CPUUsage, _ = readInt(in.cg.cpu, buf[:])
	}
	return st
}

// frozen says whether the freezer reports the cgroup frozen (not merely
// freezing).
func (c cgroupFiles) frozen(buf []byte) bool {
	b, err := readSmall(c.freeze, buf)
	if err != nil {
		return false
	}
	if c.v2 {
		v, ok := keyedValue(b, "frozen")
		return ok && v == 1
	}
	return bytes.Equal(bytes.TrimSpace(b), []byte("FROZEN"))
}

// readSmall reads the start of a small (pseudo-)file into buf with bare
// syscalls: no allocation, no netpoller registration.
func readSmall(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

func readInt(path string, buf []byte) (int64, error) {
	b, err := readSmall(path, buf)
	if err != nil {
		return 0, err
	}
	return parseInt(bytes.TrimSpace(b))
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
