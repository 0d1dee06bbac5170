package image

import (
	"runtime"
	"slices"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// lxdArchitectures are the architecture names LXD uses.
var lxdArchitectures = []string{
	"i686", "x86_64", "armv6l", "armv7l", "armv8l", "aarch64",
	"ppc", "ppc64", "ppc64le", "s390x", "mips", "mips64",
	"riscv32", "riscv64", "loongarch64",
}

// archAliases are the other names clients use (Go, Debian, kernel), as
// LXD accepts them.
var archAliases = map[string]string{
	"amd64": "x86_64", "x86-64": "x86_64", "x64": "x86_64",
	"386": "i686", "i386": "i686", "i486": "i686", "i586": "i686", "x86": "i686",
	"arm64": "aarch64", "arm64v8": "aarch64",
	"arm": "armv7l", "armhf": "armv7l", "armel": "armv6l", "armv7": "armv7l",
	"ppc64el": "ppc64le", "powerpc": "ppc", "powerpc64": "ppc64",
	"mipsel": "mips", "mips64el": "mips64", "mips64le": "mips64", "mipsle": "mips",
	"loong64": "loongarch64",
}

// normalizeArchitecture returns the LXD name of an architecture; "" is the
// host's.
func normalizeArchitecture(name string) (string, error) {
	if name == "" {
		name = runtime.GOARCH
	}
	if slices.Contains(lxdArchitectures, name) {
		return name, nil
	}
	if a, ok := archAliases[name]; ok {
		return a, nil
	}
	return "", errdefs.Invalid("unknown architecture %q", name)
}
