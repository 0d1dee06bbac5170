package qemu

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/digitalocean/go-qemu/qmp"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// Defaults for what the spec does not say.
const (
	DefaultMemory = 512 << 20
	// MinMemory is the least a guest gets: below it the kernel and the
	// unpacked initramfs do not fit and the guest dies at boot.
	MinMemory = 128 << 20
)

// Config configures a Driver.
type Config struct {
	// Dir is the driver's state root (e.g. DATA/vms): one directory per
	// instance, holding its runtime files. Root disks are storage's.
	Dir string
	// QEMU is the emulator, looked up in PATH (qemu-system-x86_64 when
	// empty).
	QEMU string
	// SWTPM is the TPM emulator for tpm devices, looked up in PATH
	// (swtpm when empty).
	SWTPM string
	// Kernel is the guest kernel; empty means the newest /boot/vmlinuz-*.
	// ModulesDir holds its modules; empty means /lib/modules/VERSION.
	Kernel, ModulesDir string
	// Agent is the static hangar-agent binary put in the initramfs as /init.
	Agent string
	// Machine is the QEMU machine type for VMs booted from OCI images:
	// "microvm" (default: no firmware, no PCI; fastest to boot) or "q35".
	Machine string
	// FirmwareDir holds the UEFI firmware that boots disk images (OVMF's
	// *_4M files); empty means DefaultFirmwareDir (efi.go).
	FirmwareDir string
	// CgroupParent is the cgroup every QEMU process's cgroup is created in.
	CgroupParent string
	// OnExit receives every end of a VM.
	OnExit driver.ExitHandler
	// BootTimeout bounds how long Start waits for the guest agent.
	BootTimeout time.Duration
	Logger      *slog.Logger
}

// Driver runs virtual machines with QEMU. It implements driver.Driver.
type Driver struct {
	cfg Config
	log *slog.Logger
	kvm bool

	mu  sync.Mutex
	vms map[string]*vm

	initrdMu sync.Mutex
	initrd   []byte   // the shared initramfs, built at first use
	modules  []string // its module paths, in load order
	kernel   kernel
}

var _ driver.Driver = (*Driver)(nil)

// New returns a Driver. Tools missing on the host are reported when a VM
// starts, not here, so a host without QEMU still runs containers. Its
// errors do not name the driver: the caller does.
func New(cfg Config) (*Driver, error) {
	if cfg.Dir == "" {
		return nil, errdefs.Invalid("empty Dir")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", cfg.Dir, err)
	}
	cfg.Dir = dir
	if strings.ContainsAny(dir, ", ") {
		// Paths go into QEMU's comma-separated options.
		return nil, errdefs.Invalid("Dir %q contains a comma or a space", dir)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Machine == "" {
		cfg.Machine = "microvm"
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/hangar-vm"
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 3 * time.Minute
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	return &Driver{cfg: cfg, log: cfg.Logger, kvm: kvmUsable(), vms: map[string]*vm{}}, nil
}

// kvmUsable reports whether QEMU can use KVM: /dev/kvm alone is not enough,
// since a /dev/kvm served by kvm_pvm (on guests without hardware
// virtualisation) makes QEMU abort at vCPU set-up ("failed to set MSR"). A
// usable KVM needs the CPU's own virtualisation extensions.
func kvmUsable() bool {
	if _, err := os.Stat("/dev/kvm"); err != nil {
		return false
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	return err == nil && cpuVirtFlag(string(info))
}

// cpuVirtFlag reports whether the first flags line of a /proc/cpuinfo
// names vmx (Intel VT-x) or svm (AMD-V).
func cpuVirtFlag(cpuinfo string) bool {
	for _, line := range strings.Split(cpuinfo, "\n") {
		if !strings.HasPrefix(line, "flags") {
			continue
		}
		_, flags, _ := strings.Cut(line, ":")
		for _, f := range strings.Fields(flags) {
			if f == "vmx" || f == "svm" {
				return true
			}
		}
		return false
	}
	return false
}

// tool finds a host program.
func tool(name, def string) (string, error) {
	if name == "" {
		name = def
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (%w): run `bash scripts/quickstart.sh` from a Hangar checkout, the README's first command, to install it", name, err)
	}
	return p, nil
}

// vm is one running QEMU process.
type vm struct {
	id         string
	dir        string
	pid        int
	stopSignal syscall.Signal
	cg         *cgroup
	withAgent  bool
	mem        int64 // guest RAM

	mu      sync.Mutex
	state   vmState
	reason  string        // why the VM crashed
	changed chan struct{} // closed and replaced at every state change
	mon     *monitor
	console consolePort // the console socket, shared by attached clients
	agent   *agentConn
	// stopping is set when the daemon asked the VM to end; an end
	// then is not a crash.
	stopping    bool
	shutdownWhy string // the SHUTDOWN event's reason
	// workloadExit is the agent's report of the workload's end, valid
	// with workloadDone.
	workloadExit vmagent.WorkloadExit
	workloadDone bool
	// cpus and hotplug are the machine's vCPUs and memory headroom
	// (VMStats); taps are its NICs' host ends by NIC name.
	cpus    int
	hotplug int64
	taps    map[string]string
	// net caches the guest's interfaces (network.go).
	net netCache
	// slots is the NIC on each PCIe root port, "" for a free one
	// (nic.go); nicMu serialises NIC plugging.
	slots []string
	nicMu sync.Mutex
	// disks is where the VM's disks are (disks.go); diskMu serialises
	// disk plugging. shares is how many 9p shares it has.
	disks  *diskLayout
	diskMu sync.Mutex
	shares int
	// unplugged receives DEVICE_DELETED events, by device id.
	unplugged map[string]chan struct{}
	// stoppedAt and resumedAt are when the last STOP and RESUME events
	// came: a checkpoint's pause.
	stoppedAt, resumedAt time.Time

	done chan struct{} // closed once QEMU is gone and cleaned up
}

// setWorkloadExit records the agent's report of the workload's end.
func (v *vm) setWorkloadExit(e vmagent.WorkloadExit) {
	v.mu.Lock()
	v.workloadExit, v.workloadDone = e, true
	v.mu.Unlock()
}

func (v *vm) onEvent(ev qmp.Event) {
	v.mu.Lock()
	switch ev.Event {
	case "SHUTDOWN":
		v.shutdownWhy, _ = ev.Data["reason"].(string)
	case "STOP":
		v.stoppedAt = time.Now()
	case "RESUME":
		v.resumedAt = time.Now()
	}
	if ev.Event == "DEVICE_DELETED" {
		dev, _ := ev.Data["device"].(string)
		if ch, ok := v.unplugged[dev]; ok {
			close(ch)
			delete(v.unplugged, dev)
		}
	}
	next, reason := applyEvent(v.state, ev)
	changed := next != v.state
	if changed {
		v.state = next
		if reason != "" {
			v.reason = reason
		}
		close(v.changed)
		v.changed = make(chan struct{})
	}
	v.mu.Unlock()
}

func (v *vm) setState(s vmState, reason string) {
	v.mu.Lock()
	if s != v.state {
		v.state = s
		if reason != "" {
			v.reason = reason
		}
		close(v.changed)
		v.changed = make(chan struct{})
	}
	v.mu.Unlock()
}

// waitState waits until the state satisfies ok, the VM ends, or ctx ends.
func (v *vm) waitState(ctx context.Context, ok func(vmState) bool) error {
	for {
		v.mu.Lock()
		s, ch := v.state, v.changed
		v.mu.Unlock()
		if ok(s) {
			return nil
		}
		select {
		case <-ch:
		case <-v.done:
			return driver.ErrNotRunning
		case <-ctx.Done():
			return fmt.Errorf("VM %s stays %s: %w", v.id, s, ctx.Err())
		}
	}
}

func (v *vm) monitor() *monitor {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.mon
}

func (v *vm) agentConn() *agentConn {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.agent
}

func (d *Driver) get(id string) *vm {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.vms[id]
}

// instanceDir is Dir/<id>; the ID is the service's runtime ID (h<n>).
func (d *Driver) instanceDir(id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/\\,. ") {
		return "", errdefs.Invalid("invalid instance id %q", id)
	}
	return filepath.Join(d.cfg.Dir, id), nil
}

// Files in an instance's directory.
const (
	fileQMP     = "qmp.sock"
	fileAgent   = "agent.sock"
	filePid     = "qemu.pid"
	fileLog     = "qemu.log"
	fileConsole = "console.log"
	fileInitrd  = "initrd.img"
	fileState   = "standby.state"
	fileMeta    = "vm.json"
)

// logTail returns the end of a log file, for error messages.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

// appendLog adds a line of the daemon's to the instance's console log, so
// that a user reading it sees why the VM ended.
func appendLog(path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "\nhangar: %s: %s\n", time.Now().UTC().Format(time.RFC3339), line)
}

// procAlive reports whether pid is a QEMU of this instance (guarding
// against a reused pid).
func procAlive(pid int, dir string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return err == nil && strings.Contains(string(b), dir+"/"+fileQMP)
}
