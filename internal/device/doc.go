// Package device turns an instance's devices into host state and back.
//
// What it owns
//   - The rules for device keys (validate.go): nic and proxy devices are
//     checked key by key; device types hangard does not run yet are
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
//     before PID 1 runs; a tap on the bridge for a virtual machine. The
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
//
// The core calls Start before the runtime starts an instance and passes
// the Run it returns to the driver; Started once it runs; Stop after it
// stopped, Standby instead after a stateful stop (and at recovery for an
// instance left in standby); Update for devices changed on a running
// instance (hotplug).
// It never touches records, runtimes or the API.
package device
