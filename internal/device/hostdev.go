package device

import "github.com/hangar-dev/hangar/internal/errdefs"

// CONTRACT (issue 16): the host-devices helper replaces these bodies.
// The host's passthrough candidates, read from sysfs: what usb, gpu and
// pci devices may name, and what the dialects list as choices. A device
// naming something the host lacks is refused at validation with a clear
// error.

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
func HostUSBDevices() ([]USBDevice, error) {
	return nil, errdefs.NotImplemented("host USB inventory is not built yet")
}

// HostPCIDevices lists the host's PCI functions that could be passed
// through (bridges and host controllers excluded).
func HostPCIDevices() ([]PCIDevice, error) {
	return nil, errdefs.NotImplemented("host PCI inventory is not built yet")
}

// HostGPUs lists the host's display controllers (PCI class 0x03).
func HostGPUs() ([]PCIDevice, error) {
	return nil, errdefs.NotImplemented("host GPU inventory is not built yet")
}
