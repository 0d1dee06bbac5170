package dnsmasq

import (
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

// okConfig is valid; each bad case changes one thing. Binary is one that
// exists everywhere: validation only resolves it.
func okConfig() Config {
	return Config{Bridge: "hangarbr0", Dir: "/var/lib/hangar/networks/1", IPv4: pfx("10.12.3.1/24"), DHCPv4: true,
		IPv6: pfx("fd42::1/64"), RA: true, DNS: true, Binary: "/bin/true"}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		kind   error // nil: valid
		msg    string
	}{
		{"ok", func(c *Config) {}, nil, ""},
		{"ok no IPv6", func(c *Config) { c.IPv6, c.RA = netip.Prefix{}, false }, nil, ""},
		{"ok DNS only", func(c *Config) { c.DHCPv4, c.RA = false, false }, nil, ""},
		{"ok stateful DHCPv6 on a /120", func(c *Config) { c.IPv6, c.DHCPv6, c.RA = pfx("fd42::1/120"), true, false }, nil, ""},
		{"no bridge", func(c *Config) { c.Bridge = "" }, errdefs.ErrInvalidArgument, "bridge name"},
		{"bridge too long", func(c *Config) { c.Bridge = "abcdefghijklmnop" }, errdefs.ErrInvalidArgument, "bridge name"},
		{"bridge with comma", func(c *Config) { c.Bridge = "br,0" }, errdefs.ErrInvalidArgument, "bridge name"},
		{"bridge with slash", func(c *Config) { c.Bridge = "br/0" }, errdefs.ErrInvalidArgument, "bridge name"},
		{"relative dir", func(c *Config) { c.Dir = "networks/1" }, errdefs.ErrInvalidArgument, "not an absolute path"},
		{"no dir", func(c *Config) { c.Dir = "" }, errdefs.ErrInvalidArgument, "not an absolute path"},
		{"bad domain", func(c *Config) { c.Domain = "a..b" }, errdefs.ErrInvalidArgument, "dns.domain"},
		{"domain label hyphen", func(c *Config) { c.Domain = "-x.lan" }, errdefs.ErrInvalidArgument, "dns.domain"},
		{"domain with space", func(c *Config) { c.Domain = "my lan" }, errdefs.ErrInvalidArgument, "dns.domain"},
		{"IPv6 in ipv4", func(c *Config) { c.IPv4 = pfx("fd00::1/64") }, errdefs.ErrInvalidArgument, "ipv4.address"},
		{"network address", func(c *Config) { c.IPv4 = pfx("10.12.3.0/24") }, errdefs.ErrInvalidArgument, "network or broadcast"},
		{"broadcast address", func(c *Config) { c.IPv4 = pfx("10.12.3.255/24") }, errdefs.ErrInvalidArgument, "network or broadcast"},
		{"loopback", func(c *Config) { c.IPv4 = pfx("127.0.0.1/8") }, errdefs.ErrInvalidArgument, "not a usable"},
		{"IPv4 in ipv6", func(c *Config) { c.IPv6 = pfx("10.0.0.1/24") }, errdefs.ErrInvalidArgument, "ipv6.address"},
		{"link-local ipv6", func(c *Config) { c.IPv6 = pfx("fe80::1/64") }, errdefs.ErrInvalidArgument, "not a usable"},
		{"DHCPv4 without IPv4", func(c *Config) { c.IPv4 = netip.Prefix{} }, errdefs.ErrInvalidArgument, "ipv4.dhcp"},
		{"DHCPv4 on a /31", func(c *Config) { c.IPv4 = pfx("10.0.0.0/31") }, errdefs.ErrInvalidArgument, "too small"},
		{"range outside", func(c *Config) { c.DHCPv4Ranges = [][2]netip.Addr{{ip("10.12.3.10"), ip("10.12.4.10")}} }, errdefs.ErrInvalidArgument, "not inside"},
		{"range reversed", func(c *Config) { c.DHCPv4Ranges = [][2]netip.Addr{{ip("10.12.3.20"), ip("10.12.3.10")}} }, errdefs.ErrInvalidArgument, "start after end"},
		{"range zero", func(c *Config) { c.DHCPv4Ranges = [][2]netip.Addr{{}} }, errdefs.ErrInvalidArgument, "not inside"},
		{"ranges without DHCP", func(c *Config) {
			c.DHCPv4 = false
			c.DHCPv4Ranges = [][2]netip.Addr{{ip("10.12.3.10"), ip("10.12.3.20")}}
		}, errdefs.ErrInvalidArgument, "DHCPv4 is off"},
		{"RA without IPv6", func(c *Config) { c.IPv6 = netip.Prefix{} }, errdefs.ErrInvalidArgument, "no ipv6.address"},
		{"RA on a /80", func(c *Config) { c.IPv6 = pfx("fd42::1/80") }, errdefs.ErrInvalidArgument, "need a /64"},
		{"DHCPv6 on a /48", func(c *Config) { c.IPv6, c.DHCPv6 = pfx("fd42::1/48"), true }, errdefs.ErrInvalidArgument, "between /64 and /124"},
		{"MTU too small", func(c *Config) { c.MTU = 60 }, errdefs.ErrInvalidArgument, "bridge.mtu"},
		{"MTU too big", func(c *Config) { c.MTU = 70000 }, errdefs.ErrInvalidArgument, "bridge.mtu"},
		{"relative binary", func(c *Config) { c.Binary = "bin/dnsmasq" }, errdefs.ErrInvalidArgument, "dnsmasq binary"},
		{"relative netns", func(c *Config) { c.NetNS = "ns" }, errdefs.ErrInvalidArgument, "netns"},
		{"missing binary", func(c *Config) { c.Binary = "no-such-dnsmasq-here" }, nil, "dnsmasq binary"},
		{"unknown user", func(c *Config) { c.User = "no-such-user-here" }, nil, "dnsmasq user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := okConfig()
			tt.change(&c)
			r, err := c.validate()
			switch {
			case tt.msg == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tt.msg == "":
				if r.Domain != DefaultDomain || r.User != DefaultUser || r.binary != "/bin/true" {
					t.Errorf("defaults: domain %q user %q binary %q", r.Domain, r.User, r.binary)
				}
			case err == nil:
				t.Fatalf("validate accepted it")
			case !strings.Contains(err.Error(), tt.msg):
				t.Errorf("error %q does not say %q", err, tt.msg)
			case tt.kind != nil && !errors.Is(err, tt.kind):
				t.Errorf("error %q is not %v", err, tt.kind)
			case tt.kind == nil && errors.Is(err, errdefs.ErrInvalidArgument):
				t.Errorf("error %q is a bad-input error; it is the host's", err)
			}
		})
	}
}

func TestDefaultRanges(t *testing.T) {
	tests := []struct {
		prefix string
		want   [][2]string
	}{
		{"10.0.0.1/24", [][2]string{{"10.0.0.2", "10.0.0.254"}}},
		{"10.0.0.254/24", [][2]string{{"10.0.0.1", "10.0.0.253"}}},
		{"10.0.0.100/24", [][2]string{{"10.0.0.1", "10.0.0.99"}, {"10.0.0.101", "10.0.0.254"}}},
		{"10.0.0.1/30", [][2]string{{"10.0.0.2", "10.0.0.2"}}},
		{"172.16.0.1/16", [][2]string{{"172.16.0.2", "172.16.255.254"}}},
	}
	for _, tt := range tests {
		var got [][2]string
		for _, r := range defaultRanges(pfx(tt.prefix)) {
			got = append(got, [2]string{r[0].String(), r[1].String()})
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("defaultRanges(%s) = %v, want %v", tt.prefix, got, tt.want)
		}
	}
	got := defaultRanges6(pfx("fd42::1/64"))
	want := [][2]netip.Addr{{ip("fd42::2"), ip("fd42::ffff:ffff:ffff:ffff")}}
	if !slices.Equal(got, want) {
		t.Errorf("defaultRanges6 = %v, want %v", got, want)
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		want    []string
		notWant []string
	}{
		{"defaults", func(c *Config) {}, []string{
			"interface=hangarbr0", "except-interface=lo", "bind-interfaces", "no-resolv", "no-hosts", "strict-order",
			"dhcp-authoritative", "dhcp-no-override", "domain=hangar", "local=/hangar/",
			"pid-file=/var/lib/hangar/networks/1/dnsmasq.pid",
			"dhcp-leasefile=/var/lib/hangar/networks/1/dnsmasq.leases",
			"dhcp-hostsfile=/var/lib/hangar/networks/1/dhcp-hosts",
			"addn-hosts=/var/lib/hangar/networks/1/hosts",
			"dhcp-range=10.12.3.2,10.12.3.254,1h",
			"enable-ra", "dhcp-range=::,constructor:hangarbr0,ra-stateless,ra-names",
			"user=nobody",
		}, []string{"leasefile-ro", "port=0", "server=", "dhcp-option-force=26", "conf-dir", "resolv-file"}},
		{"own domain, MTU, ranges", func(c *Config) {
			c.Domain, c.MTU = "Lab.Example.", 1400
			c.DHCPv4Ranges = [][2]netip.Addr{{ip("10.12.3.100"), ip("10.12.3.150")}, {ip("10.12.3.200"), ip("10.12.3.210")}}
		}, []string{"domain=lab.example", "local=/lab.example/", "dhcp-option-force=26,1400",
			"dhcp-range=10.12.3.100,10.12.3.150,1h", "dhcp-range=10.12.3.200,10.12.3.210,1h"},
			[]string{"dhcp-range=10.12.3.2,"}},
		{"no DNS", func(c *Config) { c.DNS = false }, []string{"port=0"}, []string{"domain=", "local=", "addn-hosts="}},
		{"stateful DHCPv6", func(c *Config) { c.DHCPv6 = true }, []string{"enable-ra", "dhcp-range=fd42::2,fd42::ffff:ffff:ffff:ffff,64,1h"},
			[]string{"ra-stateless"}},
		{"no DHCP at all", func(c *Config) { c.DHCPv4, c.RA = false, false }, []string{"domain=hangar"},
			[]string{"dhcp-range", "dhcp-leasefile", "enable-ra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := okConfig()
			tt.change(&c)
			r, err := c.validate()
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(r.render(), "\n")
			syntaxCheck(t, r.render())
			for _, w := range tt.want {
				if !slices.Contains(lines, w) {
					t.Errorf("no line %q in\n%s", w, r.render())
				}
			}
			for _, nw := range tt.notWant {
				for _, l := range lines {
					if strings.HasPrefix(l, nw) {
						t.Errorf("unwanted line %q", l)
					}
				}
			}
		})
	}
}

// syntaxCheck has the real dnsmasq parse conf (--test), when installed.
func syntaxCheck(t *testing.T, conf string) {
	t.Helper()
	bin, err := findBinary("")
	if err != nil {
		return
	}
	p := filepath.Join(t.TempDir(), "dnsmasq.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "--test", "--conf-file="+p).CombinedOutput(); err != nil {
		t.Errorf("dnsmasq --test: %v: %s", err, out)
	}
}

func TestCheckReachable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes directories owned by root")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b")
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o700)
	const nobody = 65534
	if err := checkReachable(dir, nobody, nobody); err == nil || !strings.Contains(err.Error(), base) {
		t.Errorf("checkReachable under a 0700 dir = %v, want an error naming %s", err, base)
	}
	if err := checkReachable(dir, 0, 0); err != nil {
		t.Errorf("root: %v", err)
	}
	for p := dir; p != os.TempDir(); p = filepath.Dir(p) {
		os.Chmod(p, 0o711)
	}
	if err := checkReachable(dir, nobody, nobody); err != nil {
		t.Errorf("all 0711: %v", err)
	}
	// Owner and group bits count for their owner and group.
	os.Chmod(filepath.Join(base, "a"), 0o710)
	if err := checkReachable(dir, nobody, nobody); err == nil {
		t.Error("0710 root:root dir is searchable by nobody?")
	}
	os.Chown(filepath.Join(base, "a"), 0, nobody)
	if err := checkReachable(dir, nobody, nobody); err != nil {
		t.Errorf("0710 root:nogroup: %v", err)
	}
}
