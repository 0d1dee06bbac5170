package netdev

import (
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestMacvtap: a macvtap in bridge mode on the parent with the guest's
// MAC and the parent's MTU, up; a second call replaces it; its character
// device opens (the descriptor QEMU gets) and is the link's; bad input
// is refused before anything is made; DeleteLink removes it.
func TestMacvtap(t *testing.T) {
	e := newEnv(t)
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU = "par0", 1400
	// A veth: this kernel has no dummy links.
	if err := e.host.nl.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: "par1"}); err != nil {
		t.Fatal(err)
	}
	const mac = "00:16:3e:12:34:56"
	for range 2 {
		mtu, err := e.host.CreateMacvtap("mvt0", "par0", mac, 0)
		if err != nil {
			t.Fatal(err)
		}
		if mtu != 1400 {
			t.Errorf("MTU %d, want the parent's 1400", mtu)
		}
	}
	l, err := e.host.nl.LinkByName("mvt0")
	if err != nil {
		t.Fatal(err)
	}
	mv, ok := l.(*netlink.Macvtap)
	if !ok || mv.Mode != netlink.MACVLAN_MODE_BRIDGE || l.Attrs().HardwareAddr.String() != mac ||
		l.Attrs().MTU != 1400 || l.Attrs().Flags&(1<<0) == 0 {
		t.Fatalf("link %T %+v, want a bridge-mode macvtap with %s, MTU 1400, up", l, l.Attrs(), mac)
	}

	f, err := e.host.OpenMacvtap("mvt0")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("descriptor mode %o, want a character device", st.Mode)
	}
	// The device's interface index is the link's (TUNGETIFF names it).
	ifr, err := unix.NewIfreq("")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(int(f.Fd()), unix.TUNGETIFF, ifr); err != nil {
		t.Fatalf("TUNGETIFF: %v", err)
	}
	if got := ifr.Name(); got != "mvt0" {
		t.Errorf("descriptor is %q's, want mvt0's", got)
	}
	if _, err := os.Stat("/sys/tap"); err == nil {
		t.Error("the device node is visible outside the throwaway mount namespace")
	}

	bad := []struct {
		name, parent, mac string
		mtu               int
		want              error
	}{
		{"mvt1", "nope0", mac, 0, errdefs.ErrNotFound},
		{"mvt1", "par0", "", 0, errdefs.ErrInvalidArgument},
		{"mvt1", "par0", "zz", 0, errdefs.ErrInvalidArgument},
		{"mvt1", "par0", mac, 70000, errdefs.ErrInvalidArgument},
		{"mvt-name-too-long", "par0", mac, 0, errdefs.ErrInvalidArgument},
		{"par0", "par0", mac, 0, errdefs.ErrConflict},
	}
	for _, c := range bad {
		if _, err := e.host.CreateMacvtap(c.name, c.parent, c.mac, c.mtu); !errors.Is(err, c.want) {
			t.Errorf("CreateMacvtap(%q, %q, %q, %d): %v, want %v", c.name, c.parent, c.mac, c.mtu, err, c.want)
		}
	}
	if _, err := e.host.OpenMacvtap("par0"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("open a veth: %v, want invalid", err)
	}
	if _, err := e.host.OpenMacvtap("nope0"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("open a missing link: %v, want not found", err)
	}
	if err := e.host.DeleteLink("mvt0"); err != nil {
		t.Fatal(err)
	}
	if got, want := e.links(), []string{"lo", "par0", "par1"}; !slices.Equal(got, want) {
		t.Errorf("links %v, want %v", got, want)
	}
}

func TestParseDevNumber(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"246:1\n", unix.Mkdev(246, 1), true},
		{"0:0", 0, true},
		{"246", 0, false},
		{"a:1", 0, false},
		{"1:-1", 0, false},
		{"", 0, false},
	} {
		got, err := parseDevNumber(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseDevNumber(%q) = %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}
