// Package netdev is the host's network devices, through netlink: managed
// bridges, the network namespaces of containers, the NICs in them (veth,
// macvlan), the taps and macvtaps of virtual machines (a macvtap's
// character device opened for QEMU: OpenMacvtap), traffic limits (tc), and the
// interface lists that networks and instance states show. The network
// domain (managed bridges) and the device layer (instance NICs) call it;
// it knows nothing of instances, networks as records, or the API.
//
// What it owns: the links, addresses, default routes and tc objects it is
// asked to make, and one ifb device per NIC whose outbound traffic is
// limited. What it must not touch: firewall rules (nftables is another
// package's), dnsmasq, sysctls, and any link it was not named: a name that
// is taken by a link of another kind than the one asked for is a conflict,
// never a deletion.
//
// Namespaces. Every operation works in the network namespace of a Host:
// Open gives the daemon's own, OpenNetNS another (tests run each in a
// namespace of its own, and so can an e2e daemon). Netlink sockets for a
// namespace are made on a throwaway OS thread (internal/osthread) that
// enters it and then exits: a socket stays in the namespace it was made
// in, and no goroutine ever runs on a thread left in a container's
// namespace. netlink.NewHandleAt is not used because it enters and leaves
// the namespace on a pooled thread and ignores a failure to come back.
//
// On disk. A container's network namespace is a bind mount of an nsfs file
// on a path the caller chooses (CreateNetNS), which runc joins by path. As
// `ip netns` does, the directory holding it is made a shared mount point
// (bind-mounted on itself first when it is not one), so that unmounting
// the file also unmounts its copies in mount namespaces made since, and
// the namespace is freed.
//
// Invariants.
//   - Every call is idempotent and safe after a daemon killed with -9: a
//     stale veth, macvlan, macvtap or ifb of the same name is replaced, a tap or
//     bridge is reused and brought to the asked state, a namespace path
//     that already is one is kept.
//   - A call that fails leaves nothing it made: a NIC that cannot get its
//     addresses or routes is deleted, a bridge it created is deleted.
//   - Input is checked before anything is made (names of at most 15
//     bytes, MAC addresses, prefixes, MTUs): errdefs.Invalid. A missing
//     bridge, parent, link or namespace is errdefs.NotFound; a name taken
//     by another kind of link is errdefs.Conflict.
//   - LXD's semantics for limits: ingress is traffic into the instance
//     (shaped on the egress of the host side), egress is traffic out of it
//     (redirected from the host side's ingress to an ifb and shaped there,
//     since this kernel has no police action).
package netdev
