package qemu

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestMachineHotplug(t *testing.T) {
	tests := []struct {
		machine string
		ok      bool
	}{
		{"q35", true},
		{"microvm", false},
		{"", false},
	}
	for _, tt := range tests {
		err := machineHotplug(tt.machine)
		if tt.ok != (err == nil) {
			t.Fatalf("machine %q: %v", tt.machine, err)
		}
		if err != nil && (!errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "--vm-machine q35")) {
			t.Fatalf("machine %q: %v, want a 400 saying how to get hotplug", tt.machine, err)
		}
	}
}

func TestMemoryArgs(t *testing.T) {
	base := []string{"-machine", "q35", "-m", "256M", "-append", "console=ttyS0", "-smp", "1"}
	tests := []struct {
		name       string
		args       []string
		mem, hplug int64
		want       []string
	}{
		{"no headroom", base, 256 << 20, 0, base},
		{"headroom", base, 256 << 20, 512 << 20,
			[]string{"-machine", "q35", "-m", "size=256M,slots=8,maxmem=768M", "-append", "console=ttyS0 memhp_default_state=online", "-smp", "1"}},
		{"headroom rounded up to a MiB", base, 256 << 20, 128<<20 + 1,
			[]string{"-machine", "q35", "-m", "size=256M,slots=8,maxmem=385M", "-append", "console=ttyS0 memhp_default_state=online", "-smp", "1"}},
		{"firmware VM: no kernel command line", []string{"-m", "1024M", "-smp", "2"}, 1 << 30, 1 << 30,
			[]string{"-m", "size=1024M,slots=8,maxmem=2048M", "-smp", "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.args)
			got := withMemoryHotplug(tt.args, tt.mem, tt.hplug)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
			if !slices.Equal(tt.args, in) {
				t.Fatalf("the input changed: %q", tt.args)
			}
		})
	}
}

func TestParseStatm(t *testing.T) {
	tests := []struct {
		in       string
		vms, rss int64
		ok       bool
	}{
		{"1000 250 30 5 0 400 0\n", 1000 * 4096, 250 * 4096, true},
		{"7 3", 7 * 4096, 3 * 4096, true},
		{"", 0, 0, false},
		{"12", 0, 0, false},
		{"a b c", 0, 0, false},
		{"-1 2", 0, 0, false},
	}
	for _, tt := range tests {
		vms, rss, err := parseStatm([]byte(tt.in), 4096)
		if tt.ok != (err == nil) || vms != tt.vms || rss != tt.rss {
			t.Fatalf("parseStatm(%q) = %d, %d, %v", tt.in, vms, rss, err)
		}
	}
}

func TestStatTimesFixture(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, stat string
		cpu        float64
		ok         bool
	}{
		// utime and stime are fields 14 and 15; the name may hold spaces
		// and parentheses.
		{"plain", "4242 (qemu-system-x86) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 125 0 0 20 0 5 0 100 0 0", 3.75, true},
		{"odd name", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 100 0 0 0 20 0 1 0 1 0 0", 1, true},
		{"short", "7 (x) R 1 7", 0, false},
		{"no name", "garbage", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, []byte(tt.stat), 0o600); err != nil {
				t.Fatal(err)
			}
			u, s, ok := statTimes(p)
			if ok != tt.ok || u+s != tt.cpu {
				t.Fatalf("statTimes = %v+%v, %t; want %v, %t", u, s, ok, tt.cpu, tt.ok)
			}
		})
	}
}

func TestTapCounters(t *testing.T) {
	sys := t.TempDir()
	stats := filepath.Join(sys, "tap1", "statistics")
	if err := os.MkdirAll(stats, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"rx_bytes": "1234\n", "tx_bytes": "5678\n"} {
		if err := os.WriteFile(filepath.Join(stats, f), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if rx, tx := tapCounters(sys, "tap1"); rx != 1234 || tx != 5678 {
		t.Fatalf("tap1: rx %d tx %d", rx, tx)
	}
	if rx, tx := tapCounters(sys, "gone"); rx != 0 || tx != 0 {
		t.Fatalf("a missing tap: rx %d tx %d", rx, tx)
	}
	if err := os.MkdirAll(filepath.Join(sys, "mvt1", "macvtap", "tap9"), 0o755); err != nil {
		t.Fatal(err)
	}
	if isMacvtap(sys, "tap1") || !isMacvtap(sys, "mvt1") || isMacvtap(sys, "gone") {
		t.Fatal("isMacvtap: want mvt1 alone")
	}
}
