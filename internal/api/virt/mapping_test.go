package virt

import (
	"encoding/json"
	"maps"
	"reflect"
	"testing"

	"github.com/hangar-dev/hangar/internal/instance"
)

func sp(s string) *string { return &s }
func ip(n int64) *int64   { return &n }
func bp(b bool) *bool     { return &b }

func TestCreateRequest(t *testing.T) {
	tests := []struct {
		name    string
		args    createArgs
		config  map[string]string
		devices instance.Devices
		errAttr string
	}{
		{
			name: "container",
			args: createArgs{Name: "c", InstanceType: "CONTAINER", Autostart: bp(true), CPU: sp("2"), Memory: ip(1 << 28),
				Environment: map[string]string{"A": "b"}, PrivilegedMode: true, RootDiskSize: 10, RootDiskIOBus: "NVME"},
			config:  map[string]string{"boot.autostart": "true", "limits.cpu": "2", "limits.memory": "268435456", "environment.A": "b", "security.privileged": "true"},
			devices: instance.Devices{"root": {"type": "disk", "path": "/", "pool": "p"}},
		},
		{
			name: "vm with vnc and devices",
			args: createArgs{Name: "v", InstanceType: "VM", RootDiskSize: 12, RootDiskIOBus: "VIRTIO-BLK", SecureBoot: bp(false),
				VNCEnabled: true, VNCPort: ip(5901), VNCPassword: sp("pw"),
				Devices: []deviceArgs{
					{DevType: devCDROM, Source: sp("/x.iso"), BootPriority: ip(1)},
					{DevType: devProxy, SourceProto: "TCP", SourcePort: 8080, DestProto: "UDP", DestPort: 53},
					{DevType: devTPM},
					{DevType: devNIC, NICType: sp("MACVLAN"), Parent: sp("eth9"), MAC: sp("00:16:3e:00:00:01")},
				}},
			config: map[string]string{"security.secureboot": "false"},
			devices: instance.Devices{
				"root":   {"type": "disk", "path": "/", "pool": "p", "size": "12GiB", "io.bus": "virtio-blk"},
				"vnc":    {"type": "display", "protocol": "vnc", "port": "5901", "password": "pw"},
				"cdrom0": {"type": "disk", "source": "/x.iso", "boot.priority": "1"},
				"proxy0": {"type": "proxy", "listen": "tcp:0.0.0.0:8080", "connect": "udp:0.0.0.0:53", "nat": "true"},
				"tpm0":   {"type": "tpm"},
				"eth0":   {"type": "nic", "nictype": "macvlan", "parent": "eth9", "hwaddr": "00:16:3e:00:00:01"},
			},
		},
		{name: "privileged vm", args: createArgs{Name: "v", InstanceType: "VM", PrivilegedMode: true}, errAttr: "virt.instance.create.privileged_mode"},
		{name: "disk without destination", args: createArgs{Name: "c", InstanceType: "CONTAINER", Devices: []deviceArgs{{DevType: devDisk, Source: sp("/srv")}}}, errAttr: "virt.instance.create.devices.0.destination"},
		{name: "nic without network", args: createArgs{Name: "c", InstanceType: "CONTAINER", Devices: []deviceArgs{{DevType: devNIC}}}, errAttr: "virt.instance.create.devices.0.network"},
		{name: "duplicate device name", args: createArgs{Name: "c", InstanceType: "CONTAINER", Devices: []deviceArgs{{DevType: devTPM, Name: sp("root")}}}, errAttr: "virt.instance.create.devices.0.name"},
		{name: "cdrom not iso", args: createArgs{Name: "v", InstanceType: "VM", Devices: []deviceArgs{{DevType: devCDROM, Source: sp("/x.img")}}}, errAttr: "virt.instance.create.devices.0.source"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := createRequest(tc.args, "fp", "p")
			if tc.errAttr != "" {
				ve, ok := err.(validationErrors)
				if !ok || ve[0].Attr != tc.errAttr {
					t.Fatalf("want error on %s, got %v", tc.errAttr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(req.Config, tc.config) {
				t.Errorf("config %v, want %v", req.Config, tc.config)
			}
			if !devicesEqual(req.Devices, tc.devices) {
				t.Errorf("devices %v, want %v", req.Devices, tc.devices)
			}
			if req.Source.Fingerprint != "fp" || req.Name != tc.args.Name {
				t.Errorf("source %+v", req.Source)
			}
		})
	}
}

func TestDeviceRoundTrip(t *testing.T) {
	tests := []struct {
		typ  instance.Type
		in   map[string]any
		want map[string]any // fields of the listed device that must match in
	}{
		{instance.TypeContainer, map[string]any{"dev_type": "DISK", "source": "/srv", "destination": "/data", "readonly": true, "storage_pool": "p"}, nil},
		{instance.TypeVM, map[string]any{"dev_type": "DISK", "source": "vol1", "io_bus": "NVME", "boot_priority": 2, "storage_pool": "p"}, nil},
		{instance.TypeVM, map[string]any{"dev_type": "CDROM", "source": "/i.iso", "boot_priority": 3}, nil},
		{instance.TypeContainer, map[string]any{"dev_type": "NIC", "network": "br0", "mac": "00:16:3e:00:00:02"}, map[string]any{"nic_type": "BRIDGED"}},
		{instance.TypeContainer, map[string]any{"dev_type": "NIC", "nic_type": "MACVLAN", "parent": "eth0"}, nil},
		{instance.TypeContainer, map[string]any{"dev_type": "PROXY", "source_proto": "TCP", "source_port": 80, "dest_proto": "UDP", "dest_port": 8080}, nil},
		{instance.TypeVM, map[string]any{"dev_type": "TPM", "path": "/dev/tpm0", "pathrm": "/dev/tpmrm0"}, nil},
		{instance.TypeContainer, map[string]any{"dev_type": "USB", "bus": 1, "dev": 2, "product_id": "0001", "vendor_id": "1d6b"}, nil},
		{instance.TypeContainer, map[string]any{"dev_type": "GPU", "gpu_type": "MIG", "mig_uuid": "u", "pci": "0000:01:00.0", "gid": 5}, nil},
		{instance.TypeVM, map[string]any{"dev_type": "PCI", "address": "0000:02:00.0"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.in["dev_type"].(string), func(t *testing.T) {
			in := map[string]any{}
			b, _ := json.Marshal(tc.in)
			_ = json.Unmarshal(b, &in)
			var errs validationErrors
			checked, ok := deviceUnion.check("d", in, &errs)
			if !ok {
				t.Fatal(errs)
			}
			var d deviceArgs
			if err := into(checked, &d); err != nil {
				t.Fatal(err)
			}
			name, dev, aerr := toDevice(d, tc.typ, instance.Devices{})
			if aerr != nil {
				t.Fatal(aerr.msg)
			}
			back, ok := fromDevice(name, dev)
			if !ok {
				t.Fatalf("%v not listed", dev)
			}
			bb, _ := json.Marshal(back)
			var got map[string]any
			_ = json.Unmarshal(bb, &got)
			for k, v := range in {
				if !reflect.DeepEqual(got[k], v) {
					t.Errorf("%s: %v, want %v (device %v)", k, got[k], v, dev)
				}
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s: %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

func TestEntryOf(t *testing.T) {
	f := instance.Full{Instance: instance.Instance{
		Name: "c", Type: instance.TypeContainer, Status: instance.StatusRunning,
		Config: map[string]string{"limits.cpu": "2"},
		ExpandedConfig: map[string]string{
			"limits.cpu": "2", "limits.memory": "512MiB", "boot.autostart": "true", "environment.A": "b",
			"image.os": "Debian", "image.release": "12", "image.architecture": "amd64", "image.requirements.secureboot": "false",
			"volatile.idmap.current": `[{"Isuid":true,"Isgid":false,"Hostid":1000000,"Nsid":0,"Maprange":65536},{"Isuid":false,"Isgid":true,"Hostid":1000000,"Nsid":0,"Maprange":65536}]`,
		},
		Devices:         instance.Devices{},
		ExpandedDevices: instance.Devices{"root": {"type": "disk", "path": "/", "pool": "default"}},
	}, State: instance.State{Status: instance.StatusRunning, Network: map[string]instance.NetworkState{
		"lo":   {Addresses: []instance.NetworkAddress{{Family: "inet", Address: "127.0.0.1", Netmask: "8", Scope: "local"}}},
		"eth0": {Addresses: []instance.NetworkAddress{{Family: "inet", Address: "10.0.0.5", Netmask: "24", Scope: "global"}, {Family: "inet6", Address: "fe80::1", Netmask: "64", Scope: "link"}, {Family: "inet6", Address: "fd00::5", Netmask: "64", Scope: "global"}}},
	}}}
	b, _ := json.Marshal(entryOf(f))
	var e map[string]any
	_ = json.Unmarshal(b, &e)
	want := map[string]any{
		"id": "c", "name": "c", "type": "CONTAINER", "status": "RUNNING", "cpu": "2", "memory": float64(512 << 20),
		"autostart": true, "environment": map[string]any{"A": "b"}, "vnc_enabled": false, "vnc_port": nil, "vnc_password": nil,
		"secure_boot": nil, "privileged_mode": false, "root_disk_size": nil, "root_disk_io_bus": nil, "storage_pool": "default",
		"aliases": []any{map[string]any{"type": "INET", "address": "10.0.0.5", "netmask": float64(24)}, map[string]any{"type": "INET6", "address": "fd00::5", "netmask": float64(64)}},
		"idmap":   map[string]any{"uid": map[string]any{"hostid": float64(1000000), "maprange": float64(65536), "nsid": float64(0)}, "gid": map[string]any{"hostid": float64(1000000), "maprange": float64(65536), "nsid": float64(0)}},
		"image":   map[string]any{"architecture": "amd64", "description": nil, "os": "Debian", "release": "12", "serial": nil, "type": nil, "variant": nil, "secureboot": false},
		"raw":     map[string]any{"config": map[string]any{"limits.cpu": "2"}, "devices": map[string]any{}},
	}
	for k, v := range want {
		if !reflect.DeepEqual(e[k], v) {
			t.Errorf("%s = %#v, want %#v", k, e[k], v)
		}
	}
	if len(e) != len(want) {
		t.Errorf("entry has %d fields, want %d: %v", len(e), len(want), e)
	}
	vm := f
	vm.Type = instance.TypeVM
	vm.ExpandedDevices = instance.Devices{"root": {"type": "disk", "path": "/", "pool": "p", "size": "12GiB", "io.bus": "nvme"}, "vnc": {"type": "display", "protocol": "vnc", "password": "pw"}}
	vm.ExpandedConfig = map[string]string{"volatile.vnc.port": "5905"}
	b, _ = json.Marshal(entryOf(vm))
	e = nil
	_ = json.Unmarshal(b, &e)
	for k, v := range map[string]any{"type": "VM", "vnc_enabled": true, "vnc_port": float64(5905), "vnc_password": "pw", "secure_boot": true,
		"privileged_mode": nil, "idmap": nil, "root_disk_size": float64(12), "root_disk_io_bus": "NVME", "storage_pool": "p"} {
		if !reflect.DeepEqual(e[k], v) {
			t.Errorf("vm %s = %#v, want %#v", k, e[k], v)
		}
	}
}

func TestStatusOf(t *testing.T) {
	for st, want := range map[instance.Status]string{
		instance.StatusRunning: "RUNNING", instance.StatusStopped: "STOPPED", instance.StatusStarting: "STARTING",
		instance.StatusStopping: "STOPPING", instance.StatusFreezing: "FREEZING", instance.StatusFrozen: "FROZEN",
		instance.StatusError: "ERROR", 0: "UNKNOWN",
	} {
		if got := statusOf(st); got != want {
			t.Errorf("%v: %s, want %s", st, got, want)
		}
	}
}
