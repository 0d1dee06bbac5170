package container

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
)

// Network reads a running container's interfaces from the host: counters
// from /proc/PID/net/dev (which shows PID's network namespace) at every
// call, names, flags, MTU and addresses by asking the kernel from inside
// the namespace on a thread of its own. A container has no NICs yet, so
// this is its loopback; devices will add theirs.
//
// Entering the namespace costs 130-160 us (BenchmarkNetwork), paid once per
// running instance by every list at recursion 2, where the rest of a
// state read is 5 us: the interfaces are kept for ifaceTTL, so clients
// polling lists share one read (then 20-30 us, the counters), while a
// change made inside the container shows within that time.
func (d *Driver) Network(ctx context.Context, id string) (map[string]driver.NetInterface, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	in := d.lookup(id)
	if in == nil {
		return nil, driver.ErrNotRunning
	}
	out, err := in.ifaces.read(in.pid, time.Now())
	if err != nil {
		return nil, err
	}
	// PID 1 is the daemon's child (it is the subreaper), so its pid cannot
	// be reused before the watcher reaps it and closes the stats: still
	// open after the read means what was read was the container's.
	in.stats.mu.RLock()
	closed := in.stats.closed
	in.stats.mu.RUnlock()
	if closed {
		return nil, driver.ErrNotRunning
	}
	return out, nil
}

// ifaceTTL is how long a container's interface list is reused.
const ifaceTTL = time.Second

// ifaceCache holds one container's interfaces as last read inside its
// network namespace.
type ifaceCache struct {
	mu     sync.Mutex
	at     time.Time
	ifaces map[string]driver.NetInterface
}

// read returns pid's interfaces with fresh counters, the rest from the
// cache while it is younger than ifaceTTL.
func (c *ifaceCache) read(pid int, now time.Time) (map[string]driver.NetInterface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ifaces != nil && now.Sub(c.at) < ifaceTTL {
		out, named, err := countersOf(pid, c.ifaces)
		if err != nil || (len(out) == named && named == len(c.ifaces)) {
			return out, err
		}
		// An interface came or went (a NIC plugged or unplugged): the
		// counters name every interface, so this is seen at once.
	}
	ifaces, err := inNetns(pid)
	if err != nil {
		return nil, err
	}
	c.ifaces, c.at = ifaces, now
	out, _, err := countersOf(pid, c.ifaces)
	return out, err
}

// forget drops the cached interfaces: the next read asks the kernel.
func (c *ifaceCache) forget() {
	c.mu.Lock()
	c.ifaces = nil
	c.mu.Unlock()
}

// ForgetNetwork makes the next Network read of a container ask the kernel
// (its NICs were just changed: addresses may differ under the same names).
func (d *Driver) ForgetNetwork(id string) {
	if in := d.lookup(id); in != nil {
		in.ifaces.forget()
	}
}

// readNetwork reads the interfaces of pid's network namespace.
func readNetwork(pid int) (map[string]driver.NetInterface, error) {
	ifaces, err := inNetns(pid)
	if err != nil {
		return nil, err
	}
	out, _, err := countersOf(pid, ifaces)
	return out, err
}

// countersOf returns a copy of ifaces with the counters of
// /proc/PID/net/dev, and how many interfaces the counters named; an
// interface gone since ifaces was read is left out.
func countersOf(pid int, ifaces map[string]driver.NetInterface) (map[string]driver.NetInterface, int, error) {
	dev, err := readProcFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil, 0, fmt.Errorf("read network counters: %w", err)
	}
	counters, err := parseNetDev(dev)
	if err != nil {
		return nil, 0, err
	}
	out := make(map[string]driver.NetInterface, len(counters))
	for name, c := range counters {
		ni, ok := ifaces[name]
		if !ok {
			continue // appeared since the interfaces were read
		}
		ni.BytesReceived, ni.PacketsReceived, ni.ErrorsReceived, ni.DroppedReceived = c[0], c[1], c[2], c[3]
		ni.BytesSent, ni.PacketsSent, ni.ErrorsSent, ni.DroppedSent = c[8], c[9], c[10], c[11]
		out[name] = ni
	}
	return out, len(counters), nil
}

// parseNetDev reads /proc/net/dev: two header lines, then "name:" and 16
// counters (8 received, 8 sent) per interface.
func parseNetDev(b []byte) (map[string][16]int64, error) {
	out := map[string][16]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("net/dev line %d: no interface name", line+1)
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("net/dev line %d: %d counters, want 16", line+1, len(f))
		}
		var c [16]int64
		for i := range c {
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net/dev line %d: %w", line+1, err)
			}
			c[i] = v
		}
		out[strings.TrimSpace(name)] = c
	}
	return out, sc.Err()
}

// inNetns lists the interfaces of pid's network namespace. The calling
// goroutine's thread enters the namespace and comes back; a thread that
// cannot come back stays locked, so the runtime ends it with the
// goroutine and no other goroutine ever runs in the container's namespace.
func inNetns(pid int) (map[string]driver.NetInterface, error) {
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	type result struct {
		ifaces map[string]driver.NetInterface
		err    error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("open own network namespace: %w", err)}
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("enter network namespace: %w", err)}
			return
		}
		ifaces, lerr := listInterfaces()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: errors.Join(lerr, fmt.Errorf("leave network namespace: %w", err))}
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		done <- result{ifaces, lerr}
	}()
	r := <-done
	return r.ifaces, r.err
}

// listInterfaces lists the current thread's namespace's interfaces.
func listInterfaces() (map[string]driver.NetInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make(map[string]driver.NetInterface, len(ifs))
	for _, ifc := range ifs {
		ni := driver.NetInterface{
			Addresses: []driver.NetAddress{},
			Hwaddr:    ifc.HardwareAddr.String(),
			MTU:       ifc.MTU,
			Up:        ifc.Flags&net.FlagUp != 0,
		}
		switch {
		case ifc.Flags&net.FlagLoopback != 0:
			ni.Type = "loopback"
		case ifc.Flags&net.FlagPointToPoint != 0:
			ni.Type = "point-to-point"
		default:
			ni.Type = "broadcast"
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			na := driver.NetAddress{Family: "inet6", Address: ipn.IP.String(), PrefixLen: ones, Scope: "global"}
			if ipn.IP.To4() != nil {
				na.Family = "inet"
			}
			switch {
			case ipn.IP.IsLoopback():
				na.Scope = "local"
			case ipn.IP.IsLinkLocalUnicast():
				na.Scope = "link"
			}
			ni.Addresses = append(ni.Addresses, na)
		}
		out[ifc.Name] = ni
	}
	return out, nil
}
