package dnsmasq

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseLeases(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		want    []Lease
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"IPv4", "1764621600 00:16:3e:aa:00:01 10.12.3.50 c1 01:00:16:3e:aa:00:01\n" +
			"0 00:16:3E:AA:00:02 10.12.3.120 * *\n",
			[]Lease{
				{Hostname: "c1", MAC: "00:16:3e:aa:00:01", Address: ip("10.12.3.50"), Expires: time.Unix(1764621600, 0), ClientID: "01:00:16:3e:aa:00:01"},
				{MAC: "00:16:3e:aa:00:02", Address: ip("10.12.3.120")}, // infinite, no name, no client id
			}, ""},
		{"IPv6 section", "1764621600 00:16:3e:aa:00:01 10.12.3.50 c1 *\n" +
			"duid 00:01:00:01:2c:d4:6e:11:00:16:3e:00:00:ff\n" +
			"1764621700 1234 fd42::50 c1 00:01:00:01:2c:d4:6e:11:00:16:3e:aa:00:01\n" +
			"1764621700 T77 fd42::51 * 00:03:00:01:00:16:3e:aa:00:03\n" +
			"1764621700 9 fd42::52 v6 00:02:00:00:ab:11:01:02\n",
			[]Lease{
				{Hostname: "c1", MAC: "00:16:3e:aa:00:01", Address: ip("10.12.3.50"), Expires: time.Unix(1764621600, 0)},
				{Hostname: "c1", MAC: "00:16:3e:aa:00:01", Address: ip("fd42::50"), Expires: time.Unix(1764621700, 0),
					ClientID: "00:01:00:01:2c:d4:6e:11:00:16:3e:aa:00:01", IAID: 1234},
				{MAC: "00:16:3e:aa:00:03", Address: ip("fd42::51"), Expires: time.Unix(1764621700, 0),
					ClientID: "00:03:00:01:00:16:3e:aa:00:03", IAID: 77},
				{Hostname: "v6", Address: ip("fd42::52"), Expires: time.Unix(1764621700, 0), ClientID: "00:02:00:00:ab:11:01:02", IAID: 9},
			}, ""},
		{"other hardware and extra lines", "1764621600 20-00:11:22 10.12.3.60 ib *\n" +
			"agent-info 10.12.3.60 01:02\n\n" +
			"vendorclass 10.12.3.60 udhcp\n",
			[]Lease{{Hostname: "ib", MAC: "20-00:11:22", Address: ip("10.12.3.60"), Expires: time.Unix(1764621600, 0)}}, ""},
		{"short line", "1764621600 00:16:3e:aa:00:01 10.12.3.50\n", nil, "line 1"},
		{"bad address", "1764621600 00:16:3e:aa:00:01 10.12.3.500 c1 *\n", nil, "line 1: address"},
		{"bad IAID", "duid 00:01\n1764621700 X1 fd42::50 c1 *\n", nil, "line 2: IAID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseLeases(strings.NewReader(tt.file))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
				cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("leases (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	hosts := []Host{
		{Name: "c1", MAC: "00:16:3e:aa:00:01", IPv4: ip("10.12.3.50"), IPv6: ip("fd42::50")},
		{Name: "c2", IPv4: ip("10.12.3.51")}, // DNS only: no reservation
	}
	leases := []Lease{
		{MAC: "00:16:3e:aa:00:01", Address: ip("10.12.3.50")},  // the reservation
		{MAC: "00:16:3e:aa:00:09", Address: ip("10.12.3.50")},  // another MAC on it
		{MAC: "00:16:3e:aa:00:01", Address: ip("10.12.3.120")}, // c1's MAC, from the range
		{Address: ip("fd42::50")},                              // DHCPv6, DUID without MAC
		{MAC: "00:16:3e:aa:00:07", Address: ip("10.12.3.51")},
	}
	classify(leases, hosts)
	want := []struct{ typ, mac string }{
		{LeaseStatic, "00:16:3e:aa:00:01"},
		{LeaseDynamic, "00:16:3e:aa:00:09"},
		{LeaseDynamic, "00:16:3e:aa:00:01"},
		{LeaseStatic, "00:16:3e:aa:00:01"},
		{LeaseDynamic, "00:16:3e:aa:00:07"},
	}
	for i, w := range want {
		if leases[i].Type != w.typ || leases[i].MAC != w.mac {
			t.Errorf("lease %d (%s): %s %s, want %s %s", i, leases[i].Address, leases[i].Type, leases[i].MAC, w.typ, w.mac)
		}
	}
}

func TestReadLeases(t *testing.T) {
	dir := t.TempDir()
	if got, err := readLeases(filepath.Join(dir, "none"), nil); err != nil || got != nil {
		t.Errorf("missing file: %v, %v; want no leases", got, err)
	}
	p := filepath.Join(dir, fileLeases)
	os.WriteFile(p, []byte("1764621600 00:16:3e:aa:00:01 10.12.3.50 c1 *\n"), 0o644)
	got, err := readLeases(p, []Host{{Name: "c1", MAC: "00:16:3e:aa:00:01", IPv4: ip("10.12.3.50")}})
	if err != nil || len(got) != 1 || got[0].Type != LeaseStatic {
		t.Errorf("readLeases = %+v, %v", got, err)
	}
	os.WriteFile(p, []byte("1764621600 garbage\n"), 0o644)
	if _, err := readLeases(p, nil); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("malformed file: %v, want an error naming it", err)
	}
}
