package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/netdev"
)

// hangard runs in a network namespace of the harness's own: its bridge,
// its nftables table, its dnsmasq and its containers' veths live there,
// and nothing of it touches the machine's own network. "The host side" of
// hangard's containers is that namespace: the harness's connections to
// them start there (inNetns).

// makeNetns creates a network namespace bound to the file path, with its
// loopback up.
func makeNetns(ctx context.Context, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	f.Close()
	if err := (command{}).run(ctx, "unshare", "--net="+path, "true"); err != nil {
		os.Remove(path)
		return err
	}
	if err := (command{}).run(ctx, "nsenter", "--net="+path, "ip", "link", "set", "lo", "up"); err != nil {
		removeNetns(path)
		return err
	}
	return nil
}

// removeNetns ends whatever still runs in the namespace at path (processes
// the harness's daemon started there and left, by pid), then unbinds it:
// the kernel frees it, with every link and rule in it, once nothing holds
// it.
func removeNetns(path string) {
	if path == "" || !fileExists(path) {
		return
	}
	for _, pid := range processesInNetns(path) {
		logf("netns %s: killing left-over process %d (%s)", path, pid, commOf(pid))
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
		logf("unmount %s: %v", path, err)
	}
	if err := os.Remove(path); err != nil {
		logf("remove %s: %v", path, err)
	}
}

// processesInNetns lists the processes whose network namespace is the one
// bound at path.
func processesInNetns(path string) []int {
	var want unix.Stat_t
	if err := unix.Stat(path, &want); err != nil {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) == nil && st.Ino == want.Ino && st.Dev == want.Dev {
			out = append(out, pid)
		}
	}
	return out
}

func commOf(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return string(b[:max(0, len(b)-1)])
}

// inNetns runs fn on an OS thread that entered the network namespace at
// path (sockets fn makes belong to it); an empty path runs fn where we
// are.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return netdev.InNetNS(path, fn)
}
