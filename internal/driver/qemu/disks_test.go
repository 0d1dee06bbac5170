package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestDiskKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		same bool // the key is the name
	}{
		{"root", true},
		{"data-1.vol_2", true},
		{"12345678901234567890", true},
		{"123456789012345678901", false}, // over a serial's 20 bytes
		{"with space", false},
		{"comma,opt=x", false},
		{"slash/x", false},
		{"ünïcode", false},
		{"..", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := diskKey(tc.name)
			if (k == tc.name) != tc.same {
				t.Fatalf("key %q of %q", k, tc.name)
			}
			if len(k) > keyLen || !safeName(k) {
				t.Fatalf("key %q is not a safe serial", k)
			}
			if diskKey(tc.name) != k {
				t.Fatal("key not stable")
			}
		})
	}
	if diskKey("a long disk name number one") == diskKey("a long disk name number two") {
		t.Fatal("two long names share a key")
	}
}

func TestCheckDisks(t *testing.T) {
	root := driver.Disk{Name: "root", Path: "/p/root.qcow2", Format: "qcow2"}
	with := func(f func(*driver.Disk)) []driver.Disk {
		d := driver.Disk{Name: "data", Path: "/p/data.raw", Format: "raw", Bus: "nvme"}
		f(&d)
		return []driver.Disk{d}
	}
	many := make([]driver.Disk, maxDisks+1)
	for i := range many {
		many[i] = driver.Disk{Name: "d" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Path: "/p/x", Format: "raw"}
	}
	for _, tc := range []struct {
		name  string
		extra []driver.Disk
		want  string // in the error; "" is valid
	}{
		{"root alone", nil, ""},
		{"good extra", with(func(*driver.Disk) {}), ""},
		{"scsi", with(func(d *driver.Disk) { d.Bus = "virtio-scsi" }), ""},
		{"default bus", with(func(d *driver.Disk) { d.Bus = "" }), ""},
		{"limits", with(func(d *driver.Disk) { d.Limits = driver.IOLimits{ReadBps: 1 << 20, WriteIops: 10} }), ""},
		{"no name", with(func(d *driver.Disk) { d.Name = "" }), "without a name"},
		{"bad format", with(func(d *driver.Disk) { d.Format = "vmdk" }), "format"},
		{"bad bus", with(func(d *driver.Disk) { d.Bus = "ide" }), "bus"},
		{"relative path", with(func(d *driver.Disk) { d.Path = "data.raw" }), "not absolute"},
		{"negative limit", with(func(d *driver.Disk) { d.Limits.WriteBps = -1 }), "negative"},
		{"name of the root", with(func(d *driver.Disk) { d.Name = "root" }), "two disks"},
		{"too many", many, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkDisks(root, tc.extra)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v, want an invalid-argument one containing %q", err, tc.want)
			}
		})
	}
}

// TestDiskArgs checks the command line of each bus, the throttling, the
// ports and the SCSI controller, without booting.
func TestDiskArgs(t *testing.T) {
	disks := []driver.Disk{
		{Name: "root", Path: "/p/root,1.qcow2", Format: "qcow2"},
		{Name: "fast", Path: "/dev/loop7", Format: "raw", Bus: "nvme", ReadOnly: true},
		{Name: "slow", Path: "/p/slow.raw", Format: "raw", Limits: driver.IOLimits{ReadBps: 1000, WriteIops: 5}},
		{Name: "a", Path: "/p/a.raw", Format: "raw", Bus: "virtio-scsi"},
		{Name: "b", Path: "/p/b.qcow2", Format: "qcow2", Bus: "virtio-scsi"},
	}
	l := newDiskLayout(disks[0], disks[1:])
	args := diskArgs(disks, []bool{false, true, false, false, false}, l, true, false)

	wantPorts := []string{}
	for i := range 2 + hotplugDiskPorts {
		wantPorts = append(wantPorts, "pcie-root-port,id=diskport"+string(rune('0'+i))+",bus=pcie.0,chassis="+[]string{"128", "129", "130", "131", "132", "133"}[i])
	}
	devices := argsAfter(args, "-device")
	if !slices.Equal(devices[:len(wantPorts)], wantPorts) {
		t.Fatalf("ports %v, want %v", devices[:len(wantPorts)], wantPorts)
	}
	wantDevices := []string{
		"virtio-scsi-pci,id=scsi0",
		"virtio-blk-device,id=disk-root,drive=d-root,serial=root",
		"nvme,id=disk-fast,drive=d-fast,serial=fast,bus=diskport0",
		"virtio-blk-pci,id=disk-slow,drive=t-slow,serial=slow,bus=diskport1",
		"scsi-hd,bus=scsi0.0,channel=0,scsi-id=0,lun=0,id=disk-a,drive=d-a,serial=a",
		"scsi-hd,bus=scsi0.0,channel=0,scsi-id=1,lun=0,id=disk-b,drive=d-b,serial=b",
	}
	if got := devices[len(wantPorts):]; !slices.Equal(got, wantDevices) {
		t.Fatalf("devices\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantDevices, "\n"))
	}

	var nodes []map[string]any
	for _, b := range argsAfter(args, "-blockdev") {
		var n map[string]any
		if err := json.Unmarshal([]byte(b), &n); err != nil {
			t.Fatalf("-blockdev %s: %v", b, err)
		}
		nodes = append(nodes, n)
	}
	if len(nodes) != 5 {
		t.Fatalf("%d -blockdev, want 5", len(nodes))
	}
	file := func(n map[string]any) map[string]any { return n["file"].(map[string]any) }
	if n := nodes[0]; n["driver"] != "qcow2" || file(n)["filename"] != "/p/root,1.qcow2" || file(n)["driver"] != "file" || n["read-only"] != false {
		t.Errorf("root node %v", n)
	}
	if n := nodes[1]; n["driver"] != "raw" || file(n)["driver"] != "host_device" || n["read-only"] != true || file(n)["read-only"] != true {
		t.Errorf("read-only block device node %v", n)
	}
	if n := nodes[2]; n["driver"] != "throttle" || n["throttle-group"] != "tg-slow" || file(n)["node-name"] != "d-slow" || file(file(n))["filename"] != "/p/slow.raw" {
		t.Errorf("throttled node %v", n)
	}
	objects := argsAfter(args, "-object")
	if len(objects) != 1 {
		t.Fatalf("objects %v, want the one throttle group", objects)
	}
	var group struct {
		Type   string           `json:"qom-type"`
		ID     string           `json:"id"`
		Limits map[string]int64 `json:"limits"`
	}
	if err := json.Unmarshal([]byte(objects[0]), &group); err != nil {
		t.Fatal(err)
	}
	if group.Type != "throttle-group" || group.ID != "tg-slow" || len(group.Limits) != 2 || group.Limits["bps-read"] != 1000 || group.Limits["iops-write"] != 5 {
		t.Errorf("throttle group %+v", group)
	}

	// q35 (or firmware): the root on PCI, firmware's boot disk; no
	// controller without a SCSI disk.
	l = newDiskLayout(disks[0], nil)
	args = diskArgs(disks[:1], []bool{false}, l, false, true)
	if got := argsAfter(args, "-device"); got[len(got)-1] != "virtio-blk-pci,id=disk-root,drive=d-root,serial=root,bootindex=0" || slices.Contains(got, "virtio-scsi-pci,id=scsi0") {
		t.Errorf("q35 devices %v", got)
	}
	// An NVMe root on the machine's bus.
	nvme := driver.Disk{Name: "root", Path: "/p/r", Format: "raw", Bus: "nvme"}
	args = diskArgs([]driver.Disk{nvme}, []bool{false}, newDiskLayout(nvme, nil), true, false)
	if got := argsAfter(args, "-device"); got[len(got)-1] != "nvme,id=disk-root,drive=d-root,serial=root" {
		t.Errorf("nvme root %v", got)
	}
}

func TestDiskLayout(t *testing.T) {
	root := driver.Disk{Name: "root", Format: "qcow2"}
	blk := driver.Disk{Name: "blk", Format: "raw"}
	scsi := driver.Disk{Name: "s", Format: "raw", Bus: "virtio-scsi"}
	l := newDiskLayout(root, []driver.Disk{blk})
	if l.SCSI != scsiNone || l.Ports != 1+hotplugDiskPorts || l.freePort() != 1 {
		t.Fatalf("layout %+v, free port %d", l, l.freePort())
	}
	// A controller plugged while running takes a port.
	l.SCSI = 1
	l.Disks = append(l.Disks, diskPlace{Name: "s", Key: "s", Bus: busVirtioSCSI, Port: onMachine})
	if l.freePort() != 2 || l.freeTarget() != 1 {
		t.Fatalf("free port %d target %d", l.freePort(), l.freeTarget())
	}
	full := &diskLayout{Ports: 1, SCSI: 0}
	if full.freePort() != noPortsFree {
		t.Fatal("a port under the controller counted free")
	}

	for _, tc := range []struct {
		name  string
		extra []driver.Disk
		saved *diskLayout
		kept  bool
	}{
		{"boot", []driver.Disk{blk, scsi}, nil, false},
		{"restore the same disks", []driver.Disk{scsi, blk}, l, true},
		{"restore with a disk less", []driver.Disk{blk}, l, false},
		{"restore with a disk on another bus", []driver.Disk{{Name: "blk", Format: "raw", Bus: "nvme"}, scsi}, l, false},
		{"restore with limits added", []driver.Disk{{Name: "blk", Format: "raw", Limits: driver.IOLimits{ReadBps: 1}}, scsi}, l, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := layoutFor(root, tc.extra, tc.saved)
			if (got == tc.saved) != tc.kept {
				t.Fatalf("layout %+v: kept %v, want %v", got, got == tc.saved, tc.kept)
			}
		})
	}
}

func TestShares(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 32)
	if tag := shareTag(driver.Mount{Name: long}); len(tag) > tagLen || !safeName(tag) || strings.HasPrefix(tag, "xxx") {
		t.Errorf("tag of a long name %q", tag)
	}
	if tag := shareTag(driver.Mount{Name: strings.Repeat("x", 31)}); tag != strings.Repeat("x", 31) {
		t.Errorf("a 31-byte name became %q", tag)
	}
	if tag := shareTag(driver.Mount{Destination: "/mnt/x"}); tag == "" || !safeName(tag) {
		t.Errorf("tag of an unnamed mount %q", tag)
	}
	good := driver.Mount{Type: "bind", Source: dir, Destination: "/mnt/share", Name: "share", ReadOnly: true}
	with := func(f func(*driver.Mount)) []driver.Mount {
		m := good
		f(&m)
		return []driver.Mount{m}
	}
	for _, tc := range []struct {
		name   string
		mounts []driver.Mount
		kind   error // nil: valid
		want   string
	}{
		{"good", []driver.Mount{good}, nil, ""},
		{"two", []driver.Mount{good, {Source: dir, Destination: "/b", Name: "b"}}, nil, ""},
		{"overlay", with(func(m *driver.Mount) { m.Type = "overlay" }), errdefs.ErrInvalidArgument, "type"},
		{"relative source", with(func(m *driver.Mount) { m.Source = "x" }), errdefs.ErrInvalidArgument, "not absolute"},
		{"missing source", with(func(m *driver.Mount) { m.Source = filepath.Join(dir, "nope") }), errdefs.ErrNotFound, "does not exist"},
		{"file source", with(func(m *driver.Mount) { m.Source = file }), errdefs.ErrInvalidArgument, "not a directory"},
		{"at the root", with(func(m *driver.Mount) { m.Destination = "/" }), errdefs.ErrInvalidArgument, "other than /"},
		{"relative destination", with(func(m *driver.Mount) { m.Destination = "mnt" }), errdefs.ErrInvalidArgument, "absolute"},
		{"same tag", []driver.Mount{good, {Source: dir, Destination: "/b", Name: "share"}}, errdefs.ErrInvalidArgument, "same 9p tag"},
		{"same place", []driver.Mount{good, {Source: dir, Destination: "/mnt/share/", Name: "b"}}, errdefs.ErrInvalidArgument, "two mounts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkMounts(tc.mounts)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %v containing %q", err, tc.kind, tc.want)
			}
		})
	}

	args := shareArgs([]driver.Mount{
		{Source: "/srv/a,b", Destination: "/mnt/a", Name: "a", ReadOnly: true},
		{Source: "/srv/c", Destination: "/mnt/c", Name: "c"},
	})
	want := []string{
		"-fsdev", "local,id=fs-a,path=/srv/a,,b,security_model=passthrough,multidevs=remap,readonly=on",
		"-device", "virtio-9p-pci,id=share-a,fsdev=fs-a,mount_tag=a",
		"-fsdev", "local,id=fs-c,path=/srv/c,security_model=passthrough,multidevs=remap",
		"-device", "virtio-9p-pci,id=share-c,fsdev=fs-c,mount_tag=c",
	}
	if !slices.Equal(args, want) {
		t.Fatalf("share args\n%q\nwant\n%q", args, want)
	}
	am := agentMounts([]driver.Mount{{Source: dir, Destination: "/mnt/x/", Name: "x", ReadOnly: true}})
	if len(am) != 1 || am[0].Tag != "x" || am[0].Path != "/mnt/x" || !am[0].ReadOnly {
		t.Fatalf("agent mounts %+v", am)
	}
}

// TestStartRefusesBadDisks: a bad disk or mount fails the start before
// anything is made on the host.
func TestStartRefusesBadDisks(t *testing.T) {
	dir := t.TempDir()
	d, err := New(Config{Dir: filepath.Join(dir, "vms"), Agent: "/nonexistent"})
	if err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(dir, "root.qcow2")
	if err := os.WriteFile(rootFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	root := &driver.Disk{Name: "root", Path: rootFile, Format: "qcow2"}
	for _, tc := range []struct {
		name string
		spec driver.Spec
		kind error
	}{
		{"no root", driver.Spec{ID: "h1"}, errdefs.ErrInvalidArgument},
		{"root without format", driver.Spec{ID: "h1", Root: driver.Root{Disk: &driver.Disk{Path: rootFile}}}, errdefs.ErrInvalidArgument},
		{"missing root file", driver.Spec{ID: "h1", Root: driver.Root{Disk: &driver.Disk{Path: rootFile + "x", Format: "raw"}}}, errdefs.ErrNotFound},
		{"missing extra disk", driver.Spec{ID: "h1", Root: driver.Root{Disk: root},
			Disks: []driver.Disk{{Name: "d", Path: filepath.Join(dir, "nope"), Format: "raw"}}}, errdefs.ErrNotFound},
		{"bad bus", driver.Spec{ID: "h1", Root: driver.Root{Disk: root},
			Disks: []driver.Disk{{Name: "d", Path: rootFile, Format: "raw", Bus: "floppy"}}}, errdefs.ErrInvalidArgument},
		{"missing share", driver.Spec{ID: "h1", Root: driver.Root{Disk: root},
			Mounts: []driver.Mount{{Source: filepath.Join(dir, "nope"), Destination: "/mnt"}}}, errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Start(context.Background(), tc.spec)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("start: %v, want %v", err, tc.kind)
			}
			if _, err := os.Stat(filepath.Join(dir, "vms", "h1")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("instance dir left behind: %v", err)
			}
		})
	}
}
