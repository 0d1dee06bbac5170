// Package autostandby puts idle virtual machines in standby and wakes them
// when a client connects: the seed's AutoStandbyPolicy and
// AutoStandbyStatus, run in the daemon.
//
// What it owns: the policy keys (policy.go: autostandby.enabled,
// autostandby.idle_timeout, autostandby.ignore_destination_ports,
// autostandby.ignore_source_cidrs, which the core validates with
// Validators), the classification of conntrack entries (conntrack.go), the
// netlink reader of the host's conntrack table (netlink.go) and the
// Controller (controller.go) with its state per instance. What it must not
// touch: instance records, drivers, the firewall. It reaches the core
// through the small Core interface (the daemon adapts internal/instance
// and the network manager to it) and the table through Conntrack; it
// imports neither. It keeps nothing on disk: the core's record says which
// instances are in standby (stopped with a saved state: Instance.Standby,
// the core's Stateful), so after a daemon restart a running instance
// counts down afresh and one left in standby is woken as before.
//
// Counting. One poll (Interval, 1s) lists the instances (as the daemon,
// every project) and dumps the conntrack table once (IPv4 and IPv6, TCP
// only), whatever the number of instances. An entry counts for instance X
// when X's address is the connection's destination after DNAT (the reply
// tuple's source: a network forward or a proxy with nat=true rewrites the
// original destination), its client (the original source) is not X
// itself, its state is SYN_SENT, SYN_RECV or ESTABLISHED (a closing
// connection keeps nothing awake), X's port (the reply's source port, not
// the listen port of a forward) is not in ignore_destination_ports and the
// client is not in ignore_source_cidrs. X's addresses are those its NICs
// hold on managed networks (the IPAM's allocations, matched by device and
// MAC): they survive stops, so a standby VM's address is known.
//
// State machine, per instance: active (connections > 0) -> idle countdown
// (idle since the first poll that saw none) -> standby requested (the
// core's Stop with Stateful, as the daemon, in the background: saving RAM
// takes seconds and knocks must still be seen) -> standby -> (a knock)
// waking -> running, idle from the wake-up. A Hold moves the earliest
// standby to now + idle_timeout; a failed standby counts down afresh. The
// controller logs each step (slog) and emits instance-auto-standby and
// instance-auto-wake lifecycle events beside the core's own
// instance-stopped and instance-started.
//
// Wake-up. Any instance in standby whose policy is enabled is woken by a
// connection, whoever put it there: this controller, a user's standby
// through an API, or a daemon before a restart. (A standby without an
// enabled policy stays down until someone restores it.) While such an
// instance exists, the controller polls every WakeInterval (100ms).
// Nobody holds the standby VM's address, so a client's SYN to it, direct
// or through a network forward or a proxy device with nat=true (nftables
// DNAT, which stays while the VM is down), creates an entry in SYN_SENT
// whose reply source is that address and gets no answer. Such an entry
// (not ignored) starts the instance: the core restores the saved RAM, the
// VM keeps its address, and the client's next SYN retransmit (1s, 3s,
// 7s... after the first) reaches it and the connection succeeds. An
// established entry left from before the standby does not wake it.
//
// What keeps the address reachable meanwhile is the device layer's
// (device.Manager.Standby, for every stateful stop, whoever asked for it):
// a proxy's DNAT rules stay under the proxy's own owner, so the restore's
// start replaces them in place (a rule of another owner on the listen
// port would make that start fail, and the restored VM with it); and the
// host's neighbour entry for each of the VM's addresses is pinned to its
// MAC (permanent), so the host keeps sending the client's SYNs there
// instead of failing ARP or ND after ~3s ("no route to host") while the
// restore runs. The NIC's start re-points the entry; a stateless stop or
// a delete removes both; a restarted daemon puts them back for instances
// in standby (the core's recovery). This package touches neither.
//
// Status (status.go) answers from the last poll: reasons are checked in
// the order of the Reason constants, the first that applies wins.
// Supported is false for containers (no stateful stop: no CRIU) with
// reason unsupported_platform; Eligible is true when the policy applies to
// the instance as it is (enabled, running, with an address, conntrack
// readable), whether or not it is idle. Status and Hold read the instance
// through Core.Instance as the caller, so a caller who may not see it gets
// the core's error. Hold is a conflict for an instance in standby (or not
// running) and invalid without an enabled policy. An enabled policy
// without idle_timeout uses DefaultIdleTime (5m); an idle timeout must be
// at least 1s.
package autostandby
