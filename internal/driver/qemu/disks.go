package qemu

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// A VM's disks (its root, then Spec.Disks) are block nodes defined with
// -blockdev (QMP blockdev-add when plugged later: the same JSON), each a
// file (or host_device) node under a qcow2 or raw format node, under a
// throttle filter node when the disk has I/O limits (a throttle group of
// its own, -object / object-add). The guest device on top depends on the
// disk's bus:
//
//   - virtio-blk (the default): virtio-blk-pci, or virtio-blk-device on
//     microvm's MMIO for the root;
//   - virtio-scsi: scsi-hd on the VM's one virtio-scsi-pci controller
//     (target id = its place; SCSI plugs without a PCIe port of its own);
//   - nvme: an nvme controller per disk, its namespace the disk;
//   - usb: usb-storage on the VM's one qemu-xhci controller (usb0);
//   - a CD-ROM (Disk.CDROM, an ISO image): scsi-cd on the virtio-scsi
//     controller, always read-only.
//
// Read-only disks are read-only nodes under any bus (QMP query-block
// shows ro). On a VM booted by firmware, Disk.BootPriority orders the
// boot disks (bootindex: higher priority first, then the root); CD-ROM
// and USB disks are plugged at boot only.
//
// Every device has the disk's key as its serial, so the guest finds it by
// name, as udev names it: /dev/disk/by-id/virtio-KEY,
// scsi-0QEMU_QEMU_HARDDISK_KEY, nvme-QEMU_NVMe_Ctrl_KEY (the agent makes
// those links in a guest without udev). The key is the disk's name when
// that is at most 20 bytes (a serial's size) of letters, digits, '_', '-'
// and '.', else "h" and a hash of the name. The agent finds its root by
// the root's serial, whatever bus it is on and in whatever order the
// kernel probes the disks.
//
// The root disk sits on the machine's own bus and stays for the VM's life.
// Extra virtio-blk and nvme disks each get a PCIe root port, as NICs do,
// and a VM boots with hotplugDiskPorts spare ones, so disks plug and
// unplug while it runs (AttachDisk, DetachDisk: blockdev-add + device_add,
// device_del + DEVICE_DELETED + blockdev-del). Where every disk is (port,
// SCSI target, controller) is kept in vm.json, so that a restored VM has
// the saved one's devices at the same places.

// Disk buses (driver.Disk.Bus).
const (
	busVirtioBlk  = "virtio-blk"
	busVirtioSCSI = "virtio-scsi"
	busNVMe       = "nvme"
	busUSB        = "usb"
)

// usbController is the qemu-xhci controller's id; its bus is
// usbController+".0".
const usbController = "usb0"

// hotplugDiskPorts is how many free root ports for disks a VM boots with;
// maxDisks bounds the extra disks (each may need a port, and ports need
// chassis numbers).
const (
	hotplugDiskPorts = 4
	maxDisks         = 32
	// diskChassis is the first disk port's chassis number, above any
	// NIC port's (nic.go numbers those from 1).
	diskChassis = 128
	// scsiController is the virtio-scsi controller's id; its bus is
	// scsiController+".0".
	scsiController = "scsi0"
)

// rootName is the root disk's name when storage gives none.
const rootName = "root"

// keyLen is the longest key: a serial's size in virtio-blk and NVMe.
const keyLen = 20

// diskKey is a disk's QEMU-safe key: its serial and the root of its ids.
func diskKey(name string) string {
	if len(name) <= keyLen && safeName(name) {
		return name
	}
	return "h" + hashOf([]byte(name))[:keyLen-1]
}

// safeName reports whether s is non-empty and only letters, digits, '_',
// '-' and '.': safe in QEMU ids, options and serials, and in guest paths.
func safeName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// The QEMU ids of a disk with key k: its device, its nodes (file,
// format, throttle filter) and its throttle group; and disk port i.
func diskDeviceID(k string) string   { return "disk-" + k }
func diskFileNode(k string) string   { return "f-" + k }
func diskFormatNode(k string) string { return "d-" + k }
func diskFilterNode(k string) string { return "t-" + k }
func diskGroupID(k string) string    { return "tg-" + k }
func diskPortID(i int) string        { return "diskport" + strconv.Itoa(i) }

// diskBus is d's bus, the default filled in.
func diskBus(d driver.Disk) string {
	if d.Bus == "" {
		return busVirtioBlk
	}
	return d.Bus
}

// checkDisk says what is wrong with one disk, naming it.
func checkDisk(d driver.Disk) error {
	if d.Name == "" {
		return errdefs.Invalid("disk without a name")
	}
	switch d.Format {
	case "qcow2", "raw":
	default:
		return errdefs.Invalid("disk %s: format %q: qcow2 or raw", d.Name, d.Format)
	}
	switch diskBus(d) {
	case busVirtioBlk, busVirtioSCSI, busNVMe, busUSB:
	default:
		return errdefs.Invalid("disk %s: bus %q: virtio-blk, virtio-scsi, nvme or usb", d.Name, d.Bus)
	}
	if d.CDROM && d.Bus != "" && d.Bus != busVirtioSCSI {
		return errdefs.Invalid("disk %s: a CD-ROM sits on the SCSI controller, not bus %s", d.Name, d.Bus)
	}
	if d.BootPriority < 0 {
		return errdefs.Invalid("disk %s: negative boot priority", d.Name)
	}
	if d.Path == "" || !strings.HasPrefix(d.Path, "/") {
		return errdefs.Invalid("disk %s: path %q is not absolute", d.Name, d.Path)
	}
	l := d.Limits
	if l.ReadBps < 0 || l.WriteBps < 0 || l.ReadIops < 0 || l.WriteIops < 0 {
		return errdefs.Invalid("disk %s: negative I/O limit", d.Name)
	}
	return nil
}

// checkDiskFile checks that a disk's file exists, as a file or a block
// device: QEMU would fail later, with a less clear message.
func checkDiskFile(d driver.Disk) (blockDev bool, err error) {
	st, err := os.Stat(d.Path)
	if err != nil {
		if os.IsNotExist(err) {
			return false, errdefs.NotFound("disk %s: %s does not exist", d.Name, d.Path)
		}
		return false, fmt.Errorf("disk %s: %w", d.Name, err)
	}
	switch {
	case st.Mode().IsRegular():
		return false, nil
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		return true, nil
	}
	return false, errdefs.Invalid("disk %s: %s is neither a file nor a block device", d.Name, d.Path)
}

// checkDisks checks the root and extra disks and that no two share a name
// or a key.
func checkDisks(root driver.Disk, extra []driver.Disk) error {
	if len(extra) > maxDisks {
		return errdefs.Invalid("%d disks: a VM takes at most %d besides its root", len(extra), maxDisks)
	}
	names, keys := map[string]bool{}, map[string]string{}
	for _, d := range append([]driver.Disk{root}, extra...) {
		if err := checkDisk(d); err != nil {
			return err
		}
		k := diskKey(d.Name)
		if names[d.Name] {
			return errdefs.Invalid("disk name %s given to two disks", d.Name)
		}
		if other, ok := keys[k]; ok {
			return errdefs.Invalid("disks %s and %s have the same serial %s: rename one", other, d.Name, k)
		}
		names[d.Name], keys[k] = true, d.Name
	}
	return nil
}

// diskPlace is where one disk is plugged.
type diskPlace struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	Bus  string `json:"bus"`
	// Port is the disk port of a virtio-blk or nvme disk; -1 is the
	// machine's own bus (the root).
	Port int `json:"port"`
	// Target is a virtio-scsi disk's SCSI target id.
	Target int `json:"target,omitempty"`
	// Throttled says the disk has a throttle filter node and group.
	Throttled bool `json:"throttled,omitempty"`
	ReadOnly  bool `json:"read_only,omitempty"`
	// CDROM says it is an optical drive (scsi-cd).
	CDROM bool `json:"cdrom,omitempty"`
}

// diskLayout is where a VM's disks are: the ports, the SCSI controller
// and every disk.
type diskLayout struct {
	// Ports is how many disk ports the VM has.
	Ports int `json:"ports"`
	// SCSI is where the virtio-scsi controller is: -2 none, -1 the
	// machine's bus, else the disk port it was plugged into.
	SCSI int `json:"scsi"`
	// USB says the VM has the USB controller (on the machine's bus).
	USB   bool        `json:"usb,omitempty"`
	Disks []diskPlace `json:"disks"`
}

const (
	scsiNone    = -2
	onMachine   = -1
	noPortsFree = -1
)

// newDiskLayout places a VM's disks at boot: the root on the machine's bus,
// extra virtio-blk and nvme disks on ports in order, virtio-scsi disks on
// the controller (on the machine's bus when any disk needs it at boot),
// then hotplugDiskPorts free ports.
func newDiskLayout(root driver.Disk, extra []driver.Disk) *diskLayout {
	l := &diskLayout{SCSI: scsiNone}
	target := 0
	for i, d := range append([]driver.Disk{root}, extra...) {
		p := newPlace(d)
		switch {
		case p.Bus == busVirtioSCSI:
			l.SCSI = onMachine
			p.Target = target
			target++
		case p.Bus == busUSB:
			l.USB = true
		case i > 0:
			p.Port = l.Ports
			l.Ports++
		}
		l.Disks = append(l.Disks, p)
	}
	l.Ports += hotplugDiskPorts
	return l
}

// newPlace is d's place on the machine's bus, to be changed.
func newPlace(d driver.Disk) diskPlace {
	return diskPlace{Name: d.Name, Key: diskKey(d.Name), Bus: diskBus(d), Port: onMachine,
		Throttled: d.Limits != (driver.IOLimits{}), ReadOnly: d.ReadOnly, CDROM: d.CDROM}
}

// normalDisk is d as the driver plugs it: a CD-ROM is read-only on the
// SCSI controller.
func normalDisk(d driver.Disk) driver.Disk {
	if d.CDROM {
		d.ReadOnly, d.Bus = true, busVirtioSCSI
	}
	return d
}

// coldPlugged says a disk is plugged at boot only (AttachDisk refuses
// it): a CD-ROM or a USB disk.
func coldPlugged(d driver.Disk) bool { return d.CDROM || d.Bus == busUSB }

// bootOrder is the bootindex of a firmware-booted VM's boot disks:
// those with a boot priority, highest first (ties in order), then the
// root (disks[0]) if it has none.
func bootOrder(disks []driver.Disk) map[string]int {
	idx := []int{}
	for i, d := range disks {
		if d.BootPriority > 0 {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return disks[b].BootPriority - disks[a].BootPriority })
	if len(disks) > 0 && disks[0].BootPriority == 0 {
		idx = append(idx, 0)
	}
	out := map[string]int{}
	for n, i := range idx {
		out[disks[i].Name] = n
	}
	return out
}

// layoutFor is the layout of a start: a restored VM keeps the one it was
// saved with when it has the same disks on the same buses (it cannot be
// restored otherwise: QEMU's device tree must match); a boot lays them
// out afresh.
func layoutFor(root driver.Disk, extra []driver.Disk, saved *diskLayout) *diskLayout {
	fresh := newDiskLayout(root, extra)
	if saved == nil || len(saved.Disks) != len(fresh.Disks) {
		return fresh
	}
	want := map[string]diskPlace{}
	for _, p := range fresh.Disks {
		want[p.Key] = p
	}
	for _, p := range saved.Disks {
		w, ok := want[p.Key]
		if !ok || w.Name != p.Name || w.Bus != p.Bus || w.Throttled != p.Throttled || w.ReadOnly != p.ReadOnly || w.CDROM != p.CDROM || (w.Port == onMachine) != (p.Port == onMachine) {
			return fresh
		}
	}
	return saved
}

// freePort is a disk port no disk or controller is on, or noPortsFree.
func (l *diskLayout) freePort() int {
	used := map[int]bool{l.SCSI: true}
	for _, p := range l.Disks {
		used[p.Port] = true
	}
	for i := range l.Ports {
		if !used[i] {
			return i
		}
	}
	return noPortsFree
}

// freeTarget is the lowest SCSI target no disk has.
func (l *diskLayout) freeTarget() int {
	used := map[int]bool{}
	for _, p := range l.Disks {
		if p.Bus == busVirtioSCSI {
			used[p.Target] = true
		}
	}
	t := 0
	for used[t] {
		t++
	}
	return t
}

func (l *diskLayout) find(name string) (diskPlace, bool) {
	for _, p := range l.Disks {
		if p.Name == name {
			return p, true
		}
	}
	return diskPlace{}, false
}

func (l *diskLayout) clone() *diskLayout {
	c := *l
	c.Disks = slices.Clone(l.Disks)
	return &c
}

// throttleGroup is the -object (and object-add) value of a disk's
// throttle group; zero limits are no limit.
func throttleGroup(key string, lim driver.IOLimits) map[string]any {
	limits := map[string]any{}
	for k, v := range map[string]int64{
		"bps-read": lim.ReadBps, "bps-write": lim.WriteBps,
		"iops-read": lim.ReadIops, "iops-write": lim.WriteIops,
	} {
		if v > 0 {
			limits[k] = v
		}
	}
	return map[string]any{"qom-type": "throttle-group", "id": diskGroupID(key), "limits": limits}
}

// blockdev is the -blockdev (and blockdev-add) value of a disk's nodes:
// file (host_device for a block device) under the format node, under a
// throttle filter when throttled. A qcow2 disk's backing file (an
// overlay's image) opens as its header says, read-only.
func blockdev(d driver.Disk, p diskPlace, blockDev bool) map[string]any {
	ro := d.ReadOnly
	file := map[string]any{
		"driver": "file", "node-name": diskFileNode(p.Key), "filename": d.Path,
		"read-only": ro, "discard": "unmap",
	}
	if blockDev {
		file["driver"] = "host_device"
	}
	node := map[string]any{
		"driver": d.Format, "node-name": diskFormatNode(p.Key), "file": file,
		"read-only": ro, "discard": "unmap",
	}
	if !p.Throttled {
		return node
	}
	return map[string]any{
		"driver": "throttle", "node-name": diskFilterNode(p.Key), "throttle-group": diskGroupID(p.Key),
		"file": node, "read-only": ro,
	}
}

// topNode is the node a disk's device uses.
func topNode(p diskPlace) string {
	if p.Throttled {
		return diskFilterNode(p.Key)
	}
	return diskFormatNode(p.Key)
}

// prop is one device property; props keep their order on the command
// line and become device_add's arguments.
type prop struct {
	k string
	v any
}

type props []prop

// arg is the -device value: "driver,k=v,...".
func (ps props) arg() string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		if p.k != "driver" {
			b.WriteString(p.k + "=")
		}
		b.WriteString(optEscape(fmt.Sprint(p.v)))
	}
	return b.String()
}

// qmp is device_add's arguments.
func (ps props) qmp() map[string]any {
	m := map[string]any{}
	for _, p := range ps {
		m[p.k] = p.v
	}
	return m
}

// optEscape escapes a value for QEMU's comma-separated options: a comma
// is doubled.
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// diskDevice is a disk's guest device. microvm puts the root on its MMIO
// transport; bootIndex, when not negative, is its place in firmware's
// boot order.
func diskDevice(p diskPlace, microvm bool, bootIndex int) props {
	var ps props
	switch p.Bus {
	case busVirtioSCSI:
		drv := "scsi-hd"
		if p.CDROM {
			drv = "scsi-cd"
		}
		ps = props{{"driver", drv}, {"bus", scsiController + ".0"}, {"channel", 0}, {"scsi-id", p.Target}, {"lun", 0}}
	case busUSB:
		ps = props{{"driver", "usb-storage"}, {"bus", usbController + ".0"}}
	case busNVMe:
		ps = props{{"driver", "nvme"}}
	default:
		drv := "virtio-blk-pci"
		if microvm && p.Port == onMachine {
			drv = "virtio-blk-device"
		}
		ps = props{{"driver", drv}}
	}
	ps = append(ps, prop{"id", diskDeviceID(p.Key)}, prop{"drive", topNode(p)}, prop{"serial", p.Key})
	if p.Bus != busVirtioSCSI && p.Port != onMachine {
		ps = append(ps, prop{"bus", diskPortID(p.Port)})
	}
	if bootIndex >= 0 {
		ps = append(ps, prop{"bootindex", bootIndex})
	}
	return ps
}

// scsiControllerDevice is the virtio-scsi controller, on a disk port when
// plugged while the VM runs.
func scsiControllerDevice(port int) props {
	ps := props{{"driver", "virtio-scsi-pci"}, {"id", scsiController}}
	if port != onMachine {
		ps = append(ps, prop{"bus", diskPortID(port)})
	}
	return ps
}

// diskArgs is the command line of a VM's disk ports, SCSI controller and
// disks (disks[i] placed at l.Disks[i]; blockDevs[i] says it is a block
// device). boot marks the root as firmware's boot disk.
func diskArgs(disks []driver.Disk, blockDevs []bool, l *diskLayout, microvm, boot bool) []string {
	var args []string
	for i := range l.Ports {
		args = append(args, "-device", "pcie-root-port,id="+diskPortID(i)+",bus=pcie.0,chassis="+strconv.Itoa(diskChassis+i))
	}
	if l.SCSI != scsiNone {
		args = append(args, "-device", scsiControllerDevice(l.SCSI).arg())
	}
	if l.USB {
		args = append(args, "-device", "qemu-xhci,id="+usbController)
	}
	order := map[string]int{}
	if boot {
		order = bootOrder(disks)
	}
	byName := map[string]int{}
	for i, d := range disks {
		byName[d.Name] = i
	}
	for _, p := range l.Disks {
		i := byName[p.Name]
		if p.Throttled {
			args = append(args, "-object", jsonArg(throttleGroup(p.Key, disks[i].Limits)))
		}
		args = append(args, "-blockdev", jsonArg(blockdev(disks[i], p, blockDevs[i])),
			"-device", diskDevice(p, microvm, bootIndexOf(order, p.Name)).arg())
	}
	return args
}

func bootIndexOf(order map[string]int, name string) int {
	if i, ok := order[name]; ok {
		return i
	}
	return -1
}

// jsonArg is a -blockdev or -object value in JSON syntax, which needs no
// escaping of the paths in it.
func jsonArg(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// agentDisk is what the guest agent needs of a disk to find it.
func agentDisk(p diskPlace) vmagent.Disk {
	return vmagent.Disk{Serial: p.Key, Bus: p.Bus, ReadOnly: p.ReadOnly}
}
