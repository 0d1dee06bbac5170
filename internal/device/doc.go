// Package device turns an instance's devices into host state and back.
//
// What it owns
//   - The rules for device keys (validate.go): nic, proxy, disk, display
//     and tpm devices are checked key by key; device types hangard does not run yet are
//     refused naming the type.
//   - The host's passthrough candidates (hostdev.go): USB devices, PCI
//     functions and GPUs read from sysfs. usb, gpu and pci devices
//     (hostdev_validate.go) are checked with LXD's keys, then against
//     the host: naming what it lacks is an invalid argument (a usb
//     device with required=false may be absent); naming what it has is
//     not implemented (no VFIO or device-node passthrough yet).
//   - nic devices (nic.go): at start, a network namespace for a container
//     (a bind-mounted nsfs file under Dir, joined by the runtime) with one
//     veth (bridge networks) or macvlan per NIC, addressed and routed
//     before PID 1 runs; a tap on the bridge for a virtual machine, or
//     for a VM's macvlan NIC a macvtap (bridge mode) on the parent with
//     the guest's MAC and the device's MTU or the parent's, whose
//     character device the driver hands QEMU (LXD's way). The
//     MAC and addresses come from the network manager (IPAM); the host
//     side's name is derived from the instance and device so that a daemon
//     killed with -9 finds and replaces it, never duplicates it. tc limits
//     (limits.ingress/egress) sit on the host side. security.mac_filtering
//     (macfilter.go) is a filter on that host side, held by the network
//     manager's firewall from before the link exists until after it goes,
//     and changed in place on a running instance.
//   - proxy devices (proxy.go): nat=true becomes DNAT rules the network
//     manager folds into the firewall; otherwise a forwarder in the daemon
//     (package proxy) listens on the host and connects inside the
//     instance's namespace. Both go when the instance stops.
//   - standby (standby.go): a stateful stop keeps the DNAT rules of
//     proxies with nat=true (same owner: the next start replaces them in
//     place) and pins the host's neighbour entries of the instance's
//     addresses to its MACs, so a client still reaches the address of a
//     VM in standby and wakes it (package autostandby).
//   - display devices (display.go; hangar's own, LXD has none), for
//     virtual machines only (a container's is refused naming the
//     device): a graphical console, a VNC or SPICE server on 127.0.0.1
//     bound to a video output of its own. Keys, the contract the API
//     dialects create them with:
//     protocol  vnc (default) | spice; at most one spice display per VM
//     port      1024-65535 (vnc: 5900-65535, QEMU's VNC ports); empty:
//     the port it had last time while free, else a free one
//     password  optional; vnc: at most 8 characters (VNC authentication's
//     DES key; longer is refused, never truncated); spice: any length.
//     Given to QEMU over QMP, never on its command line
//     width, height  pixels, 320-7680 and 200-4320, together
//     ppi       1-1000, recorded only (QEMU has no setting)
//     description, user.*
//     The port used is recorded as volatile.DEV.port at each start; a
//     fixed port in use fails the start (Conflict) leaving nothing.
//   - tpm devices (tpm.go; LXD's keys path, pathrm, description): a
//     virtual machine's emulated TPM 2.0 (swtpm, its state kept by the
//     driver across starts), one per instance. A container's needs the
//     kernel's tpm_vtpm_proxy, which this host's kernel lacks: refused at
//     validation naming the module.
//   - CD-ROMs and USB disks (disk.go): a disk device whose source is a
//     host file named *.iso, or a custom ISO volume (pool + source, content
//     type iso, without io.bus or on virtio-scsi), is a VM's read-only
//     optical drive (refused for containers: no ISO 9660 in this kernel);
//     an ISO volume on io.bus usb, virtio-blk or nvme is a read-only disk
//     there, and readonly=false on one is refused; boot.priority orders a
//     firmware-booted VM's boot disks (higher first); io.bus=usb puts a
//     VM's disk on USB; readonly=true holds on every bus.
//   - Display, tpm, CD-ROM and USB disk changes on a running VM apply at
//     its next start (logged): they are the machine's hardware, which the
//     driver does not hotplug (LXD's TPM does not hotplug either).
//
// The core calls Start before the runtime starts an instance and passes
// the Run it returns to the driver; Started once it runs; Stop after it
// stopped, Standby instead after a stateful stop (and at recovery for an
// instance left in standby); Update for devices changed on a running
// instance (hotplug).
// It never touches records, runtimes or the API.
package device
