package qemu

import (
	"fmt"
	"net"
	"strconv"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// A VM's displays (Spec.Displays) are each a video output of its own,
// served on 127.0.0.1 only: the first is the machine's primary adapter
// (virtio-vga on q35, VGA compatible, what firmware draws on; on microvm,
// which has no legacy VGA, a virtio-gpu-pci), the others virtio-gpu-pci
// outputs. A VNC display is a VNC server bound to its output (-vnc
// ...,id=,display=DEVICE); QEMU runs one SPICE server, which shows every
// output, so a VM has at most one SPICE display. Width and height are the
// output's xres and yres. A password never reaches QEMU's command line
// (ps shows it): the server starts with authentication on and no
// password, so nobody logs in, and QMP set_password gives it its
// password once QEMU answers. A VM without displays has no video device
// at all, as before.

// vncBasePort is QEMU's first VNC port: its addresses are display
// numbers from there.
const vncBasePort = 5900

// vncMaxPassword is VNC authentication's longest password (its DES key).
const vncMaxPassword = 8

func displayKey(name string) string      { return diskKey(name) }
func displayDeviceID(name string) string { return "video-" + displayKey(name) }
func displayVNCID(name string) string    { return "vnc-" + displayKey(name) }

// checkDisplays says what is wrong with a VM's displays, naming it.
func checkDisplays(ds []driver.Display) error {
	spice, names, ports := "", map[string]bool{}, map[int]string{}
	for _, d := range ds {
		if d.Name == "" {
			return errdefs.Invalid("display without a name")
		}
		if names[displayKey(d.Name)] {
			return errdefs.Invalid("display %s: name given twice", d.Name)
		}
		names[displayKey(d.Name)] = true
		switch d.Protocol {
		case "vnc", "":
			if d.Port != 0 && (d.Port < vncBasePort || d.Port > 65535) {
				return errdefs.Invalid("display %s: VNC port %d: QEMU serves VNC on ports %d-65535", d.Name, d.Port, vncBasePort)
			}
			if len(d.Password) > vncMaxPassword {
				return errdefs.Invalid("display %s: VNC passwords are at most %d characters", d.Name, vncMaxPassword)
			}
		case "spice":
			if spice != "" {
				return errdefs.Invalid("displays %s and %s: a VM has one SPICE server", spice, d.Name)
			}
			spice = d.Name
			if d.Port != 0 && (d.Port < 1 || d.Port > 65535) {
				return errdefs.Invalid("display %s: port %d", d.Name, d.Port)
			}
		default:
			return errdefs.Invalid("display %s: protocol %q: vnc or spice", d.Name, d.Protocol)
		}
		if d.Width < 0 || d.Height < 0 {
			return errdefs.Invalid("display %s: negative resolution", d.Name)
		}
		if other, dup := ports[d.Port]; dup && d.Port != 0 {
			return errdefs.Invalid("displays %s and %s: both on port %d", other, d.Name, d.Port)
		}
		ports[d.Port] = d.Name
	}
	return nil
}

// withPorts fills in the displays without a port with free ones.
func withPorts(ds []driver.Display) ([]driver.Display, error) {
	out := append([]driver.Display(nil), ds...)
	for i := range out {
		if out[i].Port != 0 {
			continue
		}
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("display %s: %w", out[i].Name, err)
		}
		out[i].Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	return out, nil
}

// displayArgs is the command line of a VM's displays: video devices and
// their servers. q35 says the machine has legacy VGA.
func displayArgs(ds []driver.Display, q35 bool) []string {
	var args []string
	for i, d := range ds {
		drv := "virtio-gpu-pci"
		if i == 0 && q35 {
			drv = "virtio-vga"
		}
		ps := props{{"driver", drv}, {"id", displayDeviceID(d.Name)}}
		if d.Width > 0 && d.Height > 0 {
			ps = append(ps, prop{"xres", d.Width}, prop{"yres", d.Height})
		}
		args = append(args, "-device", ps.arg())
		switch d.Protocol {
		case "spice":
			opt := "addr=127.0.0.1,port=" + strconv.Itoa(d.Port)
			if d.Password == "" {
				opt += ",disable-ticketing=on"
			}
			args = append(args, "-spice", opt)
		default:
			opt := "127.0.0.1:" + strconv.Itoa(d.Port-vncBasePort) + ",id=" + displayVNCID(d.Name) + ",display=" + displayDeviceID(d.Name)
			if d.Password != "" {
				opt += ",password=on"
			}
			args = append(args, "-vnc", opt)
		}
	}
	return args
}

// displayPasswords are the QMP set_password calls that give a VM's
// displays their passwords.
func displayPasswords(ds []driver.Display) []map[string]any {
	var out []map[string]any
	for _, d := range ds {
		if d.Password == "" {
			continue
		}
		if d.Protocol == "spice" {
			out = append(out, map[string]any{"protocol": "spice", "password": d.Password})
			continue
		}
		out = append(out, map[string]any{"protocol": "vnc", "password": d.Password, "display": displayVNCID(d.Name)})
	}
	return out
}

// setDisplayPasswords gives a started VM's displays their passwords.
func setDisplayPasswords(v *vm, ds []driver.Display) error {
	mon := v.monitor()
	for _, a := range displayPasswords(ds) {
		if _, err := mon.run("set_password", a); err != nil {
			return fmt.Errorf("display password: %w", err)
		}
	}
	return nil
}
