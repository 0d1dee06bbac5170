package velocity

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
)

func TestStateOf(t *testing.T) {
	tests := map[instance.Status]wire.State{
		instance.StatusStopped:  wire.StateStopped,
		instance.StatusStarting: wire.StateStarting,
		instance.StatusRunning:  wire.StateRunning,
		instance.StatusStopping: wire.StateStopping,
		instance.StatusFreezing: wire.StatePausing,
		instance.StatusFrozen:   wire.StatePaused,
		instance.StatusError:    wire.StateStopped,
	}
	for st, want := range tests {
		if got := stateOf(st); got != want {
			t.Errorf("%s: %s, want %s", st, got, want)
		}
	}
	for _, s := range wire.States {
		want := s == wire.StateStopped || s == wire.StateRunning || s == wire.StatePaused
		if s.Requestable() != want {
			t.Errorf("%s requestable: %v", s, !want)
		}
	}
}

func TestNum(t *testing.T) {
	tests := []struct {
		in   string
		want wire.Num
		err  bool
	}{
		{`"2"`, 2, false}, {`2`, 2, false}, {`"0"`, 0, false}, {`"-1"`, -1, false},
		{`"two"`, 0, true}, {`2.5`, 0, true}, {`""`, 0, true}, {`true`, 0, true}, {`"1e3"`, 0, true},
	}
	for _, tt := range tests {
		var n wire.Num
		err := json.Unmarshal([]byte(tt.in), &n)
		if (err != nil) != tt.err || (!tt.err && n != tt.want) {
			t.Errorf("%s: %d %v", tt.in, n, err)
		}
	}
	b, _ := json.Marshal(wire.VMListEntry{CPUs: 4, MemoryMiB: 1024})
	if want := `{"vmid":"","name":"","cpus":"4","memory_mib":"1024","state":""}`; string(b) != want {
		t.Errorf("marshal: %s, want %s", b, want)
	}
}

func TestDevicesOf(t *testing.T) {
	s := &Server{RootPool: "p", NATNetwork: "br0"}
	nics := map[string]HostNIC{"lan": {ID: "lan", Interface: "eth1", Type: "physical"}, "br": {ID: "br", Interface: "br1", Type: "bridge"},
		"v": {ID: "v", Interface: "veth7", Type: "unknown"}, "lo": {ID: "lo", Interface: "lo", Type: "loopback"}}
	lookup := func(id string) (HostNIC, error) {
		if h, ok := nics[id]; ok {
			return h, nil
		}
		return HostNIC{}, errdefs.NotFound("host NIC %q not found", id)
	}
	root := map[string]string{"type": "disk", "path": "/", "pool": "p", "size": "8589934592"}
	tests := []struct {
		name string
		req  wire.EFIRequest
		want instance.Devices
		kind string // "400", "404", "406"
	}{
		{"root only", wire.EFIRequest{}, instance.Devices{"root": root}, ""},
		{"media", wire.EFIRequest{Media: []wire.Media{{MID: "p/iso", Mode: "USB", ReadOnly: true}, {MID: "p/d", Mode: "BLOCK"}, {MID: "p/v", Mode: "VIRTIO", ReadOnly: true}}},
			instance.Devices{"root": root,
				"media0": {"type": "disk", "pool": "p", "source": "iso", "io.bus": "usb", "readonly": "true"},
				"media1": {"type": "disk", "pool": "p", "source": "d", "io.bus": "virtio-scsi", "readonly": "false"},
				"media2": {"type": "disk", "pool": "p", "source": "v", "io.bus": "virtio-blk", "readonly": "true"}}, ""},
		{"nics", wire.EFIRequest{NICs: []wire.NIC{{Type: "NAT"}, {Type: "BRIDGE", Host: "br"}}},
			instance.Devices{"root": root,
				"eth0": {"type": "nic", "network": "br0", "name": "eth0"},
				"eth1": {"type": "nic", "nictype": "bridged", "parent": "br1", "name": "eth1"}}, ""},
		{"BRIDGE on plain NICs", wire.EFIRequest{NICs: []wire.NIC{{Type: "BRIDGE", Host: "lan"}, {Type: "BRIDGE", Host: "v"}}},
			instance.Devices{"root": root,
				"eth0": {"type": "nic", "nictype": "macvlan", "parent": "eth1", "name": "eth0"},
				"eth1": {"type": "nic", "nictype": "macvlan", "parent": "veth7", "name": "eth1"}}, ""},
		{"BRIDGE on loopback", wire.EFIRequest{NICs: []wire.NIC{{Type: "BRIDGE", Host: "lo"}}}, nil, "406"},
		{"display", wire.EFIRequest{Displays: []wire.Display{{Name: "Main screen", Width: 1280, Height: 800, PPI: 96}, {Name: "root", Width: 320, Height: 200, PPI: 1}}},
			instance.Devices{"root": root,
				"display0": {"type": "display", "protocol": "vnc", "description": "Main screen", "width": "1280", "height": "800", "ppi": "96"},
				"display1": {"type": "display", "protocol": "vnc", "description": "root", "width": "320", "height": "200", "ppi": "1"}}, ""},
		{"bad mid", wire.EFIRequest{Media: []wire.Media{{MID: "iso", Mode: "USB"}}}, nil, "400"},
		{"bad mode", wire.EFIRequest{Media: []wire.Media{{MID: "p/iso", Mode: "usb"}}}, nil, "406"},
		{"bad nic type", wire.EFIRequest{NICs: []wire.NIC{{Type: "nat"}}}, nil, "406"},
		{"NAT with host", wire.EFIRequest{NICs: []wire.NIC{{Type: "NAT", Host: "lan"}}}, nil, "400"},
		{"BRIDGE without host", wire.EFIRequest{NICs: []wire.NIC{{Type: "BRIDGE"}}}, nil, "400"},
		{"BRIDGE unknown host", wire.EFIRequest{NICs: []wire.NIC{{Type: "BRIDGE", Host: "x"}}}, nil, "404"},
		{"display without name", wire.EFIRequest{Displays: []wire.Display{{Name: " ", Width: 320, Height: 200, PPI: 1}}}, nil, "400"},
		{"display control char", wire.EFIRequest{Displays: []wire.Display{{Name: "a\nb", Width: 320, Height: 200, PPI: 1}}}, nil, "400"},
		{"display narrow", wire.EFIRequest{Displays: []wire.Display{{Name: "d", Width: 319, Height: 200, PPI: 1}}}, nil, "400"},
		{"display huge", wire.EFIRequest{Displays: []wire.Display{{Name: "d", Width: 320, Height: 4321, PPI: 1}}}, nil, "400"},
		{"display ppi", wire.EFIRequest{Displays: []wire.Display{{Name: "d", Width: 320, Height: 200, PPI: 1001}}}, nil, "400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.devicesOf(tt.req, lookup)
			if tt.kind != "" {
				var na *notAcceptableError
				ok := map[string]bool{
					"400": errors.Is(err, errdefs.ErrInvalidArgument),
					"404": errors.Is(err, errdefs.ErrNotFound),
					"406": errors.As(err, &na),
				}[tt.kind]
				if !ok {
					t.Fatalf("err %v, want a %s", err, tt.kind)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%v %v\nwant %v", got, err, tt.want)
			}
			// And back: render shows what was asked.
			in := instance.Instance{ID: "x", Type: instance.TypeVM, ExpandedConfig: map[string]string{}, ExpandedDevices: got, Config: map[string]string{}}
			vm := render(in, func(iface string) string {
				for _, n := range nics {
					if n.Interface == iface {
						return n.ID
					}
				}
				return ""
			})
			if len(tt.req.Media) > 0 && !reflect.DeepEqual(vm.Media, tt.req.Media) {
				t.Errorf("media rendered %v, want %v", vm.Media, tt.req.Media)
			}
			if len(tt.req.NICs) > 0 && !reflect.DeepEqual(vm.NICs, tt.req.NICs) {
				t.Errorf("nics rendered %v, want %v", vm.NICs, tt.req.NICs)
			}
			if len(tt.req.Displays) > 0 && !reflect.DeepEqual(vm.Displays, tt.req.Displays) {
				t.Errorf("displays rendered %v, want %v", vm.Displays, tt.req.Displays)
			}
		})
	}
}

func TestCPUsOf(t *testing.T) {
	tests := map[string]int64{"": 1, "4": 4, "0-3": 4, "0-3,6": 5, "1,3,5": 3}
	for in, want := range tests {
		if got := cpusOf(map[string]string{"limits.cpu": in}); got != want {
			t.Errorf("%q: %d, want %d", in, got, want)
		}
	}
}
