package device

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestValidateVMDevices: display, tpm, CD-ROM and USB disk devices key by
// key, for VMs and containers.
func TestValidateVMDevices(t *testing.T) {
	type devs = map[string]map[string]string
	iso := filepath.Join(t.TempDir(), "x.iso")
	if err := os.WriteFile(iso, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	disp := func(kv ...string) map[string]string {
		d := map[string]string{"type": "display"}
		for i := 0; i < len(kv); i += 2 {
			d[kv[i]] = kv[i+1]
		}
		return d
	}
	tests := []struct {
		name  string
		devs  devs
		vm    bool
		kind  error
		words []string
	}{
		{"display", devs{"d": disp()}, true, nil, nil},
		{"display every key", devs{"d": disp("protocol", "vnc", "port", "5901", "password", "12345678", "width", "1024", "height", "768", "ppi", "96")}, true, nil, nil},
		{"spice display", devs{"d": disp("protocol", "spice", "port", "2000", "password", "a long spice password")}, true, nil, nil},
		{"display in a container", devs{"d": disp()}, false, errInvalid, []string{`"d"`, "virtual machines only"}},
		{"VNC password too long", devs{"d": disp("password", "123456789")}, true, errInvalid, []string{"password", "at most 8"}},
		{"bad protocol", devs{"d": disp("protocol", "rdp")}, true, errInvalid, []string{"protocol"}},
		{"port too low", devs{"d": disp("port", "80")}, true, errInvalid, []string{"port"}},
		{"VNC port below 5900", devs{"d": disp("port", "5000")}, true, errInvalid, []string{"5900"}},
		{"width alone", devs{"d": disp("width", "800")}, true, errInvalid, []string{"width and height"}},
		{"huge width", devs{"d": disp("width", "100000", "height", "600")}, true, errInvalid, []string{"width"}},
		{"unknown display key", devs{"d": disp("colour", "red")}, true, errInvalid, []string{`"colour"`}},
		{"two spice displays", devs{"a": disp("protocol", "spice"), "b": disp("protocol", "spice")}, true, errInvalid, []string{"one SPICE"}},
		{"two displays one port", devs{"a": disp("port", "5901"), "b": disp("port", "5901")}, true, errInvalid, []string{"5901"}},
		{"tpm", devs{"t": {"type": "tpm"}}, true, nil, nil},
		{"tpm with paths", devs{"t": {"type": "tpm", "path": "/dev/tpm0", "pathrm": "/dev/tpmrm0"}}, true, nil, nil},
		{"tpm in a container", devs{"t": {"type": "tpm", "path": "/dev/tpm0"}}, false, errInvalid, []string{`"t"`, "tpm"}},
		{"two tpms", devs{"a": {"type": "tpm"}, "b": {"type": "tpm"}}, true, errInvalid, []string{"at most one"}},
		{"tpm bad key", devs{"t": {"type": "tpm", "bogus": "1"}}, true, errInvalid, []string{`"bogus"`}},
		{"tpm relative path", devs{"t": {"type": "tpm", "path": "dev/tpm0"}}, true, errInvalid, []string{"path"}},
		{"CD-ROM", devs{"cd": {"type": "disk", "source": iso, "boot.priority": "10"}}, true, nil, nil},
		{"CD-ROM in a container", devs{"cd": {"type": "disk", "source": iso, "path": "/mnt"}}, false, errInvalid, []string{"ISO", "virtual machine"}},
		{"CD-ROM with a path", devs{"cd": {"type": "disk", "source": iso, "path": "/mnt"}}, true, errInvalid, []string{"CD-ROM", "path"}},
		{"CD-ROM on nvme", devs{"cd": {"type": "disk", "source": iso, "io.bus": "nvme"}}, true, errInvalid, []string{"io.bus"}},
		{"USB disk", devs{"u": {"type": "disk", "source": "/etc/hostname", "io.bus": "usb", "readonly": "true"}}, true, nil, nil},
		{"USB in a container", devs{"u": {"type": "disk", "source": "/etc", "path": "/mnt", "io.bus": "usb"}}, false, errInvalid, []string{"io.bus"}},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, e.m.Validate(context.Background(), tt.devs, tt.vm), tt.kind, tt.words...)
		})
	}
}

// TestStartDisplays: ports come from the device, else the one recorded
// while free, else a free one, and are recorded; a fixed port in use is
// an error.
func TestStartDisplays(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	free, err := pickPort(nil)
	if err != nil {
		t.Fatal(err)
	}
	in := Instance{VM: true, Config: map[string]string{"volatile.b.port": strconv.Itoa(free), "volatile.c.port": strconv.Itoa(busy)}}
	devs := map[string]map[string]string{
		"a": {"type": "display", "port": "5999", "width": "800", "height": "600", "password": "pw"},
		"b": {"type": "display"},
		"c": {"type": "display", "protocol": "spice"},
	}
	vol := map[string]string{}
	ds, err := startDisplays(in, devs, vol)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 3 || ds[0].Port != 5999 || ds[0].Width != 800 || ds[0].Password != "pw" || ds[0].Protocol != "vnc" {
		t.Fatalf("displays %+v", ds)
	}
	if ds[1].Port != free {
		t.Errorf("b on %d, want its recorded %d", ds[1].Port, free)
	}
	if ds[2].Port == busy || ds[2].Port == 0 || ds[2].Protocol != "spice" {
		t.Errorf("c on %d (recorded %d is busy)", ds[2].Port, busy)
	}
	for _, d := range ds {
		if vol["volatile."+d.Name+".port"] != strconv.Itoa(d.Port) {
			t.Errorf("volatile %v for %+v", vol, d)
		}
	}
	devs["a"]["port"] = strconv.Itoa(busy)
	if _, err := startDisplays(in, devs, map[string]string{}); err == nil {
		t.Fatal("a fixed port in use: no error")
	}
	if _, err := startDisplays(Instance{}, devs, map[string]string{}); err == nil {
		t.Fatal("displays of a container: no error")
	}
}
