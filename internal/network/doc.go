// Package network owns hangard's networks: the managed ones it creates
// (bridges with NAT, DHCP and DNS; macvlan over a host NIC), the host's own
// interfaces it lists beside them, the addresses and MACs handed to
// instance NICs (IPAM, kept in the store so leases survive restarts), the
// network forwards, and the firewall state that all of these need.
//
// What it owns
//   - Network records and the rules for their config (config.go): one table
//     of keys with a checker each; unknown keys are refused naming the key.
//   - Host state for each managed bridge, made idempotently at every start
//     (Manager.Start) and after every change: the bridge link and its
//     addresses (package netdev), one dnsmasq per bridge (package dnsmasq)
//     fed with a host entry per NIC, and the one nftables table `inet
//     hangar` (package firewall), rebuilt whole from the records on every
//     change, so a daemon killed with -9 never leaves duplicates.
//   - Allocations (ipam.go): a NIC asks Allocate for its MAC and addresses;
//     a static ipv4.address/ipv6.address is honoured or refused, others
//     are picked free from the subnet. The store's UNIQUE constraints make a
//     shared address impossible even under a race.
//   - NAT rules for proxy devices: the device layer hands its DNAT rules to
//     SetProxyRules and the manager folds them into the firewall state.
//   - MAC filters of NICs with security.mac_filtering: the device layer
//     hands each one (host link and MAC) to SetMACFilter, folded in the
//     same way. Proxies and filters live in memory only: after a restart
//     the devices of running instances report them again, and with
//     Config.HoldFirewall the kernel keeps the last daemon's tables until
//     Recovered applies the whole state once.
//
// What it does not own: instances and profiles (the core asks who uses a
// network through the Users function it is given), the veths and taps of
// instance NICs (package device), and the runtimes.
package network
