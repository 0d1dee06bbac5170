package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
)

var _ driver.MetricsReader = (*Driver)(nil)

// metricsQMPTimeout bounds the block statistics query: a scrape must not
// hang on a QEMU that does not answer.
const metricsQMPTimeout = 2 * time.Second

// Metrics reads what the host can tell of a running VM: CPU time of each
// vCPU thread, guest RAM and QEMU's resident memory, block I/O of each
// disk (QMP query-blockstats) and the guest's interface counters through
// the agent (the cached read State uses). The guest's memory breakdown,
// filesystems and processes would need the agent to report them: they
// are left out rather than guessed.
func (d *Driver) Metrics(ctx context.Context, id string) (driver.Metrics, error) {
	v := d.get(id)
	if v == nil {
		return driver.Metrics{}, driver.ErrNotRunning
	}
	m := driver.Metrics{Processes: -1}
	m.CPU = vcpuTimes(v.pid)
	for _, c := range m.CPU {
		if c.CPU != "" {
			m.CPUs++
		}
	}
	m.Memory = []driver.MemoryFigure{{Kind: driver.MemTotal, Value: v.mem}}
	if rss, ok := procRSS(v.pid); ok {
		m.Memory = append(m.Memory, driver.MemoryFigure{Kind: driver.MemRSS, Value: rss})
	}
	if mon := v.monitor(); mon != nil {
		v.mu.Lock()
		var l *diskLayout
		if v.disks != nil {
			l = v.disks.clone()
		}
		v.mu.Unlock()
		if out, err := mon.runWithin(metricsQMPTimeout, "query-blockstats", nil); err == nil {
			m.Disk = blockStats(out, l)
		} else {
			d.log.Debug("query-blockstats", "id", id, "err", err)
		}
	}
	nets, err := d.Network(ctx, id)
	if errors.Is(err, driver.ErrNotRunning) {
		return driver.Metrics{}, err
	}
	if len(nets) > 0 {
		m.Network = make(map[string]driver.NetCounters, len(nets))
		for name, n := range nets {
			m.Network[name] = driver.NetCounters{
				ReceiveBytes: n.BytesReceived, ReceivePackets: n.PacketsReceived,
				ReceiveErrs: n.ErrorsReceived, ReceiveDrop: n.DroppedReceived,
				TransmitBytes: n.BytesSent, TransmitPackets: n.PacketsSent,
				TransmitErrs: n.ErrorsSent, TransmitDrop: n.DroppedSent,
			}
		}
	}
	if d.get(id) != v {
		return driver.Metrics{}, driver.ErrNotRunning
	}
	return m, nil
}

// blockStats reads query-blockstats' answer: one entry per drive, named
// by its top node, which the layout maps to the disk device's name.
func blockStats(out json.RawMessage, l *diskLayout) map[string]driver.DiskIO {
	var stats []struct {
		NodeName string `json:"node-name"`
		Qdev     string `json:"qdev"`
		Stats    struct {
			RdBytes int64 `json:"rd_bytes"`
			WrBytes int64 `json:"wr_bytes"`
			RdOps   int64 `json:"rd_operations"`
			WrOps   int64 `json:"wr_operations"`
		} `json:"stats"`
	}
	if err := json.Unmarshal(out, &stats); err != nil {
		return nil
	}
	res := map[string]driver.DiskIO{}
	for _, s := range stats {
		name := ""
		if l != nil {
			for _, p := range l.Disks {
				if s.NodeName == topNode(p) || strings.Contains(s.Qdev, diskDeviceID(p.Key)+"/") || s.Qdev == diskDeviceID(p.Key) {
					name = p.Name
					break
				}
			}
		}
		if name == "" {
			continue // not a disk device (the agent's config drive, a CD)
		}
		res[name] = driver.DiskIO{
			ReadBytes: s.Stats.RdBytes, WrittenBytes: s.Stats.WrBytes,
			ReadsCompleted: s.Stats.RdOps, WritesCompleted: s.Stats.WrOps,
		}
	}
	return res
}

// vcpuTimes is the CPU time of each of QEMU's vCPU threads (named "CPU
// N/KVM" or "CPU N/TCG"), or of the whole process, CPU "", when it has
// none (single-threaded TCG runs every vCPU on one thread).
func vcpuTimes(pid int) []driver.CPUTime {
	base := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, _ := os.ReadDir(base)
	var out []driver.CPUTime
	for _, t := range tasks {
		comm, err := os.ReadFile(filepath.Join(base, t.Name(), "comm"))
		if err != nil {
			continue
		}
		n, ok := vcpuNumber(strings.TrimSpace(string(comm)))
		if !ok {
			continue
		}
		u, s, ok := statTimes(filepath.Join(base, t.Name(), "stat"))
		if ok {
			out = append(out, driver.CPUTime{CPU: n, User: u, System: s})
		}
	}
	if len(out) > 0 {
		return out
	}
	if u, s, ok := statTimes(filepath.Join("/proc", strconv.Itoa(pid), "stat")); ok {
		return []driver.CPUTime{{User: u, System: s}}
	}
	return nil
}

// vcpuNumber is N of a vCPU thread's name "CPU N/ACCEL".
func vcpuNumber(comm string) (string, bool) {
	rest, ok := strings.CutPrefix(comm, "CPU ")
	if !ok {
		return "", false
	}
	n, _, ok := strings.Cut(rest, "/")
	if _, err := strconv.Atoi(n); !ok || err != nil {
		return "", false
	}
	return n, true
}

// statTimes reads utime and stime, in seconds, from a /proc stat file.
func statTimes(path string) (user, system float64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	const userHZ = 100 // USER_HZ is 100 on Linux
	return float64(ut) / userHZ, float64(st) / userHZ, true
}

// procRSS is a process's resident memory in bytes (/proc/PID/statm).
func procRSS(pid int) (int64, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "statm"))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}
