package project

import (
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestCheckRestrictions(t *testing.T) {
	restricted := func(kv ...string) Project {
		p := Project{Name: "r", Config: map[string]string{"restricted": "true", FeatureProfiles: "true"}}
		for i := 0; i < len(kv); i += 2 {
			p.Config[kv[i]] = kv[i+1]
		}
		return p
	}
	cfg := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	dev := func(kv ...string) map[string]map[string]string { return map[string]map[string]string{"d": cfg(kv...)} }
	open := Project{Name: "open", Config: map[string]string{}}

	tests := []struct {
		name    string
		p       Project
		typ     string
		config  map[string]string
		devices map[string]map[string]string
		says    string // "" = allowed
	}{
		{"unrestricted allows privileged", open, TypeContainer, cfg("security.privileged", "true"), dev("type", "unix-char"), ""},
		{"privileged blocked by default", restricted(), TypeContainer, cfg("security.privileged", "true"), nil, "privileged containers"},
		{"privileged allowed", restricted("restricted.containers.privilege", "allow"), TypeContainer, cfg("security.privileged", "true"), nil, ""},
		{"privileged=false fine", restricted(), TypeContainer, cfg("security.privileged", "false"), nil, ""},
		{"isolated needs isolation", restricted("restricted.containers.privilege", "isolated"), TypeContainer, cfg(), nil, "non-isolated"},
		{"isolated ok", restricted("restricted.containers.privilege", "isolated"), TypeContainer, cfg("security.idmap.isolated", "true"), nil, ""},
		{"nesting blocked", restricted(), TypeContainer, cfg("security.nesting", "true"), nil, "nesting"},
		{"nesting allowed", restricted("restricted.containers.nesting", "allow"), TypeContainer, cfg("security.nesting", "true"), nil, ""},
		{"nesting is a container key", restricted(), TypeVirtualMachine, cfg("security.nesting", "true"), nil, ""},
		{"ct lowlevel", restricted(), TypeContainer, cfg("raw.lxc", "x"), nil, "restricted.containers.lowlevel"},
		{"ct lowlevel allowed", restricted("restricted.containers.lowlevel", "allow"), TypeContainer, cfg("raw.lxc", "x"), nil, ""},
		{"vm lowlevel", restricted(), TypeVirtualMachine, cfg("raw.qemu", "-x"), nil, "restricted.virtual-machines.lowlevel"},
		{"raw.qemu on a container is not vm's", restricted(), TypeContainer, cfg("raw.qemu", "-x"), nil, ""},
		{"profile gets both", restricted("restricted.containers.lowlevel", "allow"), TypeProfile, cfg("raw.qemu", "-x"), nil, "virtual-machines.lowlevel"},
		{"interception blocked", restricted(), TypeContainer, cfg("security.syscalls.intercept.mknod", "true"), nil, "interception"},
		{"interception allow", restricted("restricted.containers.interception", "allow"), TypeContainer, cfg("security.syscalls.intercept.mknod", "true"), nil, ""},
		{"raw.idmap outside", restricted("restricted.idmap.uid", "1000-1999"), TypeContainer, cfg("raw.idmap", "uid 2000 0"), nil, "raw.idmap"},
		{"raw.idmap inside", restricted("restricted.idmap.uid", "1000-1999", "restricted.idmap.gid", "1000"), TypeContainer, cfg("raw.idmap", "uid 1000-1009 0-9\ngid 1000 0"), nil, ""},
		{"raw.idmap both needs gid", restricted("restricted.idmap.uid", "1000"), TypeContainer, cfg("raw.idmap", "both 1000 0"), nil, "raw.idmap"},
		{"unix-char", restricted(), TypeContainer, nil, dev("type", "unix-char", "path", "/dev/x"), "unix-char devices"},
		{"unix-block allowed", restricted("restricted.devices.unix-block", "allow"), TypeContainer, nil, dev("type", "unix-block"), ""},
		{"gpu", restricted(), TypeVirtualMachine, nil, dev("type", "gpu"), "gpu"},
		{"usb", restricted(), TypeVirtualMachine, nil, dev("type", "usb"), "usb"},
		{"pci", restricted(), TypeVirtualMachine, nil, dev("type", "pci"), "pci"},
		{"proxy", restricted(), TypeContainer, nil, dev("type", "proxy"), "proxy"},
		{"nic unmanaged", restricted(), TypeContainer, nil, dev("type", "nic", "nictype", "bridged", "parent", "br0"), "managed network"},
		{"nic managed", restricted(), TypeContainer, nil, dev("type", "nic", "network", "hangarbr0"), ""},
		{"nic blocked", restricted("restricted.devices.nic", "block"), TypeContainer, nil, dev("type", "nic", "network", "n"), "network devices"},
		{"root disk always", restricted("restricted.devices.disk", "block"), TypeContainer, nil, dev("type", "disk", "path", "/", "pool", "default"), ""},
		{"host path disk", restricted(), TypeContainer, nil, dev("type", "disk", "path", "/mnt", "source", "/srv"), "not backed by a storage pool"},
		{"pool disk", restricted(), TypeContainer, nil, dev("type", "disk", "path", "/mnt", "pool", "p", "source", "vol"), ""},
		{"disk paths inside", restricted("restricted.devices.disk", "allow", "restricted.devices.disk.paths", "/srv"), TypeContainer, nil, dev("type", "disk", "path", "/mnt", "source", "/srv/a"), ""},
		{"disk paths outside", restricted("restricted.devices.disk", "allow", "restricted.devices.disk.paths", "/srv"), TypeContainer, nil, dev("type", "disk", "path", "/mnt", "source", "/srvx"), "outside"},
		{"disk paths dotdot", restricted("restricted.devices.disk", "allow", "restricted.devices.disk.paths", "/srv"), TypeContainer, nil, dev("type", "disk", "path", "/mnt", "source", "/srv/../etc"), "outside"},
	}
	for _, tt := range tests {
		err := CheckRestrictions(tt.p, tt.typ, tt.config, tt.devices)
		if tt.says == "" {
			wantErr(t, tt.name, err, nil)
		} else {
			wantErr(t, tt.name, err, errdefs.ErrForbidden, tt.says, `project "r"`)
		}
	}

	for _, tt := range []struct {
		p         Project
		snap, bak bool
	}{
		{open, true, true},
		{restricted(), false, false},
		{restricted("restricted.snapshots", "allow"), true, false},
		{restricted("restricted.backups", "allow"), false, true},
	} {
		if got := AllowSnapshot(tt.p) == nil; got != tt.snap {
			t.Errorf("AllowSnapshot(%v) allowed = %v, want %v", tt.p.Config, got, tt.snap)
		}
		if got := AllowBackup(tt.p) == nil; got != tt.bak {
			t.Errorf("AllowBackup(%v) allowed = %v, want %v", tt.p.Config, got, tt.bak)
		}
	}
}
