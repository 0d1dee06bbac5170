package container

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

const (
	defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	defaultTerm = "TERM=xterm"
	cpuPeriod   = 100000 // µs, the CFS default
	ttyGID      = 5      // the tty group of devpts
)

// capNames are the capabilities by number (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// privilegedDrop are dropped from privileged containers, as LXD does: they
// reach the host kernel, clock or security modules directly.
var privilegedDrop = map[string]bool{
	"CAP_SYS_MODULE":   true,
	"CAP_SYS_TIME":     true,
	"CAP_MAC_ADMIN":    true,
	"CAP_MAC_OVERRIDE": true,
	"CAP_SYS_RAWIO":    true,
}

// deniedSyscalls fail with EPERM in every container: loading kernel code or
// a new kernel, and open_by_handle_at (which escapes mount namespaces).
var deniedSyscalls = []string{
	"kexec_load", "kexec_file_load", "open_by_handle_at",
	"init_module", "finit_module", "delete_module",
}

// buildSpec translates a driver.Spec into the OCI runtime spec runc runs.
// bounding is the daemon's own capability bounding set, which caps what the
// container can be given.
func buildSpec(s driver.Spec, cgroupsPath string, bounding uint64) *specs.Spec {
	userns := s.IDMap != nil
	cwd := s.Cwd
	if cwd == "" {
		cwd = "/"
	}
	hostname := s.Hostname
	if hostname == "" {
		hostname = s.ID
	}
	caps := capabilities(userns, bounding)
	spec := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: s.UID, GID: s.GID},
			Args:     append([]string(nil), s.Args...),
			Env:      withDefaultEnv(s.Env),
			Cwd:      cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps,
				Effective: caps,
				Permitted: caps,
			},
			NoNewPrivileges: false,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: false},
		Hostname: hostname,
		Mounts:   mounts(s.IDMap, s.NetNS != "" && s.UserNS == ""),
		Linux: &specs.Linux{
			CgroupsPath: cgroupsPath,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.NetworkNamespace, Path: s.NetNS},
			},
			Devices:   defaultDevices(),
			Resources: resources(s.Limits),
			Seccomp:   seccomp(),
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
				"/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
	if resolv := resolvConf(s.NICs); resolv != "" {
		// A file of the instance's directory (start.go writes it), bound
		// over the image's: an app image with no DHCP client still
		// resolves through its network's DNS server, as podman does.
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind",
			Source: resolvConfFile, Options: []string{"rbind", "rw"}})
	}
	if userns {
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: s.IDMap.HostID, Size: s.IDMap.Size}}
		spec.Linux.UIDMappings = m
		spec.Linux.GIDMappings = m
		// The user namespace is created first by runc, so it owns the others.
		spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: s.UserNS})
	}
	return spec
}

// withDefaultEnv adds PATH and TERM when env lacks them.
func withDefaultEnv(env []string) []string {
	out := append([]string(nil), env...)
	var hasPath, hasTerm bool
	for _, kv := range env {
		hasPath = hasPath || strings.HasPrefix(kv, "PATH=")
		hasTerm = hasTerm || strings.HasPrefix(kv, "TERM=")
	}
	if !hasPath {
		out = append(out, defaultPath)
	}
	if !hasTerm {
		out = append(out, defaultTerm)
	}
	return out
}

// capabilities returns the capability set of PID 1. In a user namespace
// every capability is relative to that namespace, so all are granted; a
// privileged container loses the few that act on the host as a whole.
// Capabilities outside bounding (which also excludes those the kernel does
// not know) are left out.
func capabilities(userns bool, bounding uint64) []string {
	var out []string
	for n, name := range capNames {
		if bounding&(1<<n) == 0 {
			continue
		}
		if !userns && privilegedDrop[name] {
			continue
		}
		out = append(out, name)
	}
	return out
}

// mounts are runc's default spec mounts. In a user namespace, devpts's
// gid=5 (tty) names the container's gid 5, which works (checked: it shows as
// gid=HostID+5 on the host) as long as the map covers it; the kernel refuses
// an unmapped gid, so a tiny map gets no gid option. sysfs mounts in a user
// namespace only when the container's network namespace is owned by that
// user namespace: one it joins (made by the network layer, owned by the
// host's) gets the host's /sys bound read-only instead, as podman does.
func mounts(m *driver.IDMap, joinedNetNS bool) []specs.Mount {
	sys := specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}
	if m != nil && joinedNetNS {
		sys = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
	}
	devpts := []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
	if m == nil || m.Size > ttyGID {
		devpts = append(devpts, "gid="+strconv.Itoa(ttyGID))
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: devpts},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		sys,
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// Standard device numbers.
const (
	memMajor  = 1 // null 3, zero 5, full 7, random 8, urandom 9
	ttyMajor  = 5 // tty 0, console 1, ptmx 2
	ptsMajor  = 136
	miscMajor = 10 // tun 200
)

func i64(v int64) *int64 { return &v }

// defaultDevices are the nodes every container gets in its /dev.
func defaultDevices() []specs.LinuxDevice {
	mode := os.FileMode(0o666)
	zero := uint32(0)
	dev := func(path string, major, minor int64) specs.LinuxDevice {
		return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &zero, GID: &zero}
	}
	return []specs.LinuxDevice{
		dev("/dev/null", memMajor, 3),
		dev("/dev/zero", memMajor, 5),
		dev("/dev/full", memMajor, 7),
		dev("/dev/random", memMajor, 8),
		dev("/dev/urandom", memMajor, 9),
		dev("/dev/tty", ttyMajor, 0),
	}
}

// deviceRules deny every device but the standard ones (the default nodes,
// ptys and tun), and allow mknod of any so images unpack.
func deviceRules() []specs.LinuxDeviceCgroup {
	allow := func(typ string, major, minor *int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: major, Minor: minor, Access: access}
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		allow("c", nil, nil, "m"),
		allow("b", nil, nil, "m"),
		allow("c", i64(memMajor), i64(3), "rwm"),
		allow("c", i64(memMajor), i64(5), "rwm"),
		allow("c", i64(memMajor), i64(7), "rwm"),
		allow("c", i64(memMajor), i64(8), "rwm"),
		allow("c", i64(memMajor), i64(9), "rwm"),
		allow("c", i64(ttyMajor), i64(0), "rwm"),
		allow("c", i64(ttyMajor), i64(2), "rwm"),
		allow("c", i64(ptsMajor), nil, "rwm"),
		allow("c", i64(miscMajor), i64(200), "rwm"),
	}
}

// resources translates the limits. Zero values set nothing.
func resources(l driver.Limits) *specs.LinuxResources {
	r := &specs.LinuxResources{Devices: deviceRules()}
	if l.CPUCount > 0 || l.CPUSet != "" {
		r.CPU = &specs.LinuxCPU{Cpus: l.CPUSet}
		if l.CPUCount > 0 {
			period := uint64(cpuPeriod)
			r.CPU.Quota = i64(int64(l.CPUCount) * cpuPeriod)
			r.CPU.Period = &period
		}
	}
	if l.MemoryBytes > 0 {
		r.Memory = &specs.LinuxMemory{Limit: i64(l.MemoryBytes)}
	}
	if l.Processes > 0 {
		r.Pids = &specs.LinuxPids{Limit: i64(l.Processes)}
	}
	r.BlockIO = blockIO(l)
	return r
}

// seccomp is a small denylist; everything else is allowed. The compat
// architectures are listed so that 32-bit binaries still run and cannot use
// their syscall table to get around the list.
func seccomp() *specs.LinuxSeccomp {
	eperm := uint(unix.EPERM)
	var arches []specs.Arch
	switch runtime.GOARCH {
	case "amd64":
		arches = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "arm64":
		arches = []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	}
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: arches,
		Syscalls: []specs.LinuxSyscall{{
			Names:    deniedSyscalls,
			Action:   specs.ActErrno,
			ErrnoRet: &eperm,
		}},
	}
}

// resolvConfFile is the container's resolv.conf, in its runc bundle
// directory (a bind source relative to the bundle).
const resolvConfFile = "resolv.conf"

// resolvConf is the resolv.conf of an instance with these NICs: their
// nameservers and search domains; "" when they name no nameserver.
func resolvConf(nics []driver.NIC) string {
	var b strings.Builder
	seen := map[string]bool{}
	var search []string
	for _, n := range nics {
		for _, ns := range n.Nameservers {
			if !seen[ns.String()] {
				seen[ns.String()] = true
				b.WriteString("nameserver " + ns.String() + "\n")
			}
		}
		if n.SearchDomain != "" && !seen["search "+n.SearchDomain] {
			seen["search "+n.SearchDomain] = true
			search = append(search, n.SearchDomain)
		}
	}
	if b.Len() == 0 {
		return ""
	}
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	return b.String()
}
