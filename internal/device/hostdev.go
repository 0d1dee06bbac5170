package device

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The host's passthrough candidates, read from sysfs: what usb, gpu and
// pci devices may name, and what the dialects list as choices. A device
// naming something the host lacks is refused at validation with a clear
// error (hostdev_validate.go).

// sysfsRoot is where sysfs is read; unit tests point it at a tree they
// build.
var sysfsRoot = "/sys"

// USBDevice is a USB device on the host (/sys/bus/usb/devices).
type USBDevice struct {
	Bus, Dev              int    // busnum, devnum
	VendorID, ProductID   string // 4 lowercase hex digits
	Manufacturer, Product string
	Speed                 string
}

// PCIDevice is a PCI function on the host (/sys/bus/pci/devices).
type PCIDevice struct {
	Address             string // "0000:00:02.0"
	Class               string // "0x030000"
	VendorID, ProductID string // 4 lowercase hex digits
	Description         string
	Driver              string // bound kernel driver, "" when none
	IOMMUGroup          int    // -1 when the host has no IOMMU groups
}

// HostUSBDevices lists the host's USB devices (hubs excluded).
func HostUSBDevices() ([]USBDevice, error) { return usbDevices(sysfsRoot) }

// HostPCIDevices lists the host's PCI functions that could be passed
// through (bridges, host bridges included, excluded).
func HostPCIDevices() ([]PCIDevice, error) { return pciDevices(sysfsRoot) }

// HostGPUs lists the host's display controllers (PCI class 0x03).
func HostGPUs() ([]PCIDevice, error) {
	all, err := pciDevices(sysfsRoot)
	if err != nil {
		return nil, err
	}
	var out []PCIDevice
	for _, d := range all {
		if strings.HasPrefix(d.Class, "0x03") {
			out = append(out, d)
		}
	}
	return out, nil
}

// usbDevices reads root/bus/usb/devices. Interfaces ("1-1:1.0") have no
// busnum and are skipped, as are hubs (root hubs too): they are the
// bus, not something to pass through. No USB bus is an empty list.
func usbDevices(root string) ([]USBDevice, error) {
	dir := filepath.Join(root, "bus", "usb", "devices")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list USB devices: %w", err)
	}
	var out []USBDevice
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		bus, err := readInt(p, "busnum")
		if err != nil {
			continue // an interface or a device going away
		}
		if strings.EqualFold(readAttr(p, "bDeviceClass"), "09") {
			continue
		}
		dev, err := readInt(p, "devnum")
		if err != nil {
			continue
		}
		d := USBDevice{
			Bus: bus, Dev: dev,
			VendorID:     strings.ToLower(readAttr(p, "idVendor")),
			ProductID:    strings.ToLower(readAttr(p, "idProduct")),
			Manufacturer: readAttr(p, "manufacturer"),
			Product:      readAttr(p, "product"),
			Speed:        readAttr(p, "speed"),
		}
		if !isHex4(d.VendorID) || !isHex4(d.ProductID) {
			continue
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bus != out[j].Bus {
			return out[i].Bus < out[j].Bus
		}
		return out[i].Dev < out[j].Dev
	})
	return out, nil
}

// pciDevices reads root/bus/pci/devices, bridges (class 0x06) left out.
// No PCI bus is an empty list.
func pciDevices(root string) ([]PCIDevice, error) {
	dir := filepath.Join(root, "bus", "pci", "devices")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list PCI devices: %w", err)
	}
	var out []PCIDevice
	for _, e := range ents {
		addr := e.Name()
		if _, ok := normalizePCI(addr); !ok {
			continue
		}
		p := filepath.Join(dir, addr)
		class := strings.ToLower(readAttr(p, "class"))
		if len(class) != 8 || !strings.HasPrefix(class, "0x") || strings.HasPrefix(class, "0x06") {
			continue
		}
		d := PCIDevice{
			Address:     addr,
			Class:       class,
			VendorID:    strings.TrimPrefix(strings.ToLower(readAttr(p, "vendor")), "0x"),
			ProductID:   strings.TrimPrefix(strings.ToLower(readAttr(p, "device")), "0x"),
			Description: pciClassName(class),
			Driver:      linkBase(filepath.Join(p, "driver")),
			IOMMUGroup:  -1,
		}
		if g, err := strconv.Atoi(linkBase(filepath.Join(p, "iommu_group"))); err == nil {
			d.IOMMUGroup = g
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

// drmCardPCI is the PCI address of DRM card id (what a gpu device's id
// names), "" when there is no such card.
func drmCardPCI(root, id string) string {
	return linkBase(filepath.Join(root, "class", "drm", "card"+id, "device"))
}

func readAttr(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readInt(dir, name string) (int, error) {
	return strconv.Atoi(readAttr(dir, name))
}

// linkBase is the last element of a symlink's target ("" when absent):
// sysfs names drivers and IOMMU groups so.
func linkBase(p string) string {
	t, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return filepath.Base(t)
}

func isHex4(s string) bool {
	if len(s) != 4 {
		return false
	}
	_, err := strconv.ParseUint(s, 16, 16)
	return err == nil
}

// normalizePCI reads a PCI address, with or without its domain
// ("03:00.0" is "0000:03:00.0", as LXD takes it), into sysfs's form.
func normalizePCI(a string) (string, bool) {
	a = strings.ToLower(a)
	if strings.Count(a, ":") == 1 {
		a = "0000:" + a
	}
	// dddd:bb:ss.f
	if len(a) != 12 || a[4] != ':' || a[7] != ':' || a[10] != '.' {
		return "", false
	}
	for i, c := range a {
		if i == 4 || i == 7 || i == 10 {
			continue
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", false
		}
	}
	if a[11] > '7' {
		return "", false // a function number is 0-7
	}
	return a, true
}

// pciClassName names a PCI class ("0x030000") for people: sysfs has no
// names and hosts often lack pci.ids.
func pciClassName(class string) string {
	if len(class) != 8 {
		return "PCI device"
	}
	if n, ok := pciSubclasses[class[2:6]]; ok {
		return n
	}
	if n, ok := pciClasses[class[2:4]]; ok {
		return n
	}
	return "PCI device (class " + class + ")"
}

var pciClasses = map[string]string{
	"00": "Unclassified device", "01": "Mass storage controller", "02": "Network controller",
	"03": "Display controller", "04": "Multimedia controller", "05": "Memory controller",
	"07": "Communication controller", "08": "System peripheral", "09": "Input device controller",
	"0a": "Docking station", "0b": "Processor", "0c": "Serial bus controller",
	"0d": "Wireless controller", "0e": "Intelligent controller", "0f": "Satellite communications controller",
	"10": "Encryption controller", "11": "Signal processing controller", "12": "Processing accelerator",
	"13": "Non-essential instrumentation",
}

var pciSubclasses = map[string]string{
	"0000": "Non-VGA unclassified device", "0100": "SCSI storage controller", "0101": "IDE interface",
	"0104": "RAID bus controller", "0106": "SATA controller", "0107": "Serial Attached SCSI controller",
	"0108": "Non-Volatile memory controller", "0200": "Ethernet controller", "0280": "Network controller",
	"0300": "VGA compatible controller", "0302": "3D controller", "0380": "Display controller",
	"0401": "Multimedia audio controller", "0403": "Audio device", "0c03": "USB controller",
	"0c05": "SMBus", "0c80": "Serial bus controller", "1200": "Processing accelerators",
}
