package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// reidentify gives the guest the identity the daemon says is its own: it
// runs from another VM's saved state (a fork), whose hostname, MACs,
// addresses and random number generator state it has.
func (a *agent) reidentify(req vmagent.Identity) error {
	var errs []error
	if len(req.Seed) > 0 {
		// First: two machines that share a generator's state hand
		// out the same "random" keys and nonces until it reseeds.
		if err := reseedRandom(req.Seed); err != nil {
			errs = append(errs, err)
		}
	}
	if req.Hostname != "" {
		if err := unix.Sethostname([]byte(req.Hostname)); err != nil {
			errs = append(errs, fmt.Errorf("hostname %s: %w", req.Hostname, err))
		}
	}
	if err := a.net.reidentify(req.NICs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// reidentify gives each NIC its new MAC and configuration. The link goes
// down and up: the kernel drops the IPv6 addresses and the routes of the
// old identity and makes a link-local address of the new MAC, and a DHCP
// client of the image's (a NIC without static addresses) asks again, with
// the new MAC. The old static addresses that are not among the new ones
// are removed; the new ones, the default routes and resolv.conf are set as
// at boot.
func (c *netConfig) reidentify(nics []vmagent.IdentityNIC) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, n := range nics {
		if err := reidentifyNIC(n); err != nil {
			errs = append(errs, err)
			continue
		}
		kept := c.nics[:0]
		for _, o := range c.nics {
			if o.Name != n.Name {
				kept = append(kept, o)
			}
		}
		c.nics = append(kept, n.NIC)
	}
	writeResolvConf(c.nics)
	return errors.Join(errs...)
}

func reidentifyNIC(n vmagent.IdentityNIC) error {
	mac, err := net.ParseMAC(n.Hwaddr)
	if err != nil {
		return fmt.Errorf("NIC %s: %w", n.Name, err)
	}
	l, err := findNIC(n)
	if err != nil {
		return err
	}
	if l.Attrs().Flags&net.FlagUp != 0 {
		if err := netlink.LinkSetDown(l); err != nil {
			return fmt.Errorf("NIC %s: down: %w", n.Name, err)
		}
	}
	if !sameMAC(l.Attrs().HardwareAddr, mac) {
		// virtio-net tells QEMU (VIRTIO_NET_CTRL_MAC_ADDR_SET), whose
		// receive filter follows: frames to the new MAC get in.
		if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
			return fmt.Errorf("NIC %s: MAC %s: %w", n.Name, mac, err)
		}
	}
	if err := renameLinks([]vmagent.NIC{n.NIC}, []netlink.Link{l}); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, p := range n.Addresses {
		want[p.Addr().String()] = true
	}
	addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("NIC %s: list addresses: %w", n.Name, err)
	}
	for _, ad := range addrs {
		if ad.IP.IsLinkLocalUnicast() || want[ad.IP.String()] {
			continue
		}
		if err := netlink.AddrDel(l, &ad); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("NIC %s: remove the old address %s: %w", n.Name, ad.IPNet, err)
		}
	}
	return configureLink(l, n.NIC)
}

// findNIC is the link of a NIC: by name (the agent named it at boot), or
// else by the MAC the saved VM had.
func findNIC(n vmagent.IdentityNIC) (netlink.Link, error) {
	if l, err := netlink.LinkByName(n.Name); err == nil {
		return l, nil
	}
	if n.OldHwaddr != "" {
		old, err := net.ParseMAC(n.OldHwaddr)
		if err != nil {
			return nil, fmt.Errorf("NIC %s: old MAC: %w", n.Name, err)
		}
		all, err := netlink.LinkList()
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("list links: %w", err)
		}
		for _, l := range all {
			if l.Type() == "device" && sameMAC(l.Attrs().HardwareAddr, old) {
				return l, nil
			}
		}
	}
	return nil, fmt.Errorf("NIC %s: no such interface in the guest (old MAC %q)", n.Name, n.OldHwaddr)
}

// The random device's ioctls (linux/random.h).
const (
	rndAddEntropy = 0x40085203 // _IOW('R', 0x03, int[2])
	rndReseedCRNG = 0x5207     // _IO('R', 0x07)
)

// reseedRandom adds seed to the kernel's entropy pool, credited as
// entropy, and makes the generator reseed from the pool at once (it would
// otherwise keep the state it was saved with for up to a minute).
func reseedRandom(seed []byte) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("reseed the random generator: %w", err)
	}
	defer f.Close()
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+len(seed))
	binary.NativeEndian.PutUint32(info[0:4], uint32(8*len(seed)))
	binary.NativeEndian.PutUint32(info[4:8], uint32(len(seed)))
	copy(info[8:], seed)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), rndAddEntropy, uintptr(unsafe.Pointer(&info[0]))); e != 0 {
		return fmt.Errorf("reseed the random generator: add entropy: %w", e)
	}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), rndReseedCRNG, 0); e != 0 {
		return fmt.Errorf("reseed the random generator: %w", e)
	}
	return nil
}
