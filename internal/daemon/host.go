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
}

// lxdArchitecture names Go's architectures as LXD does.
var lxdArchitecture = map[string]string{
	"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "arm": "armv7l",
	"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
}

func probeHost() host {
	h := host{architecture: lxdArchitecture[runtime.GOARCH], kernel: "Linux"}
	var uts unix.Utsname
	if unix.Uname(&uts) == nil {
		h.kernelVersion = unix.ByteSliceToString(uts.Release[:])
	}
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
	return h
}

// serverInfo returns GET /1.0's answer. It is built once: nothing in it
// changes while the daemon runs.
func (h host) serverInfo() func() api.Server {
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
			Addresses:          []string{},
			Architectures:      []string{h.architecture},
			Driver:             "runc",
			DriverVersion:      h.runcVersion,
			Firewall:           "none",
			Kernel:             h.kernel,
			KernelArchitecture: h.architecture,
			KernelFeatures:     map[string]string{},
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
			Storage:            "dir",
		},
	}
	return func() api.Server { return info }
}
