package daemon

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/instance"
)

func TestStandbyInstance(t *testing.T) {
	addrs := map[string][]netip.Addr{"eth0/00:16:3e:00:00:01": {netip.MustParseAddr("10.0.3.5"), netip.MustParseAddr("fd42::5")}}
	of := func(dev, hw string) []netip.Addr { return addrs[dev+"/"+strings.ToLower(hw)] }
	for _, tc := range []struct {
		name        string
		in          instance.Instance
		vm, running bool
		standby     bool
		nic, gpu    bool
		want        []netip.Addr
	}{
		{"vm with a nic", instance.Instance{Type: instance.TypeVM, Status: instance.StatusRunning,
			ExpandedConfig:  map[string]string{"volatile.eth0.hwaddr": "00:16:3E:00:00:01"},
			ExpandedDevices: instance.Devices{"eth0": {"type": "nic", "network": "hangarbr0"}, "root": {"type": "disk"}}},
			true, true, false, true, false, []netip.Addr{netip.MustParseAddr("10.0.3.5"), netip.MustParseAddr("fd42::5")}},
		{"in standby: stopped with a saved state", instance.Instance{Type: instance.TypeVM, Status: instance.StatusStopped, Stateful: true,
			ExpandedConfig:  map[string]string{"volatile.eth0.hwaddr": "00:16:3e:00:00:01"},
			ExpandedDevices: instance.Devices{"eth0": {"type": "nic", "network": "hangarbr0"}}},
			true, false, true, true, false, []netip.Addr{netip.MustParseAddr("10.0.3.5"), netip.MustParseAddr("fd42::5")}},
		{"no allocation yet", instance.Instance{Type: instance.TypeVM, Status: instance.StatusStopped,
			ExpandedConfig: map[string]string{}, ExpandedDevices: instance.Devices{"eth0": {"type": "nic"}}},
			true, false, false, true, false, nil},
		{"container without nic, with gpu", instance.Instance{Type: instance.TypeContainer, Status: instance.StatusFrozen,
			ExpandedConfig: map[string]string{}, ExpandedDevices: instance.Devices{"g": {"type": "gpu"}}},
			false, false, false, false, true, nil},
	} {
		got := standbyInstance(tc.in, of)
		if got.VM != tc.vm || got.Running != tc.running || got.Standby != tc.standby || got.HasNIC != tc.nic || got.HasGPU != tc.gpu || !slices.Equal(got.Addrs, tc.want) {
			t.Errorf("%s: %+v", tc.name, got)
		}
	}
}
