package firewall

import (
	"bytes"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/osthread"
)

// The sysctls that make the kernel route between interfaces.
const (
	forwardIPv4 = "/proc/sys/net/ipv4/ip_forward"
	forwardIPv6 = "/proc/sys/net/ipv6/conf/all/forwarding"
)

// EnableForwarding turns on IPv4 and/or IPv6 forwarding in the firewall's
// network namespace, which a managed network with NAT or forwards needs.
// It writes only a sysctl that is off, and never turns one off: other
// software on the host may rely on it, and what it was before hangard is
// not hangard's to restore. Turning on IPv6 forwarding makes the kernel
// ignore router advertisements on interfaces with accept_ra=1; that is
// the caller's choice to make.
func (f *Firewall) EnableForwarding(ipv4, ipv6 bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nsFd < 0 {
		return fmt.Errorf("firewall is closed")
	}
	var paths []string
	if ipv4 {
		paths = append(paths, forwardIPv4)
	}
	if ipv6 {
		paths = append(paths, forwardIPv6)
	}
	var err error
	// /proc/sys/net shows the namespace of the thread that opens it: the
	// work runs on a thread of its own that joins the firewall's.
	osthread.Throwaway(func() {
		if err = unix.Setns(f.nsFd, unix.CLONE_NEWNET); err != nil {
			err = fmt.Errorf("join network namespace: %w", err)
			return
		}
		for _, p := range paths {
			if err = enable(p); err != nil {
				return
			}
		}
	})
	return err
}

func enable(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if string(bytes.TrimSpace(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable forwarding: %w", err)
	}
	return nil
}
