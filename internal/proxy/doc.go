// Package proxy is the userspace forwarder behind proxy devices with
// nat=false: a Forwarder per device, inside hangard, where LXD runs a
// forkproxy process per device.
//
// A Forwarder listens in the daemon's network namespace ("bind=host", the
// only bind supported) and connects each TCP connection, and each UDP
// client address, to the connect address inside the instance's network
// namespace, so that connect=tcp:127.0.0.1:80 is the instance's own
// loopback, as with LXD.
//
// How it enters the instance's namespace: no process, and no thread that
// stays there. A socket belongs for its whole life to the namespace it was
// created in, so only socket(2) runs in the instance's namespace: a
// locked thread setns'es there, makes the socket, setns'es back to its
// own namespace and only then is unlocked; a thread that cannot go back
// is never unlocked and ends with its goroutine, and the main thread
// never goes (a thread of its own does, osthread.Throwaway). The connect,
// the copying and everything else run on ordinary goroutines, and a TCP
// connect slow to answer waits in the runtime's poller, not on a thread.
// The threads locked at once are bounded (nsThreads), so that a burst of
// connections is not a burst of threads.
//
// What it owns: its listeners, the connections and UDP sessions it made,
// their goroutines, and an open descriptor of the instance's namespace
// (which keeps that namespace alive until Close). It touches nothing else
// on the host: no firewall rule, no file, no link. It keeps no state on
// disk; the device layer starts forwarders again after a daemon restart.
//
// Invariants:
//   - Start either returns a running Forwarder or leaves nothing open.
//   - After Close returns, every listener, connection, session and
//     goroutine of the forwarder is gone, and the namespace descriptor is
//     closed.
//   - TCP keeps half-closes: a client's FIN reaches the instance's server
//     as a FIN while the answer still flows back. Between two TCP sockets
//     io.Copy splices, so the bytes stay in the kernel.
//   - UDP: one session (one socket inside the instance) per client
//     address, ended after udpIdle without a datagram either way; at most
//     maxUDPSessions per listen port.
//
// Addresses are LXD's: "tcp:ADDR:PORTS" and "udp:ADDR:PORTS", IPv6 in
// brackets, PORTS a comma list of ports and ranges. The i-th listen port
// goes to the i-th connect port, or every one to a single connect port.
// Unix sockets are refused (errdefs.NotImplemented).
package proxy
