package device

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"syscall"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// display devices (hangar's own; LXD has none) are a VM's graphical
// consoles: each its own video output served over VNC or SPICE on
// 127.0.0.1 by QEMU. The port a display got is recorded as
// volatile.DEV.port; a display with no port keeps that one across starts
// while it is free.

// vncMaxPassword is the longest VNC password: VNC authentication (RFB
// type 2) keys DES with the first 8 bytes and QEMU drops the rest, so a
// longer one would be silently weaker than it looks.
const vncMaxPassword = 8

// vncMinPort is the lowest VNC port: QEMU takes VNC addresses as display
// numbers from 5900.
const vncMinPort = 5900

var displayKeys = map[string]keyCheck{
	"type":        nil,
	"protocol":    oneOf("vnc", "spice"),
	"port":        intRange(1024, 65535),
	"password":    printable,
	"width":       intRange(320, 7680),
	"height":      intRange(200, 4320),
	"ppi":         intRange(1, 1000),
	"description": func(string) error { return nil },
}

func printable(v string) error {
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

func validateDisplay(n string, d map[string]string, vm bool) error {
	if !vm {
		return errdefs.Invalid("device %q: display devices are for virtual machines only (a container has no video output)", n)
	}
	if err := checkKeys(n, d, displayKeys); err != nil {
		return err
	}
	proto := or(d["protocol"], "vnc")
	if proto == "vnc" {
		if len(d["password"]) > vncMaxPassword {
			return errdefs.Invalid("device %q: password: VNC passwords are at most %d characters (VNC authentication ignores the rest); use a shorter one", n, vncMaxPassword)
		}
		if p, _ := strconv.Atoi(d["port"]); d["port"] != "" && p < vncMinPort {
			return errdefs.Invalid("device %q: port: %s is below %d, the lowest port QEMU serves VNC on", n, d["port"], vncMinPort)
		}
	}
	if (d["width"] == "") != (d["height"] == "") {
		return errdefs.Invalid("device %q: width and height go together", n)
	}
	return nil
}

// checkDisplays checks what no single display shows: one SPICE server
// per VM (QEMU runs one; it shows all of the VM's outputs), distinct
// fixed ports.
func checkDisplays(devs map[string]map[string]string) error {
	spice, ports := "", map[string]string{}
	for _, n := range sortedNames(devs) {
		d := devs[n]
		if d["type"] != "display" {
			continue
		}
		if d["protocol"] == "spice" {
			if spice != "" {
				return errdefs.Invalid("devices %q and %q: a VM has at most one SPICE display (QEMU runs one SPICE server, showing all its outputs)", spice, n)
			}
			spice = n
		}
		if p := d["port"]; p != "" {
			if other, dup := ports[p]; dup {
				return errdefs.Invalid("devices %q and %q: both use port %s", other, n, p)
			}
			ports[p] = n
		}
	}
	return nil
}

// startDisplays resolves a VM's display devices, in device name order,
// into the driver's displays with a port each: the device's, else the one
// it had (volatile.DEV.port) while free, else a free one. A fixed port in
// use is an error naming it.
func startDisplays(in Instance, devs map[string]map[string]string, volatile map[string]string) ([]driver.Display, error) {
	var out []driver.Display
	taken := map[int]bool{}
	for _, n := range sortedNames(devs) {
		d := devs[n]
		if d["type"] != "display" {
			continue
		}
		if !in.VM {
			return nil, errdefs.Invalid("device %s: display devices are for virtual machines only", n)
		}
		ds := driver.Display{Name: n, Protocol: or(d["protocol"], "vnc"), Password: d["password"]}
		ds.Width, _ = strconv.Atoi(d["width"])
		ds.Height, _ = strconv.Atoi(d["height"])
		ds.PPI, _ = strconv.Atoi(d["ppi"])
		if v := d["port"]; v != "" {
			ds.Port, _ = strconv.Atoi(v)
			if err := portFree(ds.Port); err != nil || taken[ds.Port] {
				return nil, errdefs.Conflict("device %s: port %d on 127.0.0.1 is in use", n, ds.Port)
			}
		} else {
			prev, _ := strconv.Atoi(in.Config["volatile."+n+".port"])
			if prev >= 1024 && (ds.Protocol != "vnc" || prev >= vncMinPort) && !taken[prev] && portFree(prev) == nil {
				ds.Port = prev
			} else {
				p, err := pickPort(taken)
				if err != nil {
					return nil, fmt.Errorf("device %s: pick a port: %w", n, err)
				}
				ds.Port = p
			}
		}
		taken[ds.Port] = true
		volatile["volatile."+n+".port"] = strconv.Itoa(ds.Port)
		out = append(out, ds)
	}
	return out, nil
}

// portFree says whether a TCP port on 127.0.0.1 can be listened on now.
func portFree(p int) error {
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return err
	}
	return l.Close()
}

// pickPort is a free port from the kernel's ephemeral range (above
// vncMinPort on any sane host), not one of taken.
func pickPort(taken map[int]bool) (int, error) {
	for range 16 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if p >= vncMinPort && !taken[p] {
			return p, nil
		}
	}
	return 0, syscall.EADDRINUSE
}

// sortedTypes is the device names of one type, sorted.
func sortedTypes(devs map[string]map[string]string, typ string) []string {
	var names []string
	for n, d := range devs {
		if d["type"] == typ {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// changedDevices are the devices of the given types added, removed or
// changed between old and cur, sorted.
func changedDevices(old, cur map[string]map[string]string, types ...string) []string {
	of := func(d map[string]string) bool {
		for _, t := range types {
			if d["type"] == t {
				return true
			}
		}
		return false
	}
	var out []string
	seen := map[string]bool{}
	for _, set := range []map[string]map[string]string{old, cur} {
		for _, n := range sortedNames(set) {
			od, nd := old[n], cur[n]
			if seen[n] || !(of(od) || of(nd)) || od != nil && nd != nil && sameDevice(od, nd) {
				continue
			}
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
