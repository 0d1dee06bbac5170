package device

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/network"
)

// TestValidate: nic and proxy devices key by key and as a whole; a bad one
// is a 400 (404 for what does not exist) naming the device and the key.
// Parents are looked up on the real host: "lo" always exists.
func TestValidate(t *testing.T) {
	type devs = map[string]map[string]string
	tests := []struct {
		name  string
		devs  devs
		vm    bool
		kind  error
		words []string
	}{
		{"nothing", devs{}, false, nil, nil},
		{"nic on a managed bridge", devs{"eth0": nic("network", "br0", "name", "eth0")}, false, nil, nil},
		{"nic with every key", devs{"eth0": nic("network", "br0", "name", "eth0", "hwaddr", "00:16:3e:01:02:03", "mtu", "1400",
			"host_name", "veth-c1", "ipv4.address", "10.0.3.9", "ipv6.address", "fd42::9", "limits.ingress", "10Mbit",
			"limits.egress", "1Mbit", "limits.max", "20Mbit", "security.mac_filtering", "true", "boot.priority", "1", "user.note", "x")}, false, nil, nil},
		{"nic on a macvlan network", devs{"eth0": nic("network", "mv")}, false, nil, nil},
		{"nictype bridged on a managed bridge", devs{"eth0": nic("nictype", "bridged", "parent", "br0")}, false, nil, nil},
		{"nictype bridged on a host bridge", devs{"eth0": nic("nictype", "bridged", "parent", "lo")}, false, nil, nil},
		{"nictype macvlan", devs{"eth0": nic("nictype", "macvlan", "parent", "lo", "ipv4.address", "192.0.2.5")}, false, nil, nil},
		{"none", devs{"eth0": {"type": "none"}}, false, nil, nil},
		{"unknown network", devs{"eth0": nic("network", "nope")}, false, errNotFound, []string{`"eth0"`, `"nope"`}},
		{"network and nictype", devs{"eth0": nic("network", "br0", "nictype", "bridged")}, false, errInvalid, []string{`"eth0"`, "exclude"}},
		{"network and parent", devs{"eth0": nic("network", "br0", "parent", "lo")}, false, errInvalid, []string{"exclude"}},
		{"neither network nor nictype", devs{"eth0": nic("name", "eth0")}, false, errInvalid, []string{`"eth0"`, "network or nictype"}},
		{"nictype without parent", devs{"eth0": nic("nictype", "macvlan")}, false, errInvalid, []string{"needs parent"}},
		{"parent not on the host", devs{"eth0": nic("nictype", "macvlan", "parent", "nosuchif0")}, false, errNotFound, []string{`"nosuchif0"`}},
		{"bridged parent not on the host", devs{"eth0": nic("nictype", "bridged", "parent", "nosuchbr0")}, false, errNotFound, []string{`"nosuchbr0"`}},
		{"bad nictype", devs{"eth0": nic("nictype", "sriov", "parent", "lo")}, false, errInvalid, []string{"nictype", `"sriov"`}},
		{"static address off a managed network", devs{"eth0": nic("nictype", "bridged", "parent", "lo", "ipv4.address", "10.0.3.9")}, false, errInvalid, []string{"managed network"}},
		{"unknown key", devs{"eth0": nic("network", "br0", "ipv4.gateway", "x")}, false, errInvalid, []string{`"eth0"`, `"ipv4.gateway"`}},
		{"bad MAC", devs{"eth0": nic("network", "br0", "hwaddr", "00:16:3e:01:02")}, false, errInvalid, []string{"hwaddr"}},
		{"multicast MAC", devs{"eth0": nic("network", "br0", "hwaddr", "01:16:3e:01:02:03")}, false, errInvalid, []string{"multicast"}},
		{"dashed MAC", devs{"eth0": nic("network", "br0", "hwaddr", "00-16-3e-01-02-03")}, false, errInvalid, []string{"hwaddr"}},
		{"small MTU", devs{"eth0": nic("network", "br0", "mtu", "576")}, false, errInvalid, []string{"mtu"}},
		{"huge MTU", devs{"eth0": nic("network", "br0", "mtu", "65536")}, false, errInvalid, []string{"mtu"}},
		{"long name", devs{"eth0": nic("network", "br0", "name", "a234567890123456")}, false, errInvalid, []string{"name"}},
		{"name with slash", devs{"eth0": nic("network", "br0", "name", "a/b")}, false, errInvalid, []string{"name"}},
		{"host_name with colon", devs{"eth0": nic("network", "br0", "host_name", "veth:1")}, false, errInvalid, []string{"host_name"}},
		{"IPv6 as ipv4.address", devs{"eth0": nic("network", "br0", "ipv4.address", "fd42::9")}, false, errInvalid, []string{"ipv4.address"}},
		{"IPv4 as ipv6.address", devs{"eth0": nic("network", "br0", "ipv6.address", "10.0.3.9")}, false, errInvalid, []string{"ipv6.address"}},
		{"zoned ipv6.address", devs{"eth0": nic("network", "br0", "ipv6.address", "fe80::1%eth0")}, false, errInvalid, []string{"ipv6.address"}},
		{"bad limit", devs{"eth0": nic("network", "br0", "limits.ingress", "fast")}, false, errInvalid, []string{"limits.ingress"}},
		{"bad mac_filtering", devs{"eth0": nic("network", "br0", "security.mac_filtering", "maybe")}, false, errInvalid, []string{"security.mac_filtering"}},
		{"bad boot.priority", devs{"eth0": nic("network", "br0", "boot.priority", "-1")}, false, errInvalid, []string{"boot.priority"}},
		{"duplicate interface name", devs{"a": nic("network", "br0", "name", "eth0"), "b": nic("network", "br1", "name", "eth0")}, false, errInvalid, []string{`"b"`, `"eth0"`, `"a"`}},
		{"name defaults to the device's", devs{"eth0": nic("network", "br0"), "x": nic("network", "br1", "name", "eth0")}, false, errInvalid, []string{`"eth0"`, "already used"}},
		{"distinct interface names", devs{"eth0": nic("network", "br0"), "eth1": nic("network", "br1")}, false, nil, nil},

		{"proxy", devs{"p": proxyDev("listen", "tcp:0.0.0.0:8080", "connect", "tcp:127.0.0.1:80")}, false, nil, nil},
		{"proxy udp ranges", devs{"p": proxyDev("listen", "udp:[::]:5000-5002", "connect", "udp:[::1]:6000-6002", "nat", "false", "bind", "host", "description", "x")}, false, nil, nil},
		{"proxy many to one", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80,443", "connect", "tcp:127.0.0.1:8080")}, false, nil, nil},
		{"proxy without connect", devs{"p": proxyDev("listen", "tcp:0.0.0.0:8080")}, false, errInvalid, []string{`"p"`, "listen and connect"}},
		{"proxy without listen", devs{"p": proxyDev("connect", "tcp:127.0.0.1:80")}, false, errInvalid, []string{"listen and connect"}},
		{"proxy protocols differ", devs{"p": proxyDev("listen", "tcp:0.0.0.0:53", "connect", "udp:127.0.0.1:53")}, false, errInvalid, []string{`"p"`, "same protocol"}},
		{"proxy port counts differ", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80-82", "connect", "tcp:127.0.0.1:80-81")}, false, errInvalid, []string{"connect"}},
		{"proxy bad listen", devs{"p": proxyDev("listen", "tcp:0.0.0.0", "connect", "tcp:127.0.0.1:80")}, false, errInvalid, []string{"listen"}},
		{"proxy bad connect address", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:localhost:80")}, false, errInvalid, []string{"connect", "localhost"}},
		{"proxy unix socket", devs{"p": proxyDev("listen", "unix:/run/x.sock", "connect", "tcp:127.0.0.1:80")}, false, errInvalid, []string{"unix"}},
		{"proxy bad nat", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80", "nat", "sure")}, false, errInvalid, []string{"nat"}},
		{"proxy bind instance", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80", "bind", "instance")}, false, errInvalid, []string{"bind"}},
		{"proxy protocol header", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80", "proxy_protocol", "true")}, false, errInvalid, []string{"proxy_protocol"}},
		{"proxy unknown key", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80", "uid", "0")}, false, errInvalid, []string{`"uid"`}},
		{"VM proxy needs nat", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80")}, true, errInvalid, []string{`"p"`, "nat=true"}},
		{"VM proxy nat=false", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80", "nat", "false")}, true, errInvalid, []string{"nat=true"}},
		{"VM proxy with nat", devs{"p": proxyDev("listen", "tcp:0.0.0.0:80", "connect", "tcp:127.0.0.1:80", "nat", "true")}, true, nil, nil},

		{"missing type", devs{"x": {"path": "/"}}, false, errInvalid, []string{`"x"`, "missing type"}},
		{"none with keys", devs{"x": {"type": "none", "name": "eth0"}}, false, errInvalid, []string{"type none"}},
		{"root disk", devs{"root": {"type": "disk", "path": "/", "pool": "default", "size": "2GiB", "limits.read": "10MB", "limits.write": "100iops"}}, false, nil, nil},
		{"root disk of a VM on nvme", devs{"root": {"type": "disk", "path": "/", "pool": "default", "io.bus": "nvme"}}, true, nil, nil},
		{"root disk without pool", devs{"root": {"type": "disk", "path": "/"}}, false, errInvalid, []string{`"root"`, "pool"}},
		{"root disk on a missing pool", devs{"root": {"type": "disk", "path": "/", "pool": "nope"}}, false, errNotFound, []string{`"nope"`}},
		{"root disk with a source", devs{"root": {"type": "disk", "path": "/", "pool": "default", "source": "fs"}}, false, errInvalid, []string{"no source"}},
		{"two root disks", devs{"a": {"type": "disk", "path": "/", "pool": "default"}, "b": {"type": "disk", "path": "/", "pool": "default"}}, false, errInvalid, []string{"only one"}},
		{"root disk bad size", devs{"root": {"type": "disk", "path": "/", "pool": "default", "size": "2 lots"}}, false, errInvalid, []string{"size"}},
		{"bad io limit", devs{"root": {"type": "disk", "path": "/", "pool": "default", "limits.read": "fast"}}, false, errInvalid, []string{"limits.read"}},
		{"zero iops", devs{"root": {"type": "disk", "path": "/", "pool": "default", "limits.read": "0iops"}}, false, errInvalid, []string{"limits.read"}},
		{"bad bus", devs{"root": {"type": "disk", "path": "/", "pool": "default", "io.bus": "ide"}}, true, errInvalid, []string{"io.bus"}},
		{"filesystem volume", devs{"d": {"type": "disk", "pool": "default", "source": "fs", "path": "/mnt/d", "readonly": "true"}}, false, nil, nil},
		{"filesystem volume without path", devs{"d": {"type": "disk", "pool": "default", "source": "fs"}}, false, errInvalid, []string{"needs a path"}},
		{"missing volume", devs{"d": {"type": "disk", "pool": "default", "source": "nope", "path": "/mnt"}}, false, errNotFound, []string{"custom/nope"}},
		{"block volume in a container", devs{"d": {"type": "disk", "pool": "default", "source": "blk", "path": "/mnt"}}, false, errInvalid, []string{"block volume", "virtual machine"}},
		{"block volume in a VM", devs{"d": {"type": "disk", "pool": "default", "source": "blk", "io.bus": "virtio-scsi"}}, true, nil, nil},
		{"ISO volume in a VM", devs{"cd": {"type": "disk", "pool": "default", "source": "iso", "boot.priority": "10"}}, true, nil, nil},
		{"ISO volume read-only on usb", devs{"cd": {"type": "disk", "pool": "default", "source": "iso", "io.bus": "usb", "readonly": "true"}}, true, nil, nil},
		{"ISO volume in a container", devs{"cd": {"type": "disk", "pool": "default", "source": "iso", "path": "/mnt"}}, false, errInvalid, []string{"ISO volume", "virtual machine", "ISO 9660"}},
		{"ISO volume with a path", devs{"cd": {"type": "disk", "pool": "default", "source": "iso", "path": "/mnt"}}, true, errInvalid, []string{"CD-ROM", "remove path"}},
		{"ISO volume writable", devs{"cd": {"type": "disk", "pool": "default", "source": "iso", "readonly": "false"}}, true, errInvalid, []string{"readonly=false", "read-only"}},
		{"host path", devs{"d": {"type": "disk", "source": "/etc", "path": "/mnt/etc", "readonly": "true", "shift": "true"}}, false, nil, nil},
		{"missing host path", devs{"d": {"type": "disk", "source": "/nonexistent-hangar", "path": "/mnt"}}, false, errInvalid, []string{"/nonexistent-hangar"}},
		{"missing host path not required", devs{"d": {"type": "disk", "source": "/nonexistent-hangar", "path": "/mnt", "required": "false"}}, false, nil, nil},
		{"relative host path", devs{"d": {"type": "disk", "source": "etc", "path": "/mnt"}}, false, errInvalid, []string{"source"}},
		{"relative path", devs{"d": {"type": "disk", "source": "/etc", "path": "mnt"}}, false, errInvalid, []string{"path"}},
		{"disk without source", devs{"d": {"type": "disk", "path": "/mnt"}}, false, errInvalid, []string{"source"}},
		{"size on a non-root disk", devs{"d": {"type": "disk", "source": "/etc", "path": "/mnt", "size": "1GiB"}}, false, errInvalid, []string{"root disk only"}},
		{"shift in a VM", devs{"d": {"type": "disk", "source": "/etc", "path": "/mnt", "shift": "true"}}, true, errInvalid, []string{"shift"}},
		{"io.bus in a container", devs{"d": {"type": "disk", "source": "/etc", "path": "/mnt", "io.bus": "nvme"}}, false, errInvalid, []string{"io.bus"}},
		{"unknown disk key", devs{"d": {"type": "disk", "source": "/etc", "path": "/mnt", "colour": "red"}}, false, errInvalid, []string{`"colour"`}},
		{"unix-char not yet", devs{"c": {"type": "unix-char"}}, false, errInvalid, []string{`"unix-char"`, "not supported yet"}},
		{"unknown type", devs{"x": {"type": "floppy"}}, false, errInvalid, []string{`"floppy"`, "unknown"}},
		{"bad device name", devs{"a/b": nic("network", "br0")}, false, errInvalid, []string{`"a/b"`}},
		{"empty device name", devs{"": nic("network", "br0")}, false, errInvalid, nil},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, e.m.Validate(context.Background(), tt.devs, tt.vm), tt.kind, tt.words...)
		})
	}
}

// TestValidateWithoutNetworks: a daemon without networks still checks
// nics, and static addresses need a managed network.
func TestValidateWithoutNetworks(t *testing.T) {
	m := New(Config{Dir: t.TempDir(), Links: newFakeLinks()})
	ctx := context.Background()
	wantErr(t, m.Validate(ctx, map[string]map[string]string{"eth0": nic("nictype", "macvlan", "parent", "lo")}, false), nil)
	wantErr(t, m.Validate(ctx, map[string]map[string]string{"eth0": nic("network", "br0", "ipv4.address", "10.0.3.9")}, false),
		errInvalid, "managed network")
}

func TestParseBitRate(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		bad  bool
	}{
		{"100Mbit", 100e6, false},
		{"1Gbit", 1e9, false},
		{"500kbit", 500e3, false},
		{"1Tbit", 1e12, false},
		{"10MB", 80e6, false},
		{"1kB", 8e3, false},
		{"2GB", 16e9, false},
		{"1000", 1000, false},
		{"1000bit", 1000, false},
		{"1.5Mbit", 1.5e6, false},
		{" 100 Mbit ", 100e6, false},
		{"8", 8, false},
		{"7", 0, true}, // less than a byte a second
		{"11Tbit", 0, true},
		{"0", 0, true},
		{"0Mbit", 0, true},
		{"", 0, true},
		{"Mbit", 0, true},
		{"-5Mbit", 0, true},
		{"10mbit", 0, true},
		{"10Mbps", 0, true},
		{"1e6", 0, true},
		{"1.2.3Mbit", 0, true},
	}
	for _, tt := range tests {
		got, err := parseBitRate(tt.in)
		switch {
		case tt.bad && err == nil:
			t.Errorf("parseBitRate(%q) = %d, want an error", tt.in, got)
		case tt.bad && !strings.Contains(err.Error(), fmt.Sprintf("%q", tt.in)):
			t.Errorf("parseBitRate(%q): error %q does not name the value", tt.in, err)
		case !tt.bad && (err != nil || got != tt.want):
			t.Errorf("parseBitRate(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

// TestHostLinkName: the host end of a NIC is named from the instance and
// device alone, so a restarted daemon finds it; it fits an interface name
// and never lists as a network.
func TestHostLinkName(t *testing.T) {
	// Pinned: an upgraded daemon must still find the links of instances
	// that kept running across the upgrade.
	if got := HostLinkName("hangar-7", "eth0"); got != "hgra8b79ea6" {
		t.Fatalf("HostLinkName(hangar-7, eth0) = %q, want hgra8b79ea6", got)
	}
	seen := map[string]string{}
	for i := range 200 {
		for _, dev := range []string{"eth0", "eth1", "net0", "a-much-longer-device-name"} {
			id := fmt.Sprintf("hangar-%d", i)
			n := HostLinkName(id, dev)
			if len(n) > 15 || !strings.HasPrefix(n, network.HostLinkPrefix) {
				t.Fatalf("HostLinkName(%s, %s) = %q", id, dev, n)
			}
			if other, dup := seen[n]; dup {
				t.Fatalf("HostLinkName(%s, %s) = %q, as for %s", id, dev, n, other)
			}
			seen[n] = id + "/" + dev
		}
	}
}
