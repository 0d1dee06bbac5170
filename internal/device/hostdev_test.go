package device

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

var errNotImplemented = errdefs.ErrNotImplemented

// fakeSysfs builds a sysfs tree in a temporary directory as the kernel
// lays it out: attribute files, driver and iommu_group links, interfaces
// beside devices, hubs, bridges, a DRM card linked to its PCI function.
func fakeSysfs(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	file := func(p, v string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(p, target string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	usb := func(name string, attrs map[string]string) {
		for k, v := range attrs {
			file(filepath.Join("bus/usb/devices", name, k), v)
		}
	}
	usb("usb1", map[string]string{"busnum": "1", "devnum": "1", "idVendor": "1d6b", "idProduct": "0002", "bDeviceClass": "09", "speed": "480", "product": "EHCI Host Controller"})
	usb("1-1", map[string]string{"busnum": "1", "devnum": "2", "idVendor": "046D", "idProduct": "c52b", "bDeviceClass": "00", "speed": "12", "manufacturer": "Logitech", "product": "USB Receiver"})
	usb("1-1:1.0", map[string]string{"bInterfaceClass": "03", "bInterfaceNumber": "00"})
	usb("1-2", map[string]string{"busnum": "1", "devnum": "3", "idVendor": "05e3", "idProduct": "0608", "bDeviceClass": "09", "speed": "480"})
	usb("2-3", map[string]string{"busnum": "2", "devnum": "5", "idVendor": "0781", "idProduct": "5583", "bDeviceClass": "00", "speed": "5000"})
	usb("2-4", map[string]string{"busnum": "2", "devnum": "6", "idVendor": "zz", "idProduct": "5583"}) // unreadable IDs: skipped

	pci := func(addr, class, vendor, device, driver, group string) {
		d := filepath.Join("bus/pci/devices", addr)
		file(filepath.Join(d, "class"), class)
		file(filepath.Join(d, "vendor"), vendor)
		file(filepath.Join(d, "device"), device)
		if driver != "" {
			link(filepath.Join(d, "driver"), "../../../bus/pci/drivers/"+driver)
		}
		if group != "" {
			link(filepath.Join(d, "iommu_group"), "../../../kernel/iommu_groups/"+group)
		}
	}
	pci("0000:00:00.0", "0x060000", "0x8086", "0x3e30", "", "0")
	pci("0000:00:1c.0", "0x060400", "0x8086", "0xa33c", "pcieport", "1")
	pci("0000:01:00.0", "0x030000", "0x10de", "0x1eb8", "nvidia", "12")
	pci("0000:01:00.1", "0x040300", "0x10de", "0x10f8", "", "12")
	pci("0000:02:00.0", "0x020000", "0x8086", "0x1533", "igb", "13")
	pci("0000:03:00.0", "0x030200", "0x10DE", "0x20B0", "vfio-pci", "14")
	file("bus/pci/devices/junk/class", "0x030000") // not an address: skipped
	link("class/drm/card0/device", "../../../bus/pci/devices/0000:01:00.0")
	return root
}

// useSysfs points the inventory at root for one test.
func useSysfs(t *testing.T, root string) {
	t.Helper()
	old := sysfsRoot
	sysfsRoot = root
	t.Cleanup(func() { sysfsRoot = old })
}

// TestHostInventory: USB devices without hubs and interfaces, PCI
// functions without bridges, GPUs by class, each field from its file.
func TestHostInventory(t *testing.T) {
	useSysfs(t, fakeSysfs(t))
	usb, err := HostUSBDevices()
	if err != nil {
		t.Fatal(err)
	}
	wantUSB := []USBDevice{
		{Bus: 1, Dev: 2, VendorID: "046d", ProductID: "c52b", Manufacturer: "Logitech", Product: "USB Receiver", Speed: "12"},
		{Bus: 2, Dev: 5, VendorID: "0781", ProductID: "5583", Speed: "5000"},
	}
	if !reflect.DeepEqual(usb, wantUSB) {
		t.Errorf("USB:\n%+v\nwant\n%+v", usb, wantUSB)
	}
	pci, err := HostPCIDevices()
	if err != nil {
		t.Fatal(err)
	}
	wantPCI := []PCIDevice{
		{Address: "0000:01:00.0", Class: "0x030000", VendorID: "10de", ProductID: "1eb8", Description: "VGA compatible controller", Driver: "nvidia", IOMMUGroup: 12},
		{Address: "0000:01:00.1", Class: "0x040300", VendorID: "10de", ProductID: "10f8", Description: "Audio device", IOMMUGroup: 12},
		{Address: "0000:02:00.0", Class: "0x020000", VendorID: "8086", ProductID: "1533", Description: "Ethernet controller", Driver: "igb", IOMMUGroup: 13},
		{Address: "0000:03:00.0", Class: "0x030200", VendorID: "10de", ProductID: "20b0", Description: "3D controller", Driver: "vfio-pci", IOMMUGroup: 14},
	}
	if !reflect.DeepEqual(pci, wantPCI) {
		t.Errorf("PCI:\n%+v\nwant\n%+v", pci, wantPCI)
	}
	gpus, err := HostGPUs()
	if err != nil {
		t.Fatal(err)
	}
	if want := []PCIDevice{wantPCI[0], wantPCI[3]}; !reflect.DeepEqual(gpus, want) {
		t.Errorf("GPUs:\n%+v\nwant\n%+v", gpus, want)
	}
	if a := drmCardPCI(sysfsRoot, "0"); a != "0000:01:00.0" {
		t.Errorf("card0 is at %q", a)
	}
}

// TestHostInventoryEmpty: a host without USB buses, or without PCI at
// all, has empty lists and no error; without IOMMU the group is -1.
func TestHostInventoryEmpty(t *testing.T) {
	root := t.TempDir()
	useSysfs(t, root)
	for name, f := range map[string]func() (int, error){
		"usb": func() (int, error) { l, err := HostUSBDevices(); return len(l), err },
		"pci": func() (int, error) { l, err := HostPCIDevices(); return len(l), err },
		"gpu": func() (int, error) { l, err := HostGPUs(); return len(l), err },
	} {
		if n, err := f(); n != 0 || err != nil {
			t.Errorf("%s: %d devices, %v", name, n, err)
		}
	}
	d := filepath.Join(root, "bus/pci/devices/0000:00:02.0")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, v := range map[string]string{"class": "0x030000", "vendor": "0x1234", "device": "0x1111"} {
		if err := os.WriteFile(filepath.Join(d, f), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gpus, err := HostGPUs()
	if err != nil || len(gpus) != 1 || gpus[0].IOMMUGroup != -1 || gpus[0].Driver != "" {
		t.Errorf("GPUs %+v, %v", gpus, err)
	}
}

// TestHostInventoryReal reads this host's sysfs: whatever it has, each
// entry is well formed (the lists may be empty: CI has no USB or GPU).
func TestHostInventoryReal(t *testing.T) {
	usb, err := HostUSBDevices()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range usb {
		if !isHex4(d.VendorID) || !isHex4(d.ProductID) || d.Bus < 1 {
			t.Errorf("bad USB device %+v", d)
		}
	}
	pci, err := HostPCIDevices()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range pci {
		if a, ok := normalizePCI(d.Address); !ok || a != d.Address || len(d.Class) != 8 || d.Class[:4] == "0x06" || !isHex4(d.VendorID) {
			t.Errorf("bad PCI device %+v", d)
		}
	}
}

// TestValidateHostDevices: usb, gpu and pci keys as LXD takes them, then
// the host: what it lacks is refused naming what was asked for, what it
// has is refused as not implemented (no passthrough yet).
func TestValidateHostDevices(t *testing.T) {
	type dev = map[string]string
	tests := []struct {
		name  string
		d     dev
		vm    bool
		kind  error
		words []string
	}{
		{"usb by vendor and product", dev{"type": "usb", "vendorid": "046d", "productid": "C52B"}, false, errNotImplemented, []string{`"u"`, "046d:c52b", "not implemented"}},
		{"usb by bus and device", dev{"type": "usb", "busnum": "2", "devnum": "5"}, true, errNotImplemented, []string{"0781:5583", "bus 2"}},
		{"usb any", dev{"type": "usb"}, false, errNotImplemented, []string{"046d:c52b"}},
		{"usb hub is not a device", dev{"type": "usb", "vendorid": "1d6b"}, false, errInvalid, []string{`"u"`, "no USB device matching vendorid=1d6b on this host"}},
		{"usb absent", dev{"type": "usb", "vendorid": "1234", "productid": "5678"}, false, errInvalid, []string{"vendorid=1234 productid=5678"}},
		{"usb absent, required", dev{"type": "usb", "vendorid": "1234", "required": "true"}, false, errInvalid, []string{"vendorid=1234"}},
		{"usb absent, not required", dev{"type": "usb", "vendorid": "1234", "required": "false"}, false, nil, nil},
		{"usb present, not required", dev{"type": "usb", "vendorid": "0781", "required": "false"}, false, errNotImplemented, []string{"0781"}},
		{"usb container keys", dev{"type": "usb", "vendorid": "1234", "required": "no", "uid": "1000", "gid": "1000", "mode": "0660"}, false, nil, nil},
		{"usb uid in a VM", dev{"type": "usb", "vendorid": "046d", "uid": "0"}, true, errInvalid, []string{"containers only"}},
		{"usb bad vendorid", dev{"type": "usb", "vendorid": "46d"}, false, errInvalid, []string{"vendorid", `"46d"`}},
		{"usb bad productid", dev{"type": "usb", "productid": "xyzw"}, false, errInvalid, []string{"productid"}},
		{"usb bad busnum", dev{"type": "usb", "busnum": "0"}, false, errInvalid, []string{"busnum"}},
		{"usb bad devnum", dev{"type": "usb", "devnum": "128"}, false, errInvalid, []string{"devnum"}},
		{"usb bad required", dev{"type": "usb", "required": "maybe"}, false, errInvalid, []string{"required"}},
		{"usb bad gid", dev{"type": "usb", "gid": "90000001"}, false, errInvalid, []string{"gid"}},
		{"usb bad mode", dev{"type": "usb", "mode": "0668"}, false, errInvalid, []string{"mode", "octal"}},
		{"usb unknown key", dev{"type": "usb", "serial": "x"}, false, errInvalid, []string{`"serial"`}},

		{"gpu by pci", dev{"type": "gpu", "pci": "0000:01:00.0"}, true, errNotImplemented, []string{`"u"`, "0000:01:00.0", "VFIO"}},
		{"gpu by short pci", dev{"type": "gpu", "pci": "01:00.0"}, false, errNotImplemented, []string{"0000:01:00.0", "device nodes"}},
		{"gpu by id", dev{"type": "gpu", "id": "0"}, true, errNotImplemented, []string{"0000:01:00.0"}},
		{"gpu by vendor and product", dev{"type": "gpu", "vendorid": "10de", "productid": "20b0"}, true, errNotImplemented, []string{"0000:03:00.0"}},
		{"gpu any", dev{"type": "gpu"}, false, errNotImplemented, []string{"0000:01:00.0"}},
		{"gpu sriov", dev{"type": "gpu", "gputype": "sriov", "pci": "0000:03:00.0"}, true, errNotImplemented, []string{"sriov"}},
		{"gpu mdev", dev{"type": "gpu", "gputype": "mdev", "mdev": "nvidia-63", "vendorid": "10de"}, true, errNotImplemented, []string{"mdev"}},
		{"gpu mig", dev{"type": "gpu", "gputype": "mig", "mig.uuid": "MIG-8d3e5c1a-1234-5678-9abc-def012345678", "pci": "0000:03:00.0"}, false, errNotImplemented, []string{"mig"}},
		{"gpu physical with container keys", dev{"type": "gpu", "uid": "1000", "gid": "1000", "mode": "0660"}, false, errNotImplemented, nil},
		{"gpu not a GPU", dev{"type": "gpu", "pci": "0000:02:00.0"}, true, errInvalid, []string{`device "u": no GPU matching pci=0000:02:00.0 on this host`}},
		{"gpu absent", dev{"type": "gpu", "pci": "0000:09:00.0"}, true, errInvalid, []string{"no GPU matching pci=0000:09:00.0"}},
		{"gpu absent vendor", dev{"type": "gpu", "vendorid": "1002"}, true, errInvalid, []string{"vendorid=1002"}},
		{"gpu absent id", dev{"type": "gpu", "id": "5"}, true, errInvalid, []string{"id=5"}},
		{"gpu id and pci disagree", dev{"type": "gpu", "id": "0", "pci": "0000:03:00.0"}, true, errInvalid, []string{"id=0", "0000:01:00.0"}},
		{"gpu bad gputype", dev{"type": "gpu", "gputype": "virtual"}, false, errInvalid, []string{"gputype"}},
		{"gpu bad pci", dev{"type": "gpu", "pci": "0000:01:00"}, false, errInvalid, []string{"pci", "PCI address"}},
		{"gpu bad pci function", dev{"type": "gpu", "pci": "0000:01:00.8"}, false, errInvalid, []string{"pci"}},
		{"gpu bad id", dev{"type": "gpu", "id": "card0"}, false, errInvalid, []string{"id"}},
		{"gpu bad vendorid", dev{"type": "gpu", "vendorid": "10de0"}, false, errInvalid, []string{"vendorid"}},
		{"gpu bad uid", dev{"type": "gpu", "uid": "-1"}, false, errInvalid, []string{"uid"}},
		{"gpu bad gid", dev{"type": "gpu", "gid": "90000001"}, false, errInvalid, []string{"gid"}},
		{"gpu bad mode", dev{"type": "gpu", "mode": "rw"}, false, errInvalid, []string{"mode"}},
		{"gpu bad mig.uuid", dev{"type": "gpu", "gputype": "mig", "mig.uuid": "nope"}, false, errInvalid, []string{"mig.uuid"}},
		{"gpu bad mdev", dev{"type": "gpu", "gputype": "mdev", "mdev": "a b"}, true, errInvalid, []string{"mdev"}},
		{"gpu unknown key", dev{"type": "gpu", "productid": "1eb8", "serial": "x"}, false, errInvalid, []string{`"serial"`}},
		{"gpu mdev key on physical", dev{"type": "gpu", "mdev": "nvidia-63"}, true, errInvalid, []string{`"mdev"`, "physical"}},
		{"gpu mig key on sriov", dev{"type": "gpu", "gputype": "sriov", "mig.uuid": "MIG-8d3e5c1a-1234-5678-9abc-def012345678"}, true, errInvalid, []string{"mig.uuid"}},
		{"gpu mdev in a container", dev{"type": "gpu", "gputype": "mdev", "mdev": "nvidia-63"}, false, errInvalid, []string{"virtual machines only"}},
		{"gpu sriov in a container", dev{"type": "gpu", "gputype": "sriov"}, false, errInvalid, []string{"virtual machines only"}},
		{"gpu mig in a VM", dev{"type": "gpu", "gputype": "mig", "mig.uuid": "MIG-8d3e5c1a-1234-5678-9abc-def012345678"}, true, errInvalid, []string{"containers only"}},
		{"gpu mdev without mdev", dev{"type": "gpu", "gputype": "mdev"}, true, errInvalid, []string{"needs mdev"}},
		{"gpu mig without uuid", dev{"type": "gpu", "gputype": "mig", "mig.ci": "1"}, false, errInvalid, []string{"mig.uuid"}},
		{"gpu uid in a VM", dev{"type": "gpu", "uid": "0"}, true, errInvalid, []string{"containers only"}},

		{"pci", dev{"type": "pci", "address": "0000:02:00.0"}, true, errNotImplemented, []string{`"u"`, "0000:02:00.0", "Ethernet controller", "VFIO"}},
		{"pci short address", dev{"type": "pci", "address": "02:00.0"}, true, errNotImplemented, []string{"0000:02:00.0"}},
		{"pci a bridge", dev{"type": "pci", "address": "0000:00:1c.0"}, true, errInvalid, []string{"no PCI device at address 0000:00:1c.0"}},
		{"pci absent", dev{"type": "pci", "address": "0000:42:00.0"}, true, errInvalid, []string{"0000:42:00.0", "on this host"}},
		{"pci in a container", dev{"type": "pci", "address": "0000:02:00.0"}, false, errInvalid, []string{"virtual machines only"}},
		{"pci without address", dev{"type": "pci"}, true, errInvalid, []string{"needs address"}},
		{"pci bad address", dev{"type": "pci", "address": "2:0.0"}, true, errInvalid, []string{"address"}},
		{"pci unknown key", dev{"type": "pci", "address": "0000:02:00.0", "vendorid": "8086"}, true, errInvalid, []string{`"vendorid"`}},
	}
	useSysfs(t, fakeSysfs(t))
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := e.m.Validate(context.Background(), map[string]map[string]string{"u": tt.d}, tt.vm)
			wantErr(t, err, tt.kind, tt.words...)
		})
	}
}

// TestValidateHostDevicesNone: on a host without USB, GPUs or PCI (this
// CI host's USB and GPU case), each device type is refused as absent,
// except a USB device that is not required.
func TestValidateHostDevicesNone(t *testing.T) {
	useSysfs(t, t.TempDir())
	e := newEnv(t)
	tests := []struct {
		d     map[string]string
		vm    bool
		kind  error
		words []string
	}{
		{map[string]string{"type": "usb"}, false, errInvalid, []string{"no USB device matching any"}},
		{map[string]string{"type": "usb", "vendorid": "046d", "required": "false"}, true, nil, nil},
		{map[string]string{"type": "gpu", "pci": "0000:03:00.0"}, true, errInvalid, []string{`device "d": no GPU matching pci=0000:03:00.0 on this host`}},
		{map[string]string{"type": "pci", "address": "0000:03:00.0"}, true, errInvalid, []string{"no PCI device at address 0000:03:00.0"}},
	}
	for _, tt := range tests {
		wantErr(t, e.m.Validate(context.Background(), map[string]map[string]string{"d": tt.d}, tt.vm), tt.kind, tt.words...)
	}
}

// TestNormalizePCI: the address forms LXD takes.
func TestNormalizePCI(t *testing.T) {
	for in, want := range map[string]string{
		"0000:03:00.0": "0000:03:00.0", "03:00.0": "0000:03:00.0", "0000:AF:1F.7": "0000:af:1f.7", "10000:03:00.0": "",
		"0000:03:00.8": "", "0000:03:0g.0": "", "": "", "0000-03-00.0": "",
	} {
		got, ok := normalizePCI(in)
		if got != want || ok != (want != "") {
			t.Errorf("normalizePCI(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// TestStartHostDevices: a usb device absent at create (required=false)
// and plugged in since stops the start with not implemented, before any
// host state is made; absent, the start goes on without it.
func TestStartHostDevices(t *testing.T) {
	useSysfs(t, fakeSysfs(t))
	e := newEnv(t)
	ctx := context.Background()
	in := Instance{ID: 7, RuntimeID: "c7", Name: "c7"}
	present := map[string]map[string]string{"u": {"type": "usb", "vendorid": "0781", "required": "false"}}
	_, err := e.m.Start(ctx, in, present)
	wantErr(t, err, errNotImplemented, `"u"`, "0781")
	if left := e.lk.left(); left != "" {
		t.Errorf("a refused start left %s", left)
	}
	if ops := e.lk.takeOps(); len(ops) != 0 {
		t.Errorf("a refused start made %v", ops)
	}
	absent := map[string]map[string]string{"u": {"type": "usb", "vendorid": "1234", "required": "false"}}
	if _, err := e.m.Start(ctx, in, absent); err != nil {
		t.Fatalf("start with an absent, not required usb device: %v", err)
	}
	if err := e.m.Stop(ctx, in, absent); err != nil {
		t.Fatal(err)
	}
	if left := e.lk.left(); left != "" {
		t.Errorf("stop left %s", left)
	}
}
