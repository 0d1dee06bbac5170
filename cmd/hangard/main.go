// Command hangard is the Hangar daemon: it runs containers and serves the
// LXD REST API 1.0 on a unix socket.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/hangar-dev/hangar/internal/cloexec"
	"github.com/hangar-dev/hangar/internal/daemon"
	"github.com/hangar-dev/hangar/internal/driver/container"
)

func main() {
	// hangard also runs inside containers, as the helper that gives an
	// exec its terminal (see container.Driver.Exec).
	if container.IsExecTTYHelper() {
		container.RunExecTTYHelper()
	}
	// Before anything else: a descriptor inherited from whatever started
	// hangard (`hangard 7>file`) must reach none of the programs it runs,
	// least of all the processes it execs in containers.
	if err := cloexec.Inherited(); err != nil {
		fmt.Fprintln(os.Stderr, "hangard:", err)
		os.Exit(1)
	}
	var cfg daemon.Config
	var level string
	flag.StringVar(&cfg.DataDir, "data-dir", daemon.DefaultDataDir, "directory for the database, images and instances")
	flag.StringVar(&cfg.Socket, "socket", "", "unix socket to serve the API on (default DATA-DIR/unix.socket)")
	flag.StringVar(&cfg.HTTPS, "https", "", "also serve the API over TLS on this address (host:port) while the server key core.https_address is unset")
	flag.StringVar(&cfg.InstancesAPI, "instances-api", "", "also serve the instances API (OCI images as VMs, seed 002) over plain HTTP with bearer tokens on this address (host:port); the unix socket serves it under /instances-api/")
	flag.StringVar(&level, "log-level", "info", "debug, info, warn or error")
	flag.StringVar(&cfg.ExecHelper, "exec-helper", "", "statically linked program run in containers for exec with a terminal (default: hangard itself, built with CGO_ENABLED=0)")
	flag.StringVar(&cfg.VMAgent, "vm-agent", "", "static hangar-agent binary booted in VMs as /init (default: hangar-agent beside hangard, else in PATH)")
	flag.StringVar(&cfg.VMKernel, "vm-kernel", "", "guest kernel for VMs booted from OCI images (default: the newest /boot/vmlinuz-*)")
	flag.StringVar(&cfg.VMFirmware, "vm-firmware", "", "directory of the UEFI firmware (OVMF *_4M files) that boots VMs from disk images (default: /usr/share/OVMF)")
	flag.StringVar(&cfg.VMMachine, "vm-machine", "", "QEMU machine type for VMs booted from OCI images: microvm (default) or q35")
	flag.BoolVar(&cfg.StopInstances, "stop-instances", false, "stop every instance on shutdown (default: leave them running)")
	version := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *version {
		fmt.Println(daemon.Version)
		return
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		fmt.Fprintf(os.Stderr, "hangard: --log-level %q: want debug, info, warn or error\n", level)
		os.Exit(2)
	}
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := daemon.Run(ctx, cfg); err != nil {
		slog.Error("hangard failed", "err", err)
		fmt.Fprintln(os.Stderr, "hangard:", err)
		os.Exit(1)
	}
}
