package daemon

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/api"
)

// Version is hangard's version, set at build time with -ldflags -X.
var Version = "0.1.0-dev"

// host is what the daemon learns about its machine once, at start.
type host struct {
	architecture  string
	memory        int64
	kernel        string
	kernelVersion string
	osName        string
	osVersion     string
	hostname      string
	runcVersion   string
	// qemuVersion is "" when QEMU is not installed (no VMs).
	qemuVersion    string
	kernelArch     string
	kernelFeatures map[string]string
}

// lxdArchitecture names Go's architectures as LXD does.
var lxdArchitecture = map[string]string{
	"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm": "armv7l",
	"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}

// probeHost learns the host's facts once; dataDir is where instances'
// files live, for the kernel features that depend on its filesystem.
func probeHost(dataDir string) host {
	h := host{architecture: lxdArchitecture[runtime.GOARCH], kernel: "Linux"}
	// The two tools answer in some 10 ms each: ask both at once.
	qemu := make(chan string, 1)
	go func() { qemu <- qemuVersion() }()
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		h.kernel = unix.ByteSliceToString(uts.Sysname[:])
		h.kernelVersion = unix.ByteSliceToString(uts.Release[:])
		h.kernelArch = unix.ByteSliceToString(uts.Machine[:])
	}
	h.kernelFeatures = probeKernelFeatures(dataDir)
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		h.memory = int64(si.Totalram) * int64(si.Unit)
	}
	h.hostname, _ = os.Hostname()
	if f, err := os.Open("/etc/os-release"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "NAME":
				h.osName = v
			case "VERSION_ID":
				h.osVersion = v
			}
		}
		f.Close()
	}
	if out, err := exec.Command("runc", "--version").Output(); err == nil {
		first, _, _ := strings.Cut(string(out), "\n")
		h.runcVersion = strings.TrimPrefix(first, "runc version ")
	}
	h.qemuVersion = <-qemu
	return h
}

// qemuVersion is the version QEMU states ("QEMU emulator version 7.2.22
// (Debian ...)" gives 7.2.22), "" when it is not installed.
func qemuVersion() string {
	out, err := exec.Command("qemu-system-x86_64", "--version").Output()
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(string(out), "\n")
	fields := strings.Fields(strings.TrimPrefix(first, "QEMU emulator version "))
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}

// drivers names the runtimes as LXD does in driver and driver_version:
// each supported one, joined by " | ".
func (h host) drivers() (names, versions string) {
	names, versions = "runc", h.runcVersion
	if h.qemuVersion != "" {
		names, versions = names+" | qemu", versions+" | "+h.qemuVersion
	}
	return names, versions
}

// serverInfo returns GET /1.0's answer. It is built once: nothing in it
// changes while the daemon runs.
func (h host) serverInfo() func() api.Server {
	driver, driverVersion := h.drivers()
	info := api.Server{
		Config: map[string]any{},
		ServerUntrusted: api.ServerUntrusted{
			APIExtensions: api.Extensions,
			APIStatus:     "stable",
			APIVersion:    "1.0",
			Auth:          "trusted",
			Public:        false,
			AuthMethods:   []string{"unix"},
		},
		Environment: api.ServerEnvironment{
			Addresses:     []string{},
			Architectures: []string{h.architecture},
			Driver:        driver,
			DriverVersion: driverVersion,
			// Managed networks' rules are nftables tables.
			Firewall:           "nftables",
			Kernel:             h.kernel,
			KernelArchitecture: h.kernelArch,
			KernelFeatures:     h.kernelFeatures,
			KernelVersion:      h.kernelVersion,
			LXCFeatures:        map[string]string{},
			OSName:             h.osName,
			OSVersion:          h.osVersion,
			Project:            "default",
			Server:             "hangar",
			ServerEventMode:    "full-mesh",
			ServerName:         h.hostname,
			ServerPid:          os.Getpid(),
			ServerVersion:      Version,
			// The default pool is a dir pool; btrfs pools need btrfs-progs.
			Storage:                 "dir",
			StorageVersion:          "1",
			StorageSupportedDrivers: storageDrivers(),
		},
	}
	return func() api.Server { return info }
}

// storageDrivers are the pool drivers this host can run, with the version
// of the tools they use.
func storageDrivers() []api.ServerStorageDriverInfo {
	out := []api.ServerStorageDriverInfo{{Name: "dir", Version: "1"}}
	if b, err := exec.Command("btrfs", "--version").Output(); err == nil {
		// "btrfs-progs v6.2"
		v := strings.TrimPrefix(strings.TrimSpace(string(b)), "btrfs-progs ")
		out = append(out, api.ServerStorageDriverInfo{Name: "btrfs", Version: strings.TrimPrefix(v, "v")})
	}
	return out
}
