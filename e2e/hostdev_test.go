package e2e

import (
	"testing"
)

// TestHostDevicesRefused: usb, gpu and pci devices naming what no host
// has (PCI domain ffff, USB vendor ffff: never assigned) are refused
// through the CLI with the device and what was asked for named; a usb
// device with required=false may be absent and the instance still
// restarts; key mistakes are refused naming the key.
func TestHostDevicesRefused(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "sleeper", "h1")

	d.mustFail([]string{"config", "device", "add", "h1", "g0", "gpu", "pci=ffff:ff:1f.7"},
		`device "g0": no GPU matching pci=ffff:ff:1f.7 on this host`)
	d.mustFail([]string{"config", "device", "add", "h1", "u0", "usb", "vendorid=ffff", "productid=0001"},
		`device "u0": no USB device matching vendorid=ffff productid=0001 on this host`)
	d.mustFail([]string{"config", "device", "add", "h1", "p0", "pci", "address=ffff:ff:1f.7"}, `"p0"`, "virtual machines only")
	d.mustFail([]string{"config", "device", "add", "h1", "g0", "gpu", "gputype=virtual"}, "gputype")
	d.mustFail([]string{"config", "device", "add", "h1", "u0", "usb", "busnum=0"}, "busnum")

	d.must("config", "device", "add", "h1", "u1", "usb", "vendorid=ffff", "required=false")
	d.must("stop", "h1", "--force")
	d.must("start", "h1")
	if st := d.instance("h1").Status; st != "Running" {
		t.Fatalf("h1 with an absent, not required usb device: %s", st)
	}
	if got := d.instance("h1").Devices["u1"]["vendorid"]; got != "ffff" {
		t.Errorf("u1 vendorid %q, want ffff", got)
	}
}
