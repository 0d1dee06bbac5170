package qemu

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

// meta is what a restarted daemon needs to know of a running VM that its
// QEMU command line does not say.
type meta struct {
	StopSignal int  `json:"stop_signal"`
	WithAgent  bool `json:"with_agent"`
	// NICSlots is the NIC layout (nic.go): the NIC on each root port.
	NICSlots []string `json:"nic_slots,omitempty"`
	// Disks is the disk layout (disks.go); nil for a VM started before
	// there was one.
	Disks *diskLayout `json:"disks,omitempty"`
	// Shares is how many 9p shares the VM has (they block Standby).
	Shares int `json:"shares,omitempty"`
	// Memory, Hotplug and CPUs are the machine's size, Taps its NICs'
	// host ends by NIC name (VMStats); zero for a VM started before they
	// were recorded.
	Memory  int64             `json:"memory,omitempty"`
	Hotplug int64             `json:"hotplug,omitempty"`
	CPUs    int               `json:"cpus,omitempty"`
	Taps    map[string]string `json:"taps,omitempty"`
}

// saveMeta writes v's meta; the NIC and disk layouts change with hotplug.
func (v *vm) saveMeta() error {
	v.mu.Lock()
	m := meta{StopSignal: int(v.stopSignal), WithAgent: v.withAgent, NICSlots: append([]string(nil), v.slots...), Shares: v.shares,
		Memory: v.mem, Hotplug: v.hotplug, CPUs: v.cpus, Taps: maps.Clone(v.taps)}
	if v.disks != nil {
		m.Disks = v.disks.clone()
	}
	v.mu.Unlock()
	return writeMeta(v.dir, m)
}

func writeMeta(dir string, m meta) error {
	b, _ := json.Marshal(m)
	return os.WriteFile(filepath.Join(dir, fileMeta), b, 0o600)
}

func readMeta(dir string) meta {
	var m meta
	if b, err := os.ReadFile(filepath.Join(dir, fileMeta)); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// Recover finds the QEMU processes that outlived the daemon (their pid
// files), reconnects to their QMP and agent sockets and watches them again.
// A pid file whose process is gone, or is not this instance's QEMU, is
// cleaned up.
func (d *Driver) Recover(ctx context.Context) (map[string]driver.State, error) {
	d.sweepLegacyCache()
	live := map[string]driver.State{}
	ents, err := os.ReadDir(d.cfg.Dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		id, dir := e.Name(), filepath.Join(d.cfg.Dir, e.Name())
		b, err := os.ReadFile(filepath.Join(dir, filePid))
		if err != nil {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if pid <= 0 || !procAlive(pid, dir) {
			for _, f := range []string{fileQMP, fileAgent, fileConsoleSock, filePid} {
				_ = os.Remove(filepath.Join(dir, f))
			}
			cgroupFor(d.cfg.CgroupParent, id).remove()
			continue
		}
		v, err := d.adopt(ctx, id, dir, pid)
		if err != nil {
			d.log.Error("recover vm: killing it", "id", id, "pid", pid, "err", err)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			continue
		}
		st, _ := d.State(ctx, id)
		live[id] = st
		d.log.Info("vm recovered", "id", id, "pid", v.pid, "status", st.Status)
	}
	return live, nil
}

func (d *Driver) adopt(ctx context.Context, id, dir string, pid int) (*vm, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, err
	}
	m := readMeta(dir)
	v := &vm{
		id: id, dir: dir, pid: pid, cg: cgroupFor(d.cfg.CgroupParent, id),
		stopSignal: syscall.Signal(m.StopSignal), withAgent: m.WithAgent, slots: m.NICSlots,
		disks: m.Disks, shares: m.Shares, mem: m.Memory, hotplug: m.Hotplug, cpus: m.CPUs, taps: m.Taps,
		changed: make(chan struct{}), done: make(chan struct{}),
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	qm, err := dialMonitor(qctx, filepath.Join(dir, fileQMP))
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	mon, err := newMonitor(qm, v.onEvent)
	if err != nil {
		qm.Disconnect()
		unix.Close(fd)
		return nil, err
	}
	v.mon = mon
	st, err := mon.queryStatus()
	if err != nil {
		mon.close()
		unix.Close(fd)
		return nil, err
	}
	s, reason := stateOfQueryStatus(st)
	v.setState(s, reason)
	if v.withAgent {
		ac, err := dialAgent(filepath.Join(dir, fileAgent), v.setWorkloadExit)
		if err != nil {
			mon.close()
			unix.Close(fd)
			return nil, err
		}
		v.agent = ac
	}
	d.mu.Lock()
	d.vms[id] = v
	d.mu.Unlock()
	go d.watchPidfd(v, fd)
	return v, nil
}

// legacyCache is where the driver kept, before storage pools, the base
// disks it built of image trees and the cloud images it pinned: the
// backing files of the qcow2 roots it made. Storage adopts such a root
// by moving it onto a pool (storage.AdoptRoot), and the moved overlay
// still names its backing file here by absolute path, so those files stay
// for as long as the roots they back. Nothing is written here any more.
const legacyCache = ".cache"

// sweepLegacyCache removes what a daemon killed in the middle of a base
// disk build or an image pin left in the legacy cache (*.build, *.tmp: no
// root names them), then the directory itself if nothing else is there.
func (d *Driver) sweepLegacyCache() {
	dir := filepath.Join(d.cfg.Dir, legacyCache)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".build") || strings.HasSuffix(n, ".tmp") {
			if err := os.Remove(filepath.Join(dir, n)); err != nil {
				d.log.Warn("remove a partial legacy base disk", "file", n, "err", err)
			}
		}
	}
	// Fails while backing files remain: they are adopted roots' bases.
	_ = os.Remove(dir)
}
