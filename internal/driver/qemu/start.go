package qemu

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/internal/cloexec"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/revert"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// cleanupTimeout bounds clean-up after a failed start.
const cleanupTimeout = 30 * time.Second

// Start boots the VM and returns QEMU's pid once the guest agent is ready
// (at once for a VM booted by firmware, which has none). A VM with a
// standby state file is restored from it instead of booted (and the file
// deleted), as is one whose spec names a checkpoint (RestoreState, kept).
func (d *Driver) Start(ctx context.Context, spec driver.Spec) (int, error) {
	dir, err := d.instanceDir(spec.ID)
	if err != nil {
		return 0, err
	}
	if d.get(spec.ID) != nil {
		return 0, errdefs.Conflict("VM %s is already running", spec.ID)
	}
	if spec.Root.Disk == nil {
		return 0, errdefs.Invalid("a virtual machine needs a root disk")
	}
	root, byFirmware := *spec.Root.Disk, spec.Root.Firmware
	if root.Name == "" {
		root.Name = rootName
	}
	if root.CDROM || root.Bus == busUSB {
		return 0, errdefs.Invalid("the root disk cannot be a CD-ROM or on USB")
	}
	extra := make([]driver.Disk, len(spec.Disks))
	for i, dk := range spec.Disks {
		extra[i] = normalDisk(dk)
	}
	spec.Disks = extra
	mem, cpus := spec.Limits.MemoryBytes, max(spec.Limits.CPUCount, 1)
	if mem == 0 {
		mem = DefaultMemory
	}
	// A checkpoint is read first: a bad one leaves nothing behind.
	var rs restoreFrom
	if spec.RestoreState != "" {
		f, hdr, err := openState(spec.RestoreState)
		if err != nil {
			return 0, err
		}
		defer f.Close() // QEMU has its own copy
		switch {
		case hdr.Firmware != byFirmware:
			return 0, errdefs.Invalid("restore state %s: saved from a VM booted %s, and this one boots %s", spec.RestoreState, bootKind(hdr.Firmware), bootKind(byFirmware))
		case !byFirmware && hdr.Machine != d.cfg.Machine:
			return 0, errdefs.Invalid("restore state %s: saved from a %s machine, and VMs here are %s", spec.RestoreState, hdr.Machine, d.cfg.Machine)
		case spec.Forked && byFirmware:
			return 0, errdefs.NotImplemented("a forked VM learns its new identity from hangar's guest agent, and a VM booted by firmware has none")
		}
		// QEMU loads RAM only into a machine of the saved size.
		mem, cpus = hdr.Memory, hdr.CPUs
		rs = restoreFrom{path: spec.RestoreState, file: f, hdr: &hdr}
	} else if spec.Forked {
		return 0, errdefs.Invalid("a forked VM starts from a saved state: RestoreState is empty")
	}
	if mem < MinMemory {
		return 0, errdefs.Invalid("limits.memory: %d MiB is below the %d MiB a VM needs", mem>>20, MinMemory>>20)
	}
	hotplug := spec.Limits.MemoryHotplug
	if hotplug < 0 {
		return 0, errdefs.Invalid("limits.memory.hotplug: %d is negative", hotplug)
	}
	if hotplug > 0 && !byFirmware {
		if err := d.MemoryHotplug(); err != nil {
			return 0, err
		}
	}
	if err := checkNICs(spec.NICs); err != nil {
		return 0, err
	}
	if err := checkDisks(root, spec.Disks); err != nil {
		return 0, err
	}
	if err := checkMounts(spec.Mounts); err != nil {
		return 0, err
	}
	if err := checkDisplays(spec.Displays); err != nil {
		return 0, err
	}
	displays, err := withPorts(spec.Displays)
	if err != nil {
		return 0, err
	}
	macvtaps := map[string]bool{}
	for _, n := range spec.NICs {
		mv, err := checkTap(n)
		if err != nil {
			return 0, err
		}
		macvtaps[n.Name] = mv
	}
	tapFiles, tapFDs, err := openMacvtaps(spec.NICs, macvtaps)
	if err != nil {
		return 0, err
	}
	// QEMU has its copies once launched; ours go either way.
	defer closeAll(tapFiles)
	var fw firmware
	if byFirmware {
		if fw, err = firmwareFor(d.firmwareDir(), spec.SecureBoot); err != nil {
			return 0, err
		}
	}
	paths, err := d.tools()
	if err != nil {
		return 0, err
	}
	undo, err := prepareDir(dir)
	if err != nil {
		return 0, err
	}
	r := revert.New()
	defer r.Fail()
	r.Add(undo)

	disks := append([]driver.Disk{root}, spec.Disks...)
	blockDevs := make([]bool, len(disks))
	for i, dk := range disks {
		if blockDevs[i], err = checkDiskFile(dk); err != nil {
			return 0, err
		}
	}
	var saved meta
	if rs.hdr != nil {
		saved = meta{NICSlots: rs.hdr.NICSlots, Disks: rs.hdr.Disks}
	} else if p := standbyState(dir); p != "" {
		f, hdr, found, err := openStateFile(p)
		if err != nil {
			return 0, fmt.Errorf("standby state: %w", err)
		}
		defer f.Close()
		rs = restoreFrom{path: p, file: f, owned: true}
		saved = readMeta(dir)
		if found {
			// QEMU loads RAM only into a machine of the saved size,
			// whatever the config says now.
			mem, cpus = hdr.Memory, hdr.CPUs
		}
	}
	incoming := ""
	if rs.file != nil {
		incoming = "fd:3" // rs.file, QEMU's first extra descriptor (launch)
	}
	slots := nicLayout(spec.NICs, saved.NICSlots)
	layout := layoutFor(root, spec.Disks, saved.Disks)
	var args []string
	if byFirmware {
		nvram := filepath.Join(dir, fw.NVRAM)
		if _, err := os.Stat(nvram); err != nil {
			if err := copyFile(fw.Vars, nvram, 0o600); err != nil {
				return 0, fmt.Errorf("firmware variables: %w", err)
			}
		}
		args = d.efiArgs(dir, fw, cpus, mem, incoming)
	} else {
		k, base, mods, err := d.baseInitrd()
		if err != nil {
			return 0, err
		}
		cfg := vmagent.Config{
			Hostname: spec.Hostname, Args: spec.Args, Env: spec.Env, Cwd: spec.Cwd,
			UID: spec.UID, GID: spec.GID, RootFSType: "ext4", Modules: mods,
			NICs: agentNICs(spec.NICs), Mounts: agentMounts(spec.Mounts),
			SkipAgent: spec.SkipAgent, EgressCA: string(spec.EgressCA),
		}
		for _, p := range layout.Disks {
			if p.Name == root.Name {
				cfg.Root = ptr(agentDisk(p))
			} else if p.CDROM || p.Bus == busUSB {
				// The guest kernel's initramfs has no CD-ROM or USB
				// drivers: the agent must not wait for them.
				continue
			} else {
				cfg.Disks = append(cfg.Disks, agentDisk(p))
			}
		}
		conf, err := configInitramfs(cfg)
		if err != nil {
			return 0, err
		}
		if err := writeFiles(filepath.Join(dir, fileInitrd), base, conf); err != nil {
			return 0, fmt.Errorf("write initramfs: %w", err)
		}
		args = d.qemuArgs(dir, k, cpus, mem, incoming)
	}
	args = withMemoryHotplug(args, mem, hotplug)
	args = append(args, nicArgs(spec.NICs, slots, vhostNet(d.kvm), tapFDs)...)
	args = append(args, diskArgs(disks, blockDevs, layout, !byFirmware && d.cfg.Machine == "microvm", byFirmware)...)
	args = append(args, shareArgs(spec.Mounts)...)
	args = append(args, displayArgs(displays, byFirmware || d.cfg.Machine == "q35")...)
	if spec.TPM != nil {
		stopSWTPM, err := d.startTPM(ctx, dir, *spec.TPM)
		if err != nil {
			return 0, err
		}
		r.Add(stopSWTPM)
		args = append(args, tpmArgs(dir)...)
	}
	v, err := d.boot(ctx, spec, dir, paths.qemu, args, mem, rs, bootLayout{
		withAgent: !byFirmware, slots: slots, disks: layout, shares: len(spec.Mounts),
		cpus: cpus, hotplug: hotplug, taps: tapsOf(spec.NICs), displays: displays, tapFiles: tapFiles,
	})
	if err != nil {
		return 0, err
	}
	r.Success()
	return v.pid, nil
}

func ptr[T any](v T) *T { return &v }

func bootKind(firmware bool) string {
	if firmware {
		return "by UEFI firmware from its disk"
	}
	return "by hangar's kernel and agent"
}

// restoreFrom is the saved state a start restores from: standby's file
// (owned: deleted once loaded, set aside when it fails to) or a
// checkpoint (kept, with its header), open for QEMU to read.
type restoreFrom struct {
	path  string
	file  *os.File
	owned bool
	hdr   *stateHeader
}

// standbyState is the saved state a start restores from, or "" to boot.
func standbyState(dir string) string {
	p := filepath.Join(dir, fileState)
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// bootLayout is what a VM boots with beyond its command line: whether it
// has an agent, and where its NICs and disks are (nic.go, disks.go).
type bootLayout struct {
	withAgent bool
	slots     []string
	disks     *diskLayout
	shares    int
	// cpus, hotplug and taps are the machine's size and NICs' host ends
	// (VMStats).
	cpus    int
	hotplug int64
	taps    map[string]string
	// displays get their passwords once QEMU answers.
	displays []driver.Display
	// tapFiles are the NICs' macvtaps, QEMU's descriptors 4 and up.
	tapFiles []*os.File
}

// tapsOf maps NIC names to their host ends.
func tapsOf(nics []driver.NIC) map[string]string {
	m := make(map[string]string, len(nics))
	for _, n := range nics {
		m[n.Name] = n.HostName
	}
	return m
}

// boot runs QEMU with args for spec, records what a recovering daemon
// needs (meta), and connects to QMP (and the agent, with one). A state
// that fails to restore is set aside, so the next start boots instead of
// failing again.
func (d *Driver) boot(ctx context.Context, spec driver.Spec, dir, qemu string, args []string, mem int64, rs restoreFrom, bl bootLayout) (*vm, error) {
	began := time.Now()
	var src *stateSource
	var incoming *os.File
	if rs.file != nil {
		var err error
		if src, err = newStateSource(rs.file); err != nil {
			if rs.owned {
				_ = os.Rename(rs.path, rs.path+".failed")
			}
			return nil, fmt.Errorf("restore from %s: %w", rs.path, err)
		}
		incoming = src.qemuEnd
	}
	v, err := d.launch(ctx, spec.ID, dir, qemu, args, spec.Limits, mem, incoming, bl.tapFiles)
	if src != nil {
		src.closeOurs()
	}
	if err != nil {
		if src != nil {
			_ = src.close()
		}
		return nil, err
	}
	v.stopSignal = spec.StopSignal
	withAgent := bl.withAgent
	v.withAgent = withAgent
	v.slots = bl.slots
	v.disks = bl.disks
	v.shares = bl.shares
	v.mem, v.cpus, v.hotplug, v.taps = mem, bl.cpus, bl.hotplug, bl.taps
	if err := v.saveMeta(); err != nil {
		d.abort(v)
		return nil, err
	}
	if err := setDisplayPasswords(v, bl.displays); err != nil {
		d.abort(v)
		return nil, err
	}
	restoring := rs.file != nil
	err = d.connect(ctx, v, restoring)
	if src != nil {
		// QEMU has loaded the state (or failed to): the decompressor
		// is done.
		// A stream QEMU could not load fails connect; this error
		// says why, when the file was the cause.
		if serr := src.close(); serr != nil {
			d.log.Warn("restore: reading the saved state", "id", spec.ID, "err", serr)
			if err != nil {
				err = fmt.Errorf("%w (%v)", err, serr)
			}
		}
	}
	if err != nil {
		d.abort(v)
		switch {
		case rs.owned:
			_ = os.Rename(rs.path, rs.path+".failed")
			return nil, fmt.Errorf("restore from standby failed (the saved state is set aside as %s.failed; start again to boot afresh): %w", fileState, err)
		case restoring:
			return nil, fmt.Errorf("restore from %s: %w", rs.path, err)
		}
		return nil, err
	}
	if rs.owned {
		// The state is in the running VM now; a later start must boot.
		_ = os.Remove(rs.path)
	}
	ready := time.Since(began)
	if spec.Forked && rs.hdr != nil {
		if err := d.reidentify(ctx, v, spec, *rs.hdr); err != nil {
			d.abort(v)
			return nil, err
		}
	}
	d.log.Info("vm started", "id", spec.ID, "pid", v.pid, "agent", withAgent, "restored", restoring, "forked", spec.Forked,
		"agent_ready", ready, "total", time.Since(began))
	return v, nil
}

type toolPaths struct{ qemu string }

func (d *Driver) tools() (toolPaths, error) {
	var p toolPaths
	var err error
	if p.qemu, err = tool(d.cfg.QEMU, "qemu-system-x86_64"); err != nil {
		return p, err
	}
	return p, nil
}

// baseInitrd returns the kernel and the shared initramfs, built once.
func (d *Driver) baseInitrd() (kernel, []byte, []string, error) {
	d.initrdMu.Lock()
	defer d.initrdMu.Unlock()
	if d.initrd != nil {
		return d.kernel, d.initrd, d.modules, nil
	}
	k, err := findKernel(d.cfg.Kernel, d.cfg.ModulesDir)
	if err != nil {
		return kernel{}, nil, nil, err
	}
	agentPath := d.cfg.Agent
	if agentPath == "" {
		return kernel{}, nil, nil, errdefs.Invalid("no guest agent: build cmd/hangar-agent (CGO_ENABLED=0) and pass --vm-agent")
	}
	agent, err := os.ReadFile(agentPath)
	if err != nil {
		return kernel{}, nil, nil, fmt.Errorf("guest agent: %w", err)
	}
	img, mods, err := baseInitramfs(k, agent)
	if err != nil {
		return kernel{}, nil, nil, err
	}
	d.kernel, d.initrd, d.modules = k, img, mods
	return k, img, mods, nil
}

func writeFiles(path string, parts ...[]byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := f.Write(p); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// tscKHz is the host TSC's frequency, which the guest is told so that it
// does not calibrate: calibration under TCG is slow and on microvm (no
// PIT) may never end.
func tscKHz() int {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "cpu MHz"); ok {
			v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			mhz, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return int(mhz * 1000)
			}
		}
	}
	return 0
}

// qemuArgs is the command line of a VM booted from kernel and initramfs,
// without its NICs, disks and shares; incoming, when set, is where QEMU
// loads a saved state from (-incoming).
func (d *Driver) qemuArgs(dir string, k kernel, cpus int, mem int64, incoming string) []string {
	accel := "tcg,thread=multi,tb-size=64"
	// Under TCG a "rep movsb" is emulated an iteration at a time, so
	// without ERMS and FSRM the guest's kernel and libc copy with their
	// unrolled loops instead: 2.5x the app log's throughput (every
	// write(2) is a copy_from_user; bench/ISSUE15-LOGS.md). A restored
	// state from before keeps working: the guest patched its copies at
	// boot, and the instruction is there either way.
	cpu := "max,erms=off,fsrm=off"
	if d.kvm {
		accel, cpu = "kvm", "host"
	}
	// panic=-1 reboot=t: a panicking guest resets at once by a triple
	// fault (microvm has no keyboard controller to reset through), and
	// QEMU, run with -no-reboot, ends: the driver reports a crash.
	cmdline := "console=ttyS0 panic=-1 reboot=t quiet loglevel=3 8250.nr_uarts=1"
	machine, serial := d.cfg.Machine, "virtio-serial-pci"
	if machine == "microvm" {
		// The RTC stays: without it the kernel spends seconds of TCG
		// time timing out on reads of a CMOS clock that is not there.
		// pcie=on: the NICs' root ports (nic.go), whose hotplug the
		// kernel must take itself.
		machine = "microvm,pit=off,pic=off,rtc=on,isa-serial=on,pcie=on"
		cmdline += " pcie_ports=native"
		serial = "virtio-serial-device"
		if khz := tscKHz(); khz > 0 && !d.kvm {
			cmdline += " tsc_early_khz=" + strconv.Itoa(khz)
		}
	}
	args := []string{
		"-name", "hangar-" + filepath.Base(dir),
		"-machine", machine, "-accel", accel, "-cpu", cpu,
		"-smp", strconv.Itoa(cpus), "-m", strconv.FormatInt(mem>>20, 10) + "M",
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-kernel", k.Path, "-initrd", filepath.Join(dir, fileInitrd), "-append", cmdline,
		"-chardev", consoleChardev(dir),
		"-serial", "chardev:console",
		"-device", serial,
		"-chardev", "socket,id=agent,server=on,wait=off,path=" + filepath.Join(dir, fileAgent),
		"-device", "virtserialport,chardev=agent,name=" + vmagent.PortName,
		// The workload's stdout and stderr (vmagent.LogPortName), appended
		// to the console log beside the serial console's own output.
		"-chardev", "file,id=applog,append=on,path=" + filepath.Join(dir, fileConsole),
		"-device", "virtserialport,chardev=applog,name=" + vmagent.LogPortName,
		"-qmp", "unix:" + filepath.Join(dir, fileQMP) + ",server=on,wait=off",
		"-pidfile", filepath.Join(dir, filePid),
	}
	if incoming != "" {
		args = append(args, "-incoming", incoming)
	}
	return args
}

// launch starts QEMU in its own session and cgroup, detached from the
// daemon: its output goes to qemu.log, so it outlives a daemon killed with
// SIGKILL. It returns once QMP answers. incoming, when not nil, is a
// saved state QEMU gets as descriptor 3; taps are macvtaps it gets as 4
// and up.
func (d *Driver) launch(ctx context.Context, id, dir, qemu string, args []string, limits driver.Limits, mem int64, incoming *os.File, taps []*os.File) (*vm, error) {
	cg := cgroupFor(d.cfg.CgroupParent, id)
	if err := cg.create(); err != nil {
		return nil, err
	}
	if err := cg.setLimits(limits, mem); err != nil {
		cg.remove()
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, fileLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		cg.remove()
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(qemu, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if incoming != nil || len(taps) > 0 {
		// A nil entry leaves descriptor 3 closed.
		cmd.ExtraFiles = append([]*os.File{incoming}, taps...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if cg.v2 {
		if f, err := cg.open(); err == nil {
			defer f.Close()
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(f.Fd())
		}
	}
	// QEMU outlives the daemon: a descriptor of the daemon's without
	// close-on-exec (hangard marks its inherited ones at start; this
	// covers any made since) would stay open in it for the VM's life.
	// The guest cannot reach QEMU's descriptors, only QEMU can.
	if err := cloexec.From(3); err != nil {
		cg.remove()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	if err := cmd.Start(); err != nil {
		cg.remove()
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	if !cg.v2 {
		if err := cg.add(cmd.Process.Pid); err != nil {
			d.log.Warn("qemu cgroup", "id", id, "err", err)
		}
	}
	v := &vm{id: id, dir: dir, pid: cmd.Process.Pid, cg: cg, mem: mem, changed: make(chan struct{}), done: make(chan struct{})}
	d.mu.Lock()
	d.vms[id] = v
	d.mu.Unlock()
	exited := make(chan struct{})
	go func() {
		err := cmd.Wait()
		close(exited)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
		d.ended(v, code, true)
	}()

	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	go func() {
		select {
		case <-exited:
			cancel()
		case <-qctx.Done():
		}
	}()
	m, err := dialMonitor(qctx, filepath.Join(dir, fileQMP))
	if err != nil {
		d.abort(v)
		if tail := logTail(filepath.Join(dir, fileLog), 2000); tail != "" {
			return nil, fmt.Errorf("qemu failed: %s", tail)
		}
		return nil, err
	}
	mon, err := newMonitor(m, v.onEvent)
	if err != nil {
		m.Disconnect()
		d.abort(v)
		return nil, err
	}
	v.mu.Lock()
	v.mon = mon
	v.mu.Unlock()
	return v, nil
}

// connect reads QEMU's run state, then reaches the guest agent and waits
// for it (a restored VM's agent is up already: it answers at once).
func (d *Driver) connect(ctx context.Context, v *vm, restoring bool) error {
	mon := v.monitor()
	if restoring {
		began := time.Now()
		if err := d.waitIncoming(ctx, v); err != nil {
			return err
		}
		d.log.Debug("vm state loaded", "id", v.id, "in", time.Since(began))
		if _, err := mon.run("cont", nil); err != nil {
			return err
		}
	}
	st, err := mon.queryStatus()
	if err != nil {
		return err
	}
	s, reason := stateOfQueryStatus(st)
	if s == statePaused && !restoring {
		s = stateBooting
	}
	v.setState(s, reason)
	if !v.withAgent {
		return nil
	}
	ac, err := dialAgent(filepath.Join(v.dir, fileAgent), v.setWorkloadExit)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.agent = ac
	v.mu.Unlock()
	bctx, cancel := context.WithTimeout(ctx, d.cfg.BootTimeout)
	defer cancel()
	go func() {
		select {
		case <-v.done:
			cancel()
		case <-bctx.Done():
		}
	}()
	if err := ac.waitReady(bctx); err != nil {
		tail := logTail(filepath.Join(v.dir, fileConsole), 3000)
		return fmt.Errorf("guest agent not ready: %w; console: %s", err, tail)
	}
	v.setState(stateRunning, "")
	return nil
}

// abort ends a VM whose start failed and waits until it is cleaned up.
func (d *Driver) abort(v *vm) {
	v.mu.Lock()
	v.stopping = true
	mon := v.mon
	v.mu.Unlock()
	if mon != nil {
		_, _ = mon.run("quit", nil)
	}
	select {
	case <-v.done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(v.pid, syscall.SIGKILL)
		select {
		case <-v.done:
		case <-time.After(cleanupTimeout):
			d.log.Error("qemu did not end", "id", v.id, "pid", v.pid)
		}
	}
}

// prepareDir makes an instance's directory and clears the sockets and
// pidfile a previous run left there. undo removes the directory if this
// call made it: a failed first start leaves nothing.
func prepareDir(dir string) (undo func(), err error) {
	_, statErr := os.Stat(dir)
	fresh := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("instance dir: %w", err)
	}
	for _, f := range []string{fileQMP, fileAgent, fileConsoleSock, filePid} {
		_ = os.Remove(filepath.Join(dir, f))
	}
	return func() {
		if fresh {
			os.RemoveAll(dir)
		}
	}, nil
}
