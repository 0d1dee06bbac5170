package qemu

import (
	"reflect"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
)

// TestDisplayArgs: each display is a video device of its own with a
// server bound to it on loopback; passwords go over QMP, never on the
// command line.
func TestDisplayArgs(t *testing.T) {
	tests := []struct {
		name string
		ds   []driver.Display
		q35  bool
		args []string
		pw   []map[string]any
	}{
		{"none", nil, true, nil, nil},
		{"one VNC on q35", []driver.Display{{Name: "screen", Protocol: "vnc", Port: 5901, Width: 1024, Height: 768}}, true,
			[]string{"-device", "virtio-vga,id=video-screen,xres=1024,yres=768", "-vnc", "127.0.0.1:1,id=vnc-screen,display=video-screen"}, nil},
		{"one VNC on microvm", []driver.Display{{Name: "screen", Protocol: "vnc", Port: 6000}}, false,
			[]string{"-device", "virtio-gpu-pci,id=video-screen", "-vnc", "127.0.0.1:100,id=vnc-screen,display=video-screen"}, nil},
		{"two VNC, one with a password", []driver.Display{{Name: "a", Protocol: "vnc", Port: 5901}, {Name: "b", Protocol: "vnc", Port: 5902, Password: "pw"}}, true,
			[]string{"-device", "virtio-vga,id=video-a", "-vnc", "127.0.0.1:1,id=vnc-a,display=video-a",
				"-device", "virtio-gpu-pci,id=video-b", "-vnc", "127.0.0.1:2,id=vnc-b,display=video-b,password=on"},
			[]map[string]any{{"protocol": "vnc", "password": "pw", "display": "vnc-b"}}},
		{"SPICE without password", []driver.Display{{Name: "s", Protocol: "spice", Port: 3000}}, true,
			[]string{"-device", "virtio-vga,id=video-s", "-spice", "addr=127.0.0.1,port=3000,disable-ticketing=on"}, nil},
		{"SPICE with password", []driver.Display{{Name: "s", Protocol: "spice", Port: 3000, Password: "long password"}}, true,
			[]string{"-device", "virtio-vga,id=video-s", "-spice", "addr=127.0.0.1,port=3000"},
			[]map[string]any{{"protocol": "spice", "password": "long password"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkDisplays(tt.ds); err != nil {
				t.Fatal(err)
			}
			args := displayArgs(tt.ds, tt.q35)
			if !reflect.DeepEqual(args, tt.args) {
				t.Errorf("args\n got %q\nwant %q", args, tt.args)
			}
			if pw := displayPasswords(tt.ds); !reflect.DeepEqual(pw, tt.pw) {
				t.Errorf("passwords %v, want %v", pw, tt.pw)
			}
			for _, d := range tt.ds {
				if d.Password != "" && strings.Contains(strings.Join(args, " "), d.Password) {
					t.Errorf("password %q on the command line", d.Password)
				}
			}
		})
	}
}

func TestCheckDisplays(t *testing.T) {
	tests := []struct {
		name string
		ds   []driver.Display
		want string
	}{
		{"no name", []driver.Display{{Protocol: "vnc"}}, "without a name"},
		{"same name", []driver.Display{{Name: "a"}, {Name: "a"}}, "twice"},
		{"low VNC port", []driver.Display{{Name: "a", Port: 5000}}, "5900"},
		{"long VNC password", []driver.Display{{Name: "a", Password: "123456789"}}, "at most 8"},
		{"two SPICE", []driver.Display{{Name: "a", Protocol: "spice"}, {Name: "b", Protocol: "spice"}}, "one SPICE"},
		{"bad protocol", []driver.Display{{Name: "a", Protocol: "rdp"}}, "protocol"},
		{"same port", []driver.Display{{Name: "a", Port: 5901}, {Name: "b", Port: 5901}}, "5901"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDisplays(tt.ds)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// TestVMDeviceDisks: CD-ROMs are read-only scsi-cd, USB disks usb-storage
// on the xhci controller, boot priority orders firmware's boot disks.
func TestVMDeviceDisks(t *testing.T) {
	root := driver.Disk{Name: "root", Path: "/r.qcow2", Format: "qcow2"}
	cd := normalDisk(driver.Disk{Name: "cd", Path: "/x.iso", Format: "raw", CDROM: true, BootPriority: 5})
	usb := driver.Disk{Name: "stick", Path: "/u.raw", Format: "raw", Bus: busUSB, ReadOnly: true}
	hi := driver.Disk{Name: "hi", Path: "/h.raw", Format: "raw", BootPriority: 9}
	if err := checkDisks(root, []driver.Disk{cd, usb, hi}); err != nil {
		t.Fatal(err)
	}
	disks := []driver.Disk{root, cd, usb, hi}
	l := newDiskLayout(root, disks[1:])
	args := strings.Join(diskArgs(disks, make([]bool, 4), l, false, true), " ")
	for _, want := range []string{
		"virtio-scsi-pci,id=scsi0",
		"qemu-xhci,id=usb0",
		"scsi-cd,bus=scsi0.0,channel=0,scsi-id=0,lun=0,id=disk-cd,drive=d-cd,serial=cd,bootindex=1",
		"usb-storage,bus=usb0.0,id=disk-stick,drive=d-stick,serial=stick -",
		"id=disk-hi,drive=d-hi,serial=hi,bus=diskport0,bootindex=0",
		"id=disk-root,drive=d-root,serial=root,bootindex=2",
		`"filename":"/x.iso","node-name":"f-cd","read-only":true},"node-name":"d-cd","read-only":true`,
		`"filename":"/u.raw","node-name":"f-stick","read-only":true},"node-name":"d-stick","read-only":true`,
	} {
		if !strings.Contains(args, want) {
			t.Errorf("args lack %q:\n%s", want, args)
		}
	}
	// No priorities: the root boots, as before.
	if o := bootOrder([]driver.Disk{root, usb}); !reflect.DeepEqual(o, map[string]int{"root": 0}) {
		t.Errorf("boot order %v", o)
	}
	for _, bad := range []driver.Disk{
		{Name: "cd", Path: "/x.iso", Format: "raw", CDROM: true, Bus: busNVMe},
		{Name: "x", Path: "/x", Format: "raw", Bus: "firewire"},
		{Name: "x", Path: "/x", Format: "raw", BootPriority: -1},
	} {
		if err := checkDisk(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

func TestTPMArgs(t *testing.T) {
	args := strings.Join(tpmArgs("/run/vm/1"), " ")
	if args != "-chardev socket,id=tpmchr,path=/run/vm/1/tpm.sock -tpmdev emulator,id=tpm0,chardev=tpmchr -device tpm-crb,tpmdev=tpm0" {
		t.Errorf("tpm args %s", args)
	}
	sw := strings.Join(swtpmArgs("/run/vm/1", "/run/vm/1/tpm-t"), " ")
	for _, want := range []string{"socket --tpm2", "dir=/run/vm/1/tpm-t", "type=unixio,path=/run/vm/1/tpm.sock", "--terminate"} {
		if !strings.Contains(sw, want) {
			t.Errorf("swtpm args lack %q: %s", want, sw)
		}
	}
	if d := tpmStateDir("/run/vm/1", driver.TPM{Name: "tpm"}); d != "/run/vm/1/tpm-tpm" {
		t.Errorf("state dir %s", d)
	}
}
