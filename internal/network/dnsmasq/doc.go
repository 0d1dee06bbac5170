// Package dnsmasq runs one supervised dnsmasq (Debian's dnsmasq-base) per
// managed bridge, as LXD and Incus do: DHCPv4 with static reservations by
// MAC and dynamic ranges, DHCPv6 and router advertisements, and DNS for the
// instance names of the network's domain ("hangar" unless dns.domain).
//
// # What it owns
//
// The dnsmasq process of each Server and the files of its Dir. It does not
// make the bridge, its addresses or firewall rules (the network layer does,
// before Start), and it does not decide addresses: the caller's IPAM does,
// and hands them in as Hosts. It never removes Dir: that goes with the
// network.
//
// # On-disk layout (Config.Dir)
//
//	dnsmasq.conf    every option; rewritten at each Start
//	dhcp-hosts      dhcp-hostsfile: MAC,IPv4,[IPv6],NAME per host with a MAC
//	hosts           addn-hosts: "IP NAME NAME.DOMAIN" per static address
//	dnsmasq.leases  dnsmasq's leases (kept across restarts: not --leasefile-ro)
//	dnsmasq.pid     written by dnsmasq; removed by Stop
//	dnsmasq.log     dnsmasq's own log (quiet DHCP); dnsmasq.log.1 the one before
//
// The command line is only "dnsmasq --keep-in-foreground
// --conf-file=DIR/dnsmasq.conf": nothing of the host's (/etc/dnsmasq.conf,
// /etc/hosts, resolv.conf, upstream servers) is read, the domain is
// answered from local data only (local=/DOMAIN/), and the command line
// names the one Dir a process serves.
//
// # Invariants
//
//   - At most one dnsmasq per Dir. Start first ends any left by a daemon
//     killed with SIGKILL: the one the pid file names and any other in /proc,
//     each only if its /proc/PID/cmdline carries this Dir's --conf-file, and
//     through a pidfd, so a reused pid is never signalled. Within one daemon,
//     a second Start on a live Dir is refused (ErrConflict).
//   - Supervised: when dnsmasq dies it is restarted after a backoff (100 ms
//     doubling to 10 s, reset after a 30 s run), logged with slog; Stop ends
//     it and its supervision and returns once it is reaped.
//   - Reloads lose nothing: SetHosts writes both hosts files atomically, then
//     sends SIGHUP. Start and every restart wait until dnsmasq is up (seen as
//     end of file on its stdout/stderr pipe, which dnsmasq replaces with
//     /dev/null once its sockets, leases and pid file are done; it reads the
//     hosts files only after that), and the hosts that changed between runs
//     are reloaded into the next run as soon as it is recorded.
//   - The process is not tied to any daemon thread: no Pdeathsig, its own
//     session, an empty environment, no inherited descriptors. With
//     Config.NetNS, each start forks from a throwaway thread that entered that
//     namespace (internal/osthread), so no runtime thread is left in it.
//   - dnsmasq drops to Config.User (nobody) once bound; as that user it
//     rereads the hosts files, so Start refuses a Dir it could not reach.
//
// # Why dnsmasq
//
// It is what LXD and Incus run, so clients see the same DHCP and DNS
// behaviour (lease names, static reservations, RA with ra-names), it is one
// small process per bridge, and Debian ships it. A DHCP/DNS server inside
// hangard would avoid the process but would have to reimplement DHCPv4,
// DHCPv6 and RA correctly and keep serving while the daemon restarts, which
// a separate process does for free.
package dnsmasq
