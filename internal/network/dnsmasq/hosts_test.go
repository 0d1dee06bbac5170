package dnsmasq

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestCheckHosts(t *testing.T) {
	tests := []struct {
		name  string
		hosts []Host
		kind  error // nil: valid
		msg   string
	}{
		{"ok", []Host{
			{Name: "c1", MAC: "00:16:3E:00:00:01", IPv4: ip("10.12.3.10"), IPv6: ip("fd42::10")},
			{Name: "c2", MAC: "00-16-3e-00-00-02"},
			{Name: "c3", IPv4: ip("10.12.3.11")},
			{Name: "c1", MAC: "00:16:3e:00:00:04", IPv4: ip("10.12.3.12")}, // a second NIC of c1
		}, nil, ""},
		{"no name", []Host{{MAC: "00:16:3e:00:00:01"}}, errdefs.ErrInvalidArgument, "host name"},
		{"bad name", []Host{{Name: "c_1"}}, errdefs.ErrInvalidArgument, "host name"},
		{"name too long", []Host{{Name: strings.Repeat("a", 64)}}, errdefs.ErrInvalidArgument, "host name"},
		{"bad MAC", []Host{{Name: "c1", MAC: "00:16:3e:00:00"}}, errdefs.ErrInvalidArgument, "hwaddr"},
		{"MAC not a MAC", []Host{{Name: "c1", MAC: "zz:16:3e:00:00:01"}}, errdefs.ErrInvalidArgument, "hwaddr"},
		{"long MAC", []Host{{Name: "c1", MAC: "00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01"}}, errdefs.ErrInvalidArgument, "hwaddr"},
		{"multicast MAC", []Host{{Name: "c1", MAC: "01:00:5e:00:00:01"}}, errdefs.ErrInvalidArgument, "multicast"},
		{"zero MAC", []Host{{Name: "c1", MAC: "00:00:00:00:00:00"}}, errdefs.ErrInvalidArgument, "multicast or zero"},
		{"same MAC twice", []Host{{Name: "c1", MAC: "00:16:3e:00:00:01"}, {Name: "c2", MAC: "00:16:3E:00:00:01"}}, errdefs.ErrConflict, "already used by c1"},
		{"outside subnet", []Host{{Name: "c1", IPv4: ip("10.12.4.10")}}, errdefs.ErrInvalidArgument, "outside the subnet"},
		{"network address", []Host{{Name: "c1", IPv4: ip("10.12.3.0")}}, errdefs.ErrInvalidArgument, "network or broadcast"},
		{"broadcast", []Host{{Name: "c1", IPv4: ip("10.12.3.255")}}, errdefs.ErrInvalidArgument, "network or broadcast"},
		{"bridge's address", []Host{{Name: "c1", IPv4: ip("10.12.3.1")}}, errdefs.ErrConflict, "bridge's own"},
		{"IPv6 as ipv4", []Host{{Name: "c1", IPv4: ip("fd42::10")}}, errdefs.ErrInvalidArgument, "wrong address family"},
		{"mapped IPv4 as ipv6", []Host{{Name: "c1", IPv6: ip("::ffff:10.12.3.10")}}, errdefs.ErrInvalidArgument, "wrong address family"},
		{"IPv6 outside", []Host{{Name: "c1", IPv6: ip("fd43::10")}}, errdefs.ErrInvalidArgument, "outside the subnet"},
		{"same IPv4 twice", []Host{{Name: "c1", IPv4: ip("10.12.3.10")}, {Name: "c2", IPv4: ip("10.12.3.10")}}, errdefs.ErrConflict, "10.12.3.10 already used by c1"},
		{"same IPv6 twice", []Host{{Name: "c1", IPv6: ip("fd42::10")}, {Name: "c2", IPv6: ip("fd42::10")}}, errdefs.ErrConflict, "already used by c1"},
	}
	r, err := okConfig().validate()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.checkHosts(tt.hosts)
			switch {
			case tt.kind == nil && err != nil:
				t.Fatalf("checkHosts: %v", err)
			case tt.kind == nil:
				if got[0].MAC != "00:16:3e:00:00:01" || got[1].MAC != "00:16:3e:00:00:02" {
					t.Errorf("MACs not canonical: %q %q", got[0].MAC, got[1].MAC)
				}
			case err == nil:
				t.Fatal("checkHosts accepted it")
			case !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg):
				t.Errorf("error %q, want %v saying %q", err, tt.kind, tt.msg)
			}
		})
	}
	// A network without IPv6 takes no IPv6 reservation.
	c := okConfig()
	c.IPv6, c.RA = netip.Prefix{}, false
	r4, err := c.validate()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r4.checkHosts([]Host{{Name: "c1", IPv6: ip("fd42::10")}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("IPv6 on an IPv4-only network: %v", err)
	}
}

func TestRenderHosts(t *testing.T) {
	hosts := []Host{
		{Name: "c1", MAC: "00:16:3e:00:00:01", IPv4: ip("10.12.3.10"), IPv6: ip("fd42::10")},
		{Name: "c2", MAC: "00:16:3e:00:00:02"},
		{Name: "c3", IPv4: ip("10.12.3.11")},
		{Name: "v6", MAC: "00:16:3e:00:00:04", IPv6: ip("fd42::4")},
	}
	wantDHCP := "00:16:3e:00:00:01,10.12.3.10,[fd42::10],c1\n" +
		"00:16:3e:00:00:02,c2\n" +
		"00:16:3e:00:00:04,[fd42::4],v6\n"
	if got := renderDHCPHosts(hosts); got != wantDHCP {
		t.Errorf("dhcp-hosts:\n%s\nwant:\n%s", got, wantDHCP)
	}
	wantHosts := "10.12.3.10 c1 c1.lab\n" +
		"fd42::10 c1 c1.lab\n" +
		"10.12.3.11 c3 c3.lab\n" +
		"fd42::4 v6 v6.lab\n"
	if got := renderAddnHosts(hosts, "lab"); got != wantHosts {
		t.Errorf("hosts:\n%s\nwant:\n%s", got, wantHosts)
	}
	if renderDHCPHosts(nil) != "" || renderAddnHosts(nil, "lab") != "" {
		t.Error("no hosts must give empty files")
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hosts")
	for _, data := range []string{"one\n", "two\n", ""} {
		if err := writeAtomic(p, data); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != data {
			t.Errorf("read %q, %v; want %q", b, err, data)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644: dnsmasq reads it unprivileged", fi.Mode().Perm())
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := writeAtomic(filepath.Join(dir, "missing", "hosts"), "x"); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}
