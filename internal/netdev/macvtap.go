package netdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/osthread"
	"github.com/hangar-dev/hangar/internal/revert"
)

// CreateMacvtap makes a macvtap called name in bridge mode on the host
// NIC parent, with the MAC address hwaddr (the guest NIC's: a macvtap
// delivers only frames for its own address) and the MTU (0: the
// parent's), up, for a virtual machine's QEMU to get as a descriptor
// (OpenMacvtap). It returns the link's MTU. A macvtap of that name left
// by an earlier run is replaced: a start means no QEMU holds it any more.
// If a step fails, the link is deleted.
func (h *Host) CreateMacvtap(name, parent, hwaddr string, mtu int) (int, error) {
	if err := validName("name", name); err != nil {
		return 0, err
	}
	if err := validName("parent", parent); err != nil {
		return 0, err
	}
	mac, err := parseMAC("hwaddr", hwaddr)
	if err != nil {
		return 0, err
	}
	if mac == nil {
		return 0, errdefs.Invalid("hwaddr: a macvtap needs the guest's MAC address")
	}
	if err := validMTU("mtu", mtu); err != nil {
		return 0, err
	}
	p, err := linkByName(h.nl, parent)
	if err != nil {
		return 0, err
	}
	if p == nil {
		return 0, errdefs.NotFound("parent %s not found", parent)
	}
	if mtu == 0 {
		mtu = p.Attrs().MTU
	}
	newMacvtap := func() *netlink.Macvtap {
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU, la.HardwareAddr, la.ParentIndex = name, mtu, mac, p.Attrs().Index
		return &netlink.Macvtap{Macvlan: netlink.Macvlan{LinkAttrs: la, Mode: netlink.MACVLAN_MODE_BRIDGE}}
	}
	err = h.nl.LinkAdd(newMacvtap())
	if errors.Is(err, unix.EEXIST) {
		if err := clearStale(h.nl, name, "macvtap"); err != nil {
			return 0, err
		}
		err = h.nl.LinkAdd(newMacvtap())
	}
	if err != nil {
		return 0, fmt.Errorf("create macvtap %s on %s: %w", name, parent, err)
	}
	r := revert.New()
	defer r.Fail()
	r.Add(func() { _ = h.deleteLink(name) })
	l, err := h.nl.LinkByName(name)
	if err == nil {
		err = h.nl.LinkSetUp(l)
	}
	if err != nil {
		return 0, fmt.Errorf("set macvtap %s up: %w", name, err)
	}
	r.Success()
	return mtu, nil
}

// OpenMacvtap opens the character device of the macvtap called name, in
// the network namespace of the calling process (the one the daemon and
// its QEMUs share), for reading and writing: the descriptor is the
// guest's port, which QEMU takes as a tap backend (fd=).
func OpenMacvtap(name string) (*os.File, error) {
	h, err := Open()
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.OpenMacvtap(name)
}

// OpenMacvtap is the package's OpenMacvtap in h's namespace.
//
// /dev/tapN (N the link's index) is udev's or devtmpfs's name for the
// device, and cannot be trusted: index N exists in every network
// namespace, and devtmpfs keeps one node per name. So the device number
// is read from a sysfs that shows h's links, mounted on a throwaway
// thread in a mount namespace of its own, and a node of that number is
// made on a tmpfs there and opened. Nothing stays mounted or made where
// anyone else sees it: the mount namespace goes with the thread.
func (h *Host) OpenMacvtap(name string) (*os.File, error) {
	if err := validName("name", name); err != nil {
		return nil, err
	}
	l, err := linkByName(h.nl, name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		return nil, errdefs.NotFound("macvtap %s not found", name)
	}
	if k := kind(l); k != "macvtap" {
		return nil, errdefs.Invalid("link %s is a %s, not a macvtap", name, kindName(k))
	}
	var f *os.File
	osthread.Throwaway(func() {
		if err = unix.Setns(int(h.ns.Fd()), unix.CLONE_NEWNET); err != nil {
			err = fmt.Errorf("enter network namespace: %w", err)
			return
		}
		f, err = openMacvtapHere(name)
	})
	if err != nil {
		return nil, fmt.Errorf("open macvtap %s: %w", name, err)
	}
	return f, nil
}

// openMacvtapHere is OpenMacvtap on a thread that is thrown away after.
func openMacvtapHere(name string) (*os.File, error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return nil, fmt.Errorf("mount namespace: %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return nil, fmt.Errorf("make mounts private: %w", err)
	}
	// sysfs shows the links of the network namespace of whoever mounts
	// it: this thread's, the process's.
	if err := unix.Mount("sysfs", "/sys", "sysfs", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, ""); err != nil {
		return nil, fmt.Errorf("mount sysfs: %w", err)
	}
	dev, err := macvtapDev(filepath.Join("/sys/class/net", name))
	if err != nil {
		return nil, err
	}
	// /sys is this namespace's alone now: a tmpfs over it holds the node.
	if err := unix.Mount("tmpfs", "/sys", "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0700,size=4k"); err != nil {
		return nil, fmt.Errorf("mount tmpfs: %w", err)
	}
	node := "/sys/tap"
	if err := unix.Mknod(node, unix.S_IFCHR|0o600, int(dev)); err != nil {
		return nil, fmt.Errorf("make device node: %w", err)
	}
	return os.OpenFile(node, os.O_RDWR, 0)
}

// macvtapDev reads the device number of the macvtap whose sysfs
// directory is dir: its one "macvtap/tapN/dev" file, "MAJOR:MINOR".
func macvtapDev(dir string) (uint64, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "macvtap"))
	if err != nil {
		return 0, fmt.Errorf("find character device: %w", err)
	}
	if len(ents) != 1 {
		return 0, fmt.Errorf("find character device: %d entries in %s/macvtap", len(ents), dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "macvtap", ents[0].Name(), "dev"))
	if err != nil {
		return 0, fmt.Errorf("find character device: %w", err)
	}
	return parseDevNumber(string(b))
}

// parseDevNumber parses sysfs's "MAJOR:MINOR\n".
func parseDevNumber(s string) (uint64, error) {
	maj, mnr, ok := strings.Cut(strings.TrimSpace(s), ":")
	a, err1 := strconv.ParseUint(maj, 10, 32)
	b, err2 := strconv.ParseUint(mnr, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return 0, fmt.Errorf("device number %q: want MAJOR:MINOR", strings.TrimSpace(s))
	}
	return unix.Mkdev(uint32(a), uint32(b)), nil
}
