package virt

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/units"
)

// vncDevice is the name of the display device that carries vnc_*.
const vncDevice = "vnc"

// rootDevice is the name of an instance's root disk.
const rootDevice = "root"

const gib = 1 << 30

// typeOf maps the seed's instance_type to the core's.
func typeOf(t string) instance.Type {
	if t == "VM" {
		return instance.TypeVM
	}
	return instance.TypeContainer
}

// createRequest translates a checked create into the core's request.
// fp is the image's fingerprint (resolved among local images); pool is
// the storage pool the root goes to (the argument's or the default).
func createRequest(a createArgs, fp, pool string) (instance.CreateRequest, error) {
	typ := typeOf(a.InstanceType)
	req := instance.CreateRequest{
		Name:    a.Name,
		Type:    typ,
		Config:  map[string]string{},
		Devices: instance.Devices{},
		Source:  instance.Source{Type: instance.SourceImage, Fingerprint: fp},
	}
	for k, v := range a.Environment {
		req.Config["environment."+k] = v
	}
	if a.Autostart != nil {
		req.Config["boot.autostart"] = strconv.FormatBool(*a.Autostart)
	}
	if a.CPU != nil {
		req.Config["limits.cpu"] = *a.CPU
	}
	if a.Memory != nil {
		req.Config["limits.memory"] = strconv.FormatInt(*a.Memory, 10)
	}
	var errs validationErrors
	const p = "virt.instance.create"
	if typ == instance.TypeContainer {
		if a.PrivilegedMode {
			req.Config["security.privileged"] = "true"
		}
		if a.VNCEnabled {
			errs.add(p+".vnc_enabled", "VNC is only supported for VMs")
		}
		if a.SecureBoot != nil && *a.SecureBoot {
			errs.add(p+".secure_boot", "Secure boot is only supported for VMs")
		}
	} else {
		if a.PrivilegedMode {
			errs.add(p+".privileged_mode", "This is only valid for containers")
		}
		if a.SecureBoot != nil {
			req.Config["security.secureboot"] = strconv.FormatBool(*a.SecureBoot)
		}
	}
	if !a.VNCEnabled && (a.VNCPort != nil || a.VNCPassword != nil) {
		errs.add(p+".vnc_enabled", "Must be set when vnc_port or vnc_password is given")
	}
	if a.VNCEnabled {
		req.Devices[vncDevice] = vncDisplay(a.VNCPort, a.VNCPassword)
	}
	root := map[string]string{"type": "disk", "path": "/", "pool": pool}
	if typ == instance.TypeVM {
		// The seed's size and bus are a VM's root disk's; a container's
		// root is a tree.
		root["size"] = strconv.FormatInt(a.RootDiskSize, 10) + "GiB"
		root["io.bus"] = strings.ToLower(a.RootDiskIOBus)
	}
	req.Devices[rootDevice] = root
	for i, d := range a.Devices {
		name, dev, err := toDevice(d, typ, req.Devices)
		if err != nil {
			errs.add(fmt.Sprintf("%s.devices.%d.%s", p, i, err.attr), "%s", err.msg)
			continue
		}
		req.Devices[name] = dev
	}
	return req, errs.err()
}

func vncDisplay(port *int64, password *string) map[string]string {
	d := map[string]string{"type": "display", "protocol": "vnc"}
	if port != nil {
		d["port"] = strconv.FormatInt(*port, 10)
	}
	if password != nil {
		d["password"] = *password
	}
	return d
}

type attrErr struct{ attr, msg string }

// toDevice maps one device of the union to an LXD-style device map and
// its name (the given one, or the first free "<kind><n>").
func toDevice(d deviceArgs, typ instance.Type, taken instance.Devices) (string, map[string]string, *attrErr) {
	m := map[string]string{}
	set := func(k string, v *string) {
		if v != nil && *v != "" {
			m[k] = *v
		}
	}
	setInt := func(k string, v *int64) {
		if v != nil {
			m[k] = strconv.FormatInt(*v, 10)
		}
	}
	prefix := strings.ToLower(d.DevType)
	switch d.DevType {
	case devDisk:
		m["type"] = "disk"
		set("source", d.Source)
		set("path", d.Destination)
		setInt("boot.priority", d.BootPriority)
		if d.IOBus != nil {
			m["io.bus"] = strings.ToLower(*d.IOBus)
		}
		set("pool", d.StoragePool)
		if d.Source == nil {
			return "", nil, &attrErr{"source", "Source is required"}
		}
		if typ == instance.TypeContainer && d.Destination == nil {
			return "", nil, &attrErr{"destination", "Destination is required for containers"}
		}
		if d.Destination != nil && !strings.HasPrefix(*d.Destination, "/") {
			return "", nil, &attrErr{"destination", "Destination must be an absolute path"}
		}
	case devCDROM:
		if typ != instance.TypeVM {
			return "", nil, &attrErr{"dev_type", "CDROM devices are only supported for VMs"}
		}
		if !strings.HasSuffix(strings.ToLower(*d.Source), ".iso") || !strings.HasPrefix(*d.Source, "/") {
			return "", nil, &attrErr{"source", "Source must be an absolute path to an .iso file"}
		}
		m["type"] = "disk"
		m["source"] = *d.Source
		setInt("boot.priority", d.BootPriority)
	case devNIC:
		m["type"] = "nic"
		prefix = "eth"
		switch {
		case d.Network != nil && d.NICType != nil:
			return "", nil, &attrErr{"nic_type", "Either network or nic_type with parent, not both"}
		case d.Network != nil:
			m["network"] = *d.Network
		case d.NICType != nil:
			if d.Parent == nil {
				return "", nil, &attrErr{"parent", "Parent is required with nic_type"}
			}
			m["nictype"] = strings.ToLower(*d.NICType)
			m["parent"] = *d.Parent
		default:
			return "", nil, &attrErr{"network", "Network or nic_type with parent is required"}
		}
		set("hwaddr", d.MAC)
	case devProxy:
		m["type"] = "proxy"
		m["listen"] = fmt.Sprintf("%s:0.0.0.0:%d", strings.ToLower(d.SourceProto), d.SourcePort)
		if typ == instance.TypeVM {
			// A VM has no namespace hangard can connect from: the
			// forward is NAT to its address.
			m["connect"] = fmt.Sprintf("%s:0.0.0.0:%d", strings.ToLower(d.DestProto), d.DestPort)
			m["nat"] = "true"
		} else {
			m["connect"] = fmt.Sprintf("%s:127.0.0.1:%d", strings.ToLower(d.DestProto), d.DestPort)
		}
	case devTPM:
		m["type"] = "tpm"
		set("path", d.Path)
		set("pathrm", d.PathRM)
	case devUSB:
		m["type"] = "usb"
		setInt("busnum", d.Bus)
		setInt("devnum", d.Dev)
		set("productid", d.USBProductID)
		set("vendorid", d.USBVendorID)
	case devGPU:
		m["type"] = "gpu"
		m["gputype"] = strings.ToLower(d.GPUType)
		set("id", d.ID)
		setInt("gid", d.GID)
		setInt("uid", d.UID)
		set("mode", d.Mode)
		set("mdev", d.Mdev)
		set("mig.uuid", d.MigUUID)
		set("pci", d.PCI)
		set("productid", d.ProductID)
		set("vendorid", d.VendorID)
	case devPCI:
		m["type"] = "pci"
		m["address"] = d.Address
	default:
		return "", nil, &attrErr{"dev_type", "unknown device type"}
	}
	if d.Readonly && m["type"] == "disk" {
		m["readonly"] = "true"
	}
	if d.Name != nil {
		if _, used := taken[*d.Name]; used {
			return "", nil, &attrErr{"name", fmt.Sprintf("Device name %q is already in use", *d.Name)}
		}
		return *d.Name, m, nil
	}
	for i := 0; ; i++ {
		name := prefix + strconv.Itoa(i)
		if _, used := taken[name]; !used {
			return name, m, nil
		}
	}
}

// fromDevice maps an LXD-style device back to the union; ok is false for
// devices the seed has no type for (display, none, the VNC display).
func fromDevice(name string, d map[string]string) (map[string]any, bool) {
	strOrNil := func(k string) any {
		if v, ok := d[k]; ok && v != "" {
			return v
		}
		return nil
	}
	intOrNil := func(k string) any {
		if v, err := strconv.ParseInt(d[k], 10, 64); err == nil {
			return v
		}
		return nil
	}
	out := map[string]any{"name": name, "readonly": d["readonly"] == "true"}
	switch d["type"] {
	case "disk":
		if src := d["source"]; strings.HasSuffix(strings.ToLower(src), ".iso") && d["path"] == "" {
			out["dev_type"] = devCDROM
			out["source"] = src
			out["boot_priority"] = intOrNil("boot.priority")
			out["description"] = src
			break
		}
		out["dev_type"] = devDisk
		out["source"] = strOrNil("source")
		out["destination"] = strOrNil("path")
		out["boot_priority"] = intOrNil("boot.priority")
		if bus := d["io.bus"]; bus != "" {
			out["io_bus"] = strings.ToUpper(bus)
		} else {
			out["io_bus"] = nil
		}
		out["storage_pool"] = strOrNil("pool")
		out["description"] = fmt.Sprintf("%v -> %v", orDash(d["source"]), orDash(d["path"]))
	case "nic":
		out["dev_type"] = devNIC
		out["network"] = strOrNil("network")
		if t := d["nictype"]; t != "" {
			out["nic_type"] = strings.ToUpper(t)
		} else if d["network"] != "" {
			out["nic_type"] = "BRIDGED"
		} else {
			out["nic_type"] = nil
		}
		out["parent"] = strOrNil("parent")
		out["mac"] = strOrNil("hwaddr")
		out["description"] = fmt.Sprintf("%v network interface", orDash(firstOf(d["network"], d["parent"])))
	case "proxy":
		sp, sport := splitListen(d["listen"])
		dp, dport := splitListen(d["connect"])
		out["dev_type"] = devProxy
		out["source_proto"] = sp
		out["source_port"] = sport
		out["dest_proto"] = dp
		out["dest_port"] = dport
		out["description"] = fmt.Sprintf("%s/%d (%s/%d)", sp, sport, dp, dport)
	case "tpm":
		out["dev_type"] = devTPM
		out["path"] = strOrNil("path")
		out["pathrm"] = strOrNil("pathrm")
		out["description"] = "TPM"
	case "usb":
		out["dev_type"] = devUSB
		out["bus"] = intOrNil("busnum")
		out["dev"] = intOrNil("devnum")
		out["product_id"] = strOrNil("productid")
		out["vendor_id"] = strOrNil("vendorid")
		out["description"] = fmt.Sprintf("USB %v:%v", orDash(d["vendorid"]), orDash(d["productid"]))
	case "gpu":
		out["dev_type"] = devGPU
		gt := strings.ToUpper(d["gputype"])
		if gt == "" {
			gt = "PHYSICAL"
		}
		out["gpu_type"] = gt
		out["id"] = strOrNil("id")
		out["gid"] = intOrNil("gid")
		out["uid"] = intOrNil("uid")
		out["mode"] = strOrNil("mode")
		out["mdev"] = strOrNil("mdev")
		out["mig_uuid"] = strOrNil("mig.uuid")
		out["pci"] = strOrNil("pci")
		out["productid"] = strOrNil("productid")
		out["vendorid"] = strOrNil("vendorid")
		out["description"] = "GPU " + gt
	case "pci":
		out["dev_type"] = devPCI
		out["address"] = d["address"]
		out["description"] = "PCI " + d["address"]
	default:
		return nil, false
	}
	return out, true
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// splitListen reads "tcp:ADDR:PORT" into ("TCP", PORT).
func splitListen(v string) (string, int64) {
	proto, rest, _ := strings.Cut(v, ":")
	i := strings.LastIndexByte(rest, ':')
	port, _ := strconv.ParseInt(rest[i+1:], 10, 64)
	return strings.ToUpper(proto), port
}

// deviceList is device_list's answer: the instance's devices (its
// profiles' included) the union has a type for, by name.
func deviceList(in instance.Instance) []map[string]any {
	names := make([]string, 0, len(in.ExpandedDevices))
	for n := range in.ExpandedDevices {
		names = append(names, n)
	}
	slices.Sort(names)
	out := []map[string]any{}
	for _, n := range names {
		if d, ok := fromDevice(n, in.ExpandedDevices[n]); ok {
			out = append(out, d)
		}
	}
	return out
}

// statusOf maps the core's statuses onto the seed's enum.
func statusOf(s instance.Status) string {
	switch s {
	case instance.StatusRunning:
		return "RUNNING"
	case instance.StatusStopped:
		return "STOPPED"
	case instance.StatusStarting:
		return "STARTING"
	case instance.StatusStopping:
		return "STOPPING"
	case instance.StatusFreezing:
		return "FREEZING"
	case instance.StatusFrozen:
		return "FROZEN"
	case instance.StatusError:
		return "ERROR"
	}
	return "UNKNOWN"
}

// entryOf is the seed's VirtInstanceEntry of an instance, every field
// from the core.
func entryOf(f instance.Full) map[string]any {
	cfg := f.ExpandedConfig
	vm := f.Type == instance.TypeVM
	e := make(map[string]any, 24)
	e["id"], e["name"], e["type"], e["status"] = f.Name, f.Name, "CONTAINER", statusOf(f.Status)
	if f.State.Status != 0 {
		e["status"] = statusOf(f.State.Status)
	}
	if vm {
		e["type"] = "VM"
	}
	e["cpu"] = nilIfEmpty(cfg["limits.cpu"])
	e["memory"] = nil
	if v := cfg["limits.memory"]; v != "" {
		if n, err := units.ParseByteSize(v); err == nil {
			e["memory"] = num(n)
		}
	}
	e["autostart"] = cfg["boot.autostart"] == "true"
	env := make(map[string]any, 4)
	for k, v := range cfg {
		if name, ok := strings.CutPrefix(k, "environment."); ok {
			env[name] = v
		}
	}
	e["environment"] = env
	e["aliases"] = aliasesOf(f.State.Network)
	e["image"] = imageOf(cfg)
	e["idmap"] = nil
	if !vm {
		e["idmap"] = idmapOf(cfg["volatile.idmap.current"])
	}
	raw := map[string]any{"config": stringMap(f.Config), "devices": devicesAny(f.Devices)}
	e["raw"] = raw
	e["vnc_enabled"], e["vnc_port"], e["vnc_password"] = false, nil, nil
	if d, ok := f.ExpandedDevices[vncDevice]; ok && d["type"] == "display" && d["protocol"] == "vnc" {
		e["vnc_enabled"] = true
		p := d["port"]
		if v := cfg["volatile."+vncDevice+".port"]; v != "" {
			p = v
		}
		if n, err := strconv.ParseInt(p, 10, 64); err == nil {
			e["vnc_port"] = num(n)
		}
		e["vnc_password"] = nilIfEmpty(d["password"])
	}
	e["secure_boot"], e["privileged_mode"] = nil, nil
	if vm {
		e["secure_boot"] = cfg["security.secureboot"] != "false"
	} else {
		e["privileged_mode"] = cfg["security.privileged"] == "true"
	}
	e["root_disk_size"], e["root_disk_io_bus"], e["storage_pool"] = nil, nil, nil
	if root, ok := rootOf(f.ExpandedDevices); ok {
		if n, err := units.ParseByteSize(root["size"]); err == nil && root["size"] != "" {
			e["root_disk_size"] = num(n / gib)
		}
		if b := root["io.bus"]; b != "" {
			e["root_disk_io_bus"] = strings.ToUpper(b)
		}
		e["storage_pool"] = nilIfEmpty(root["pool"])
	}
	return e
}

// num is an integer as the query engine and the event diff compare it.
func num(n int64) json.Number { return json.Number(strconv.FormatInt(n, 10)) }

// normalize returns v with its Go integers as json.Number, the form the
// query engine and the event diff compare. It copies maps and slices:
// job arguments and results are shared between sessions.
func normalize(v any) any {
	switch x := v.(type) {
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case int:
		return json.Number(strconv.Itoa(x))
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

// rootOf finds the root disk (path "/") among devices.
func rootOf(devs instance.Devices) (map[string]string, bool) {
	if d, ok := devs[rootDevice]; ok && d["type"] == "disk" && d["path"] == "/" {
		return d, true
	}
	for _, d := range devs {
		if d["type"] == "disk" && d["path"] == "/" {
			return d, true
		}
	}
	return nil, false
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func devicesAny(d instance.Devices) map[string]any {
	out := make(map[string]any, len(d))
	for n, m := range d {
		out[n] = stringMap(m)
	}
	return out
}

// aliasesOf lists the global addresses of every interface but lo.
func aliasesOf(nw map[string]instance.NetworkState) []any {
	names := make([]string, 0, len(nw))
	for n := range nw {
		names = append(names, n)
	}
	slices.Sort(names)
	out := []any{}
	for _, n := range names {
		if n == "lo" {
			continue
		}
		for _, a := range nw[n].Addresses {
			if a.Scope != "" && a.Scope != "global" {
				continue
			}
			ip := net.ParseIP(a.Address)
			if ip == nil || ip.IsLoopback() {
				continue
			}
			typ := "INET"
			if a.Family == "inet6" || ip.To4() == nil {
				typ = "INET6"
			}
			var mask any
			if m, err := strconv.ParseInt(a.Netmask, 10, 64); err == nil {
				mask = num(m)
			}
			out = append(out, map[string]any{"type": typ, "address": a.Address, "netmask": mask})
		}
	}
	return out
}

// imageOf reads the image's properties the core copied into image.*.
func imageOf(cfg map[string]string) map[string]any {
	img := map[string]any{}
	for _, k := range []string{"architecture", "description", "os", "release", "serial", "type", "variant"} {
		img[k] = nilIfEmpty(cfg["image."+k])
	}
	img["secureboot"] = nil
	if v, err := strconv.ParseBool(cfg["image.requirements.secureboot"]); err == nil {
		img["secureboot"] = v
	}
	return img
}

// idmapEntry is LXD's JSON form of one id map range.
type idmapEntry struct {
	Isuid, Isgid           bool
	Hostid, Nsid, Maprange int64
}

// idmapOf reads volatile.idmap.current into the seed's UserNsIdmap;
// nil for a container without one (privileged).
func idmapOf(v string) any {
	if v == "" {
		return nil
	}
	var ents []idmapEntry
	if err := json.Unmarshal([]byte(v), &ents); err != nil || len(ents) == 0 {
		return nil
	}
	out := map[string]any{"uid": nil, "gid": nil}
	for _, e := range ents {
		r := map[string]any{"hostid": num(e.Hostid), "maprange": num(e.Maprange), "nsid": num(e.Nsid)}
		if e.Isuid && out["uid"] == nil {
			out["uid"] = r
		}
		if e.Isgid && out["gid"] == nil {
			out["gid"] = r
		}
	}
	return out
}
