package device

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// usb, gpu and pci devices: their keys are LXD's, checked here; then the
// host must have what they name. Passing a device through (VFIO for
// PCI functions and VM GPUs, device nodes and cgroup rules for USB and
// container GPUs) is not built: a device the host has is refused as not
// implemented, never accepted and silently left out.

var usbKeys = map[string]keyCheck{
	"type":      nil,
	"vendorid":  hex4,
	"productid": hex4,
	"busnum":    intRange(1, 255),
	"devnum":    intRange(1, 127),
	"required":  boolean,
	"uid":       intRange(0, 90000000),
	"gid":       intRange(0, 90000000),
	"mode":      octalMode,
}

var gpuKeys = map[string]keyCheck{
	"type":      nil,
	"gputype":   oneOf("physical", "mdev", "mig", "sriov"),
	"id":        intRange(0, 1<<31-1),
	"pci":       pciAddress,
	"vendorid":  hex4,
	"productid": hex4,
	"mdev":      mdevType,
	"mig.uuid":  migUUID,
	"mig.ci":    intRange(0, 1<<31-1),
	"mig.gi":    intRange(0, 1<<31-1),
	"uid":       intRange(0, 90000000),
	"gid":       intRange(0, 90000000),
	"mode":      octalMode,
}

var pciKeys = map[string]keyCheck{
	"type":    nil,
	"address": pciAddress,
}

func hex4(v string) error {
	if !isHex4(strings.ToLower(v)) {
		return fmt.Errorf("%q is not a 4-digit hexadecimal ID", v)
	}
	return nil
}

func pciAddress(v string) error {
	if _, ok := normalizePCI(v); !ok {
		return fmt.Errorf("%q is not a PCI address (like 0000:03:00.0)", v)
	}
	return nil
}

func octalMode(v string) error {
	n, err := strconv.ParseUint(v, 8, 32)
	if err != nil || n > 0o7777 {
		return fmt.Errorf("%q is not an octal file mode (like 0660)", v)
	}
	return nil
}

func mdevType(v string) error {
	if strings.ContainsAny(v, "/ \t\n") {
		return fmt.Errorf("%q is not a mediated device type (like i915-GVTg_V5_4)", v)
	}
	return nil
}

func migUUID(v string) error {
	u := strings.TrimPrefix(v, "MIG-")
	parts := strings.Split(u, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 || len(parts[3]) != 4 || len(parts[4]) != 12 {
		return fmt.Errorf("%q is not a MIG UUID", v)
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 16, 64); err != nil {
			return fmt.Errorf("%q is not a MIG UUID", v)
		}
	}
	return nil
}

// validateUSB checks a usb device and finds it on the host: absent is an
// error unless required=false (LXD plugs those in when they appear).
func validateUSB(n string, d map[string]string, vm bool) error {
	if err := checkKeys(n, d, usbKeys); err != nil {
		return err
	}
	if vm && (d["uid"] != "" || d["gid"] != "" || d["mode"] != "") {
		return errdefs.Invalid("device %q: uid, gid and mode apply to containers only", n)
	}
	host, err := HostUSBDevices()
	if err != nil {
		return fmt.Errorf("device %q: %w", n, err)
	}
	var found *USBDevice
	for i := range host {
		h := &host[i]
		if d["vendorid"] != "" && !strings.EqualFold(d["vendorid"], h.VendorID) ||
			d["productid"] != "" && !strings.EqualFold(d["productid"], h.ProductID) ||
			d["busnum"] != "" && d["busnum"] != strconv.Itoa(h.Bus) ||
			d["devnum"] != "" && d["devnum"] != strconv.Itoa(h.Dev) {
			continue
		}
		found = h
		break
	}
	if found == nil {
		if d["required"] != "" && !isTrue(d["required"]) {
			return nil
		}
		return errdefs.Invalid("device %q: no USB device matching %s on this host", n, criteria(d, "vendorid", "productid", "busnum", "devnum"))
	}
	return errdefs.NotImplemented("device %q: the host has USB device %s:%s (bus %d, device %d), but passing USB devices through is not implemented in hangard",
		n, found.VendorID, found.ProductID, found.Bus, found.Dev)
}

// validateGPU checks a gpu device and finds the GPU on the host.
func validateGPU(n string, d map[string]string, vm bool) error {
	if err := checkKeys(n, d, gpuKeys); err != nil {
		return err
	}
	typ := d["gputype"]
	if typ == "" {
		typ = "physical"
	}
	// Which keys go with which kind, and where each kind runs, are LXD's.
	allowed := map[string][]string{
		"physical": {"uid", "gid", "mode"},
		"mdev":     {"mdev"},
		"mig":      {"mig.uuid", "mig.ci", "mig.gi"},
		"sriov":    {},
	}[typ]
	for _, k := range []string{"uid", "gid", "mode", "mdev", "mig.uuid", "mig.ci", "mig.gi"} {
		if d[k] != "" && !slices.Contains(allowed, k) {
			return errdefs.Invalid("device %q: key %q does not apply to gputype %s", n, k, typ)
		}
	}
	switch {
	case vm && (typ == "mig"):
		return errdefs.Invalid("device %q: gputype mig is for containers only", n)
	case !vm && (typ == "mdev" || typ == "sriov"):
		return errdefs.Invalid("device %q: gputype %s is for virtual machines only", n, typ)
	case vm && (d["uid"] != "" || d["gid"] != "" || d["mode"] != ""):
		return errdefs.Invalid("device %q: uid, gid and mode apply to containers only", n)
	case typ == "mdev" && d["mdev"] == "":
		return errdefs.Invalid("device %q: gputype mdev needs mdev (the mediated device type)", n)
	case typ == "mig" && d["mig.uuid"] == "" && (d["mig.ci"] == "" || d["mig.gi"] == ""):
		return errdefs.Invalid("device %q: gputype mig needs mig.uuid, or mig.ci and mig.gi", n)
	}
	gpus, err := HostGPUs()
	if err != nil {
		return fmt.Errorf("device %q: %w", n, err)
	}
	want := map[string]string{}
	if a := d["pci"]; a != "" {
		want["pci"], _ = normalizePCI(a)
	}
	if id := d["id"]; id != "" {
		// A DRM card ID: its PCI function is what sysfs links it to.
		a := drmCardPCI(sysfsRoot, id)
		if a == "" {
			return errdefs.Invalid("device %q: no GPU matching id=%s on this host", n, id)
		}
		if want["pci"] != "" && want["pci"] != a {
			return errdefs.Invalid("device %q: id=%s is the GPU at %s, not pci=%s", n, id, a, want["pci"])
		}
		want["pci"] = a
	}
	var found *PCIDevice
	for i := range gpus {
		g := &gpus[i]
		if want["pci"] != "" && want["pci"] != g.Address ||
			d["vendorid"] != "" && !strings.EqualFold(d["vendorid"], g.VendorID) ||
			d["productid"] != "" && !strings.EqualFold(d["productid"], g.ProductID) {
			continue
		}
		found = g
		break
	}
	if found == nil {
		return errdefs.Invalid("device %q: no GPU matching %s on this host", n, criteria(d, "id", "pci", "vendorid", "productid"))
	}
	how := "VFIO"
	if !vm {
		how = "its device nodes and cgroup rules"
	}
	return errdefs.NotImplemented("device %q: the host has GPU %s (%s:%s), but passing a %s GPU through (%s) is not implemented in hangard",
		n, found.Address, found.VendorID, found.ProductID, typ, how)
}

// validatePCI checks a pci device (virtual machines only, as in LXD) and
// finds the function on the host.
func validatePCI(n string, d map[string]string, vm bool) error {
	if err := checkKeys(n, d, pciKeys); err != nil {
		return err
	}
	if !vm {
		return errdefs.Invalid("device %q: pci devices are for virtual machines only", n)
	}
	if d["address"] == "" {
		return errdefs.Invalid("device %q: a pci device needs address", n)
	}
	addr, _ := normalizePCI(d["address"])
	host, err := HostPCIDevices()
	if err != nil {
		return fmt.Errorf("device %q: %w", n, err)
	}
	for _, h := range host {
		if h.Address == addr {
			return errdefs.NotImplemented("device %q: the host has PCI device %s (%s), but passing PCI devices through (VFIO) is not implemented in hangard",
				n, addr, h.Description)
		}
	}
	return errdefs.Invalid("device %q: no PCI device at address %s on this host (bridges cannot be passed through)", n, addr)
}

// criteria renders the keys a device matches by ("vendorid=10de
// productid=1eb8"), "any" when it sets none.
func criteria(d map[string]string, keys ...string) string {
	var parts []string
	for _, k := range keys {
		if d[k] != "" {
			parts = append(parts, k+"="+d[k])
		}
	}
	if len(parts) == 0 {
		return "any"
	}
	return strings.Join(parts, " ")
}

// checkHostDevices checks an instance's usb, gpu and pci devices against
// the host again when it starts: what was absent (a usb device with
// required=false) may have been plugged in since, and hangard cannot
// pass it through.
func checkHostDevices(devs map[string]map[string]string, vm bool) error {
	names := make([]string, 0, len(devs))
	for n, d := range devs {
		switch d["type"] {
		case "usb", "gpu", "pci":
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		d := devs[n]
		var err error
		switch d["type"] {
		case "usb":
			err = validateUSB(n, d, vm)
		case "gpu":
			err = validateGPU(n, d, vm)
		case "pci":
			err = validatePCI(n, d, vm)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
