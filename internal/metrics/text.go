package metrics

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/driver"
)

// The instance series are written straight into the text format rather
// than built as client_golang metrics and gathered: at 100 instances that
// is 4,000+ samples, and the registry's per-sample label pairs, sorting
// and consistency checks cost 10-15 ms a scrape (BenchmarkGather before
// this file), most of the 20 ms budget. The format is the one
// client_golang's text encoder writes (and LXD serves): "# HELP", "# TYPE"
// with the sample's full name, then the samples.

// family is one instance metric: its name, help, type and how to read its
// samples from one instance's figures.
type family struct {
	name, help, typ string
	samples         func(w *textWriter, m *driver.Metrics)
}

func counter(name, help string, f func(w *textWriter, m *driver.Metrics)) family {
	return family{name, help, "counter", f}
}

func gauge(name, help string, f func(w *textWriter, m *driver.Metrics)) family {
	return family{name, help, "gauge", f}
}

// families are the instance metrics, in name order. The names, labels and
// help texts are LXD 5.0's (lxd/metrics/types.go).
var families = func() []family {
	fs := []family{
		counter("lxd_cpu_seconds_total", "The total number of CPU time used in seconds.", func(w *textWriter, m *driver.Metrics) {
			for _, c := range m.CPU {
				w.sample2("cpu", c.CPU, "mode", "system", c.System)
				w.sample2("cpu", c.CPU, "mode", "user", c.User)
			}
		}),
		gauge("lxd_cpu_effective_total", "The total number of effective CPUs.", func(w *textWriter, m *driver.Metrics) {
			if m.CPUs > 0 {
				w.sample0(float64(m.CPUs))
			}
		}),
		gauge("lxd_procs_total", "The number of running processes.", func(w *textWriter, m *driver.Metrics) {
			if m.Processes >= 0 {
				w.sample0(float64(m.Processes))
			}
		}),
	}
	disk := func(name, help string, v func(driver.DiskIO) int64) family {
		return counter(name, help, func(w *textWriter, m *driver.Metrics) {
			for _, dev := range w.disks {
				w.sample1("device", dev, float64(v(m.Disk[dev])))
			}
		})
	}
	fs = append(fs,
		disk("lxd_disk_read_bytes_total", "The total number of bytes read.", func(d driver.DiskIO) int64 { return d.ReadBytes }),
		disk("lxd_disk_reads_completed_total", "The total number of completed reads.", func(d driver.DiskIO) int64 { return d.ReadsCompleted }),
		disk("lxd_disk_written_bytes_total", "The total number of bytes written.", func(d driver.DiskIO) int64 { return d.WrittenBytes }),
		disk("lxd_disk_writes_completed_total", "The total number of completed writes.", func(d driver.DiskIO) int64 { return d.WritesCompleted }),
	)
	filesystem := func(name, help string, v func(driver.Filesystem) int64) family {
		return gauge(name, help, func(w *textWriter, m *driver.Metrics) {
			for _, f := range m.Filesystem {
				w.sample3("device", f.Device, "fstype", f.Type, "mountpoint", f.Mountpoint, float64(v(f)))
			}
		})
	}
	fs = append(fs,
		filesystem("lxd_filesystem_avail_bytes", "The number of available space in bytes.", func(f driver.Filesystem) int64 { return f.Avail }),
		filesystem("lxd_filesystem_free_bytes", "The number of free space in bytes.", func(f driver.Filesystem) int64 { return f.Free }),
		filesystem("lxd_filesystem_size_bytes", "The size of the filesystem in bytes.", func(f driver.Filesystem) int64 { return f.Size }),
	)
	for k, mm := range map[driver.MemoryKind][2]string{
		driver.MemActiveAnon:   {"Active_anon_bytes", "The amount of anonymous memory on active LRU list."},
		driver.MemActiveFile:   {"Active_file_bytes", "The amount of file-backed memory on active LRU list."},
		driver.MemActive:       {"Active_bytes", "The amount of memory on active LRU list."},
		driver.MemCached:       {"Cached_bytes", "The amount of cached memory."},
		driver.MemDirty:        {"Dirty_bytes", "The amount of memory waiting to get written back to the disk."},
		driver.MemInactiveAnon: {"Inactive_anon_bytes", "The amount of anonymous memory on inactive LRU list."},
		driver.MemInactiveFile: {"Inactive_file_bytes", "The amount of file-backed memory on inactive LRU list."},
		driver.MemInactive:     {"Inactive_bytes", "The amount of memory on inactive LRU list."},
		driver.MemMapped:       {"Mapped_bytes", "The amount of mapped memory."},
		driver.MemAvailable:    {"MemAvailable_bytes", "The amount of available memory."},
		driver.MemFree:         {"MemFree_bytes", "The amount of free memory."},
		driver.MemTotal:        {"MemTotal_bytes", "The amount of memory the instance may use."},
		driver.MemRSS:          {"RSS_bytes", "The amount of anonymous and swap cache memory."},
		driver.MemShmem:        {"Shmem_bytes", "The amount of cached filesystem data that is swap-backed."},
		driver.MemSwap:         {"Swap_bytes", "The amount of used swap memory."},
		driver.MemUnevictable:  {"Unevictable_bytes", "The amount of unevictable memory."},
		driver.MemWriteback:    {"Writeback_bytes", "The amount of memory queued for syncing to disk."},
		driver.MemOOMKills:     {"OOM_kills_total", "The number of out of memory kills."},
	} {
		f := func(w *textWriter, m *driver.Metrics) {
			for _, fig := range m.Memory {
				if fig.Kind == k {
					w.sample0(float64(fig.Value))
				}
			}
		}
		if k == driver.MemOOMKills {
			fs = append(fs, counter("lxd_memory_"+mm[0], mm[1], f))
		} else {
			fs = append(fs, gauge("lxd_memory_"+mm[0], mm[1], f))
		}
	}
	net := func(name, help string, v func(driver.NetCounters) int64) family {
		return counter(name, help, func(w *textWriter, m *driver.Metrics) {
			for _, dev := range w.nets {
				w.sample1("device", dev, float64(v(m.Network[dev])))
			}
		})
	}
	fs = append(fs,
		net("lxd_network_receive_bytes_total", "The amount of received bytes on a given interface.", func(n driver.NetCounters) int64 { return n.ReceiveBytes }),
		net("lxd_network_receive_drop_total", "The amount of received dropped bytes on a given interface.", func(n driver.NetCounters) int64 { return n.ReceiveDrop }),
		net("lxd_network_receive_errs_total", "The amount of received errors on a given interface.", func(n driver.NetCounters) int64 { return n.ReceiveErrs }),
		net("lxd_network_receive_packets_total", "The amount of received packets on a given interface.", func(n driver.NetCounters) int64 { return n.ReceivePackets }),
		net("lxd_network_transmit_bytes_total", "The amount of transmitted bytes on a given interface.", func(n driver.NetCounters) int64 { return n.TransmitBytes }),
		net("lxd_network_transmit_drop_total", "The amount of transmitted dropped bytes on a given interface.", func(n driver.NetCounters) int64 { return n.TransmitDrop }),
		net("lxd_network_transmit_errs_total", "The amount of transmitted errors on a given interface.", func(n driver.NetCounters) int64 { return n.TransmitErrs }),
		net("lxd_network_transmit_packets_total", "The amount of transmitted packets on a given interface.", func(n driver.NetCounters) int64 { return n.TransmitPackets }),
	)
	slices.SortFunc(fs, func(a, b family) int { return strings.Compare(a.name, b.name) })
	return fs
}()

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// textWriter appends one family's samples to buf. inst is the current
// instance's labels, escaped ("name=\"c1\",project=...").
type textWriter struct {
	buf     []byte
	name    string // the family being written
	help    string
	typ     string
	started bool // the family's HELP and TYPE are written
	// inst, disks and nets are the current instance's labels (escaped:
	// `name="c1",project=...`) and its disk and interface names, sorted.
	inst        string
	disks, nets []string
}

// header writes the family's HELP and TYPE before its first sample, so a
// family no instance has is left out (as client_golang does).
func (w *textWriter) header() {
	if w.started {
		return
	}
	w.started = true
	w.buf = append(w.buf, "# HELP "...)
	w.buf = append(w.buf, w.name...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, w.help...)
	w.buf = append(w.buf, "\n# TYPE "...)
	w.buf = append(w.buf, w.name...)
	w.buf = append(w.buf, ' ')
	w.buf = append(w.buf, w.typ...)
	w.buf = append(w.buf, '\n')
}

func (w *textWriter) begin() {
	w.header()
	w.buf = append(w.buf, w.name...)
	w.buf = append(w.buf, '{')
}

func (w *textWriter) label(k, v string) {
	w.buf = append(w.buf, k...)
	w.buf = append(w.buf, `="`...)
	w.buf = appendEscaped(w.buf, v)
	w.buf = append(w.buf, `",`...)
}

func (w *textWriter) end(v float64) {
	w.buf = append(w.buf, w.inst...)
	w.buf = append(w.buf, "} "...)
	w.buf = strconv.AppendFloat(w.buf, v, 'g', -1, 64)
	w.buf = append(w.buf, '\n')
}

func (w *textWriter) sample0(v float64) {
	w.begin()
	w.end(v)
}

func (w *textWriter) sample1(k1, v1 string, v float64) {
	w.begin()
	w.label(k1, v1)
	w.end(v)
}

func (w *textWriter) sample2(k1, v1, k2, v2 string, v float64) {
	w.begin()
	w.label(k1, v1)
	w.label(k2, v2)
	w.end(v)
}

func (w *textWriter) sample3(k1, v1, k2, v2, k3, v3 string, v float64) {
	w.begin()
	w.label(k1, v1)
	w.label(k2, v2)
	w.label(k3, v3)
	w.end(v)
}

// appendEscaped escapes a label value as the text format wants: backslash,
// double quote and newline.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// instanceLabels are one instance's labels, escaped, for textWriter.inst.
func instanceLabels(r *reading) string {
	b := make([]byte, 0, 64)
	b = append(b, `name="`...)
	b = appendEscaped(b, r.in.Name)
	b = append(b, `",project="`...)
	b = appendEscaped(b, r.in.Project)
	b = append(b, `",type="`...)
	b = appendEscaped(b, string(r.in.Type))
	b = append(b, '"')
	return string(b)
}

// appendInstances appends every instance family's samples for rs to buf.
func appendInstances(buf []byte, rs []reading) []byte {
	type inst struct {
		labels      string
		disks, nets []string
	}
	insts := make([]inst, len(rs))
	for i := range rs {
		insts[i] = inst{instanceLabels(&rs[i]), sortedKeys(rs[i].m.Disk), sortedKeys(rs[i].m.Network)}
	}
	w := textWriter{buf: buf}
	for _, f := range families {
		w.name, w.help, w.typ, w.started = f.name, f.help, f.typ, false
		for i := range rs {
			w.inst, w.disks, w.nets = insts[i].labels, insts[i].disks, insts[i].nets
			f.samples(&w, &rs[i].m)
		}
	}
	return w.buf
}
