package device

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage"
	"github.com/hangar-dev/hangar/internal/units"
)

// Disk devices, as LXD has them:
//   - the root disk (path "/", pool, size): storage makes it (package
//     storage); here its keys are checked and its limits and bus read;
//   - a custom volume (pool + source = the volume's name): a filesystem
//     volume is bind-mounted at path in a container or shared over 9p
//     with a VM; a block volume is a VM's extra disk;
//   - a host path (source absolute, no pool): a directory or file
//     bind-mounted at path (shift=true maps ids through an idmapped
//     mount), or for a VM a directory shared over 9p or a disk image file
//     or block device as an extra disk;
//   - an ISO image (a host file named *.iso): a VM's read-only optical
//     drive (a CD-ROM; boot.priority orders it among the boot disks). A
//     container cannot mount one: the host kernel has no ISO 9660.
//   - an ISO volume (pool + source = a custom volume of content type
//     iso): the same CD-ROM without io.bus or with io.bus=virtio-scsi;
//     with io.bus usb, virtio-blk or nvme a read-only disk on that bus (a
//     guest reads ISO 9660 from any block device). Always read-only:
//     readonly=false is refused, not ignored. Never a container's.
//
// io.bus=usb puts a VM's disk on a USB controller (usb-storage);
// readonly=true holds on every bus.

// Volumes is what disk devices ask of the storage manager.
type Volumes interface {
	Attach(ctx context.Context, pool, name string) (storage.Attachment, error)
	PoolDevice(pool string) (major, minor uint32, err error)
	PoolExists(ctx context.Context, pool string) error
}

// MountHotplug changes a running container's mounts (its driver).
type MountHotplug interface {
	AttachMount(ctx context.Context, m driver.Mount) error
	DetachMount(ctx context.Context, destination string) error
}

// DiskHotplug plugs a running VM's extra disks (its driver, over QMP).
type DiskHotplug interface {
	AttachDisk(ctx context.Context, d driver.Disk) error
	DetachDisk(ctx context.Context, name string) error
}

var diskKeys = map[string]keyCheck{
	"type":          nil,
	"path":          absPath,
	"source":        func(string) error { return nil }, // checked with pool
	"pool":          func(string) error { return nil }, // checked against storage
	"size":          byteSize,
	"readonly":      boolean,
	"shift":         boolean,
	"required":      boolean,
	"recursive":     boolean,
	"limits.read":   ioRate,
	"limits.write":  ioRate,
	"limits.max":    ioRate,
	"io.bus":        oneOf("virtio-blk", "virtio-scsi", "nvme", "usb"),
	"boot.priority": intRange(0, 1<<31-1),
}

func absPath(v string) error {
	if !filepath.IsAbs(v) || filepath.Clean(v) != v && v+"/" != filepath.Clean(v)+"/" {
		return fmt.Errorf("%q is not a clean absolute path", v)
	}
	if strings.ContainsAny(v, ",:\\\x00") {
		return fmt.Errorf("%q contains one of , : \\", v)
	}
	return nil
}

func byteSize(v string) error {
	_, err := units.ParseByteSize(v)
	return err
}

// ioRate is LXD's disk limit: bytes per second ("10MB", "1GiB") or
// operations per second ("100iops").
func ioRate(v string) error {
	_, _, err := parseIORate(v)
	return err
}

func parseIORate(v string) (bps, iops int64, err error) {
	if n, ok := strings.CutSuffix(v, "iops"); ok {
		iops, err = strconv.ParseInt(n, 10, 64)
		if err != nil || iops <= 0 {
			return 0, 0, fmt.Errorf("%q: operations per second must be a positive whole number", v)
		}
		return 0, iops, nil
	}
	bps, err = units.ParseByteSize(v)
	if err != nil {
		return 0, 0, err
	}
	if bps <= 0 {
		return 0, 0, fmt.Errorf("%q: must be above 0", v)
	}
	return bps, 0, nil
}

// ioLimits reads a disk device's limits: limits.max sets both ways,
// limits.read and limits.write override it.
func ioLimits(d map[string]string) driver.IOLimits {
	var l driver.IOLimits
	set := func(v string, bps, iops *int64) {
		if v == "" {
			return
		}
		b, i, err := parseIORate(v)
		if err != nil {
			return
		}
		if b > 0 {
			*bps = b
		} else {
			*iops = i
		}
	}
	set(d["limits.max"], &l.ReadBps, &l.ReadIops)
	set(d["limits.max"], &l.WriteBps, &l.WriteIops)
	set(d["limits.read"], &l.ReadBps, &l.ReadIops)
	set(d["limits.write"], &l.WriteBps, &l.WriteIops)
	return l
}

func isRoot(d map[string]string) bool { return d["type"] == "disk" && d["path"] == "/" }

// isISO says a disk device's source is an ISO image: a host file named
// *.iso (storage has no ISO volumes).
func isISO(d map[string]string) bool {
	return d["type"] == "disk" && d["pool"] == "" && strings.HasSuffix(strings.ToLower(d["source"]), ".iso")
}

// coldPlugged says a VM's disk device applies at its next start only: a
// CD-ROM (a host *.iso or an ISO volume on the SCSI bus) or a USB disk
// (the driver plugs block disks on PCIe and SCSI only).
func (m *Manager) coldPlugged(ctx context.Context, d map[string]string) bool {
	if d["type"] != "disk" {
		return false
	}
	if isISO(d) || d["io.bus"] == "usb" {
		return true
	}
	if d["pool"] == "" || d["source"] == "" || m.cfg.Volumes == nil || (d["io.bus"] != "" && d["io.bus"] != "virtio-scsi") {
		return false
	}
	a, err := m.cfg.Volumes.Attach(ctx, d["pool"], d["source"])
	return err == nil && a.ISO
}

// validateDisk checks one disk device (a profile's as a container's).
func (m *Manager) validateDisk(ctx context.Context, n string, d map[string]string, vm bool) error {
	if err := checkKeys(n, d, diskKeys); err != nil {
		return err
	}
	if isRoot(d) {
		switch {
		case d["pool"] == "":
			return errdefs.Invalid("device %q: the root disk needs a pool", n)
		case d["source"] != "":
			return errdefs.Invalid("device %q: the root disk takes no source (its volume is the instance's)", n)
		case isTrue(d["readonly"]), isTrue(d["shift"]):
			return errdefs.Invalid("device %q: the root disk cannot be readonly or shifted", n)
		}
		if m.cfg.Volumes != nil {
			if err := m.cfg.Volumes.PoolExists(ctx, d["pool"]); err != nil {
				return fmt.Errorf("device %q: %w", n, err)
			}
		}
		return nil
	}
	if d["size"] != "" {
		return errdefs.Invalid("device %q: size applies to the root disk only; resize the volume instead", n)
	}
	if d["source"] == "" {
		return errdefs.Invalid("device %q: a disk device needs a source (a custom volume with pool, or a host path)", n)
	}
	if d["io.bus"] != "" && !vm {
		return errdefs.Invalid("device %q: io.bus applies to virtual machines' disks", n)
	}
	if isTrue(d["shift"]) && vm {
		return errdefs.Invalid("device %q: shift applies to containers", n)
	}
	if d["pool"] != "" {
		if strings.Contains(d["source"], "/") {
			return errdefs.Invalid("device %q: source %q: with pool, source is a custom volume's name", n, d["source"])
		}
		if m.cfg.Volumes == nil {
			return errdefs.Invalid("device %q: storage volumes are not supported by this daemon", n)
		}
		a, err := m.cfg.Volumes.Attach(ctx, d["pool"], d["source"])
		if err != nil {
			return fmt.Errorf("device %q: %w", n, err)
		}
		if a.ISO {
			return checkISOVolume(n, d, vm)
		}
		switch {
		case a.Block && !vm:
			return errdefs.Invalid("device %q: %q is a block volume: only a virtual machine can attach it", n, d["source"])
		case a.Block && d["path"] != "":
			return errdefs.Invalid("device %q: a block volume is a disk, not mounted at a path: remove path", n)
		case !a.Block && d["path"] == "":
			return errdefs.Invalid("device %q: a filesystem volume needs a path to be mounted at", n)
		}
		return nil
	}
	if err := absPath(d["source"]); err != nil {
		return errdefs.Invalid("device %q: source: %v", n, err)
	}
	if isISO(d) {
		switch {
		case !vm:
			return errdefs.Invalid("device %q: source %q is an ISO image: only a virtual machine can attach one (as a CD-ROM); this host's kernel cannot mount ISO 9660", n, d["source"])
		case d["path"] != "":
			return errdefs.Invalid("device %q: an ISO image is a CD-ROM, not mounted at a path: remove path", n)
		case d["io.bus"] != "" && d["io.bus"] != "virtio-scsi":
			return errdefs.Invalid("device %q: io.bus: a CD-ROM sits on the VM's SCSI controller (virtio-scsi), not %s", n, d["io.bus"])
		}
	}
	st, err := os.Stat(d["source"])
	switch {
	case err != nil && d["required"] != "" && !isTrue(d["required"]):
		// required=false: a missing source is skipped at start.
	case err != nil:
		return errdefs.Invalid("device %q: source %q: %v", n, d["source"], errors.Unwrap(err))
	case st.IsDir() && d["path"] == "":
		return errdefs.Invalid("device %q: a host directory needs a path to be mounted at", n)
	case !vm && d["path"] == "":
		return errdefs.Invalid("device %q: a disk device needs a path in the container", n)
	}
	return nil
}

// checkISOVolume checks a disk device naming an ISO volume.
func checkISOVolume(n string, d map[string]string, vm bool) error {
	switch {
	case !vm:
		return errdefs.Invalid("device %q: %q is an ISO volume: only a virtual machine can attach one (as a CD-ROM); this host's kernel cannot mount ISO 9660", n, d["source"])
	case d["path"] != "":
		return errdefs.Invalid("device %q: an ISO volume is a CD-ROM, not mounted at a path: remove path", n)
	case d["readonly"] != "" && !isTrue(d["readonly"]):
		return errdefs.Invalid("device %q: readonly=false: %q is an ISO volume, which attaches read-only only", n, d["source"])
	}
	return nil
}

// isoDisk is the disk of an ISO volume at path: a CD-ROM on the SCSI
// controller unless io.bus puts it, read-only, on another bus.
func isoDisk(n, path string, d map[string]string) *driver.Disk {
	dk := &driver.Disk{Name: n, Path: path, Format: "raw", Bus: d["io.bus"], ReadOnly: true, Limits: ioLimits(d)}
	dk.BootPriority, _ = strconv.Atoi(d["boot.priority"])
	if dk.Bus == "" || dk.Bus == "virtio-scsi" {
		dk.CDROM, dk.Bus = true, "virtio-scsi"
	}
	return dk
}

// diskRun is what an instance's disk devices give its runtime.
type diskRun struct {
	mounts  []driver.Mount
	disks   []driver.Disk
	blockIO []driver.BlockIOLimit
	rootBus string
	rootIO  driver.IOLimits
}

// startDisks resolves an instance's disk devices into mounts, disks and
// limits, in device name order.
func (m *Manager) startDisks(ctx context.Context, in Instance, devs map[string]map[string]string) (diskRun, error) {
	var run diskRun
	names := make([]string, 0, len(devs))
	for n, d := range devs {
		if d["type"] == "disk" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		d := devs[n]
		if isRoot(d) {
			run.rootBus, run.rootIO = d["io.bus"], ioLimits(d)
			continue
		}
		mnt, disk, err := m.resolveDisk(ctx, in, n, d)
		if err != nil {
			return diskRun{}, fmt.Errorf("device %s: %w", n, err)
		}
		switch {
		case disk != nil:
			run.disks = append(run.disks, *disk)
		case mnt != nil:
			run.mounts = append(run.mounts, *mnt)
		}
	}
	if !in.VM {
		var err error
		if run.blockIO, err = m.BlockIO(ctx, in, devs); err != nil {
			return diskRun{}, err
		}
	}
	return run, nil
}

// addBlockIO merges a device's limits: two disks on one block device
// share its limits, the smaller of each wins.
func addBlockIO(l []driver.BlockIOLimit, major, minor uint32, lim driver.IOLimits) []driver.BlockIOLimit {
	for i := range l {
		if l[i].Major == int64(major) && l[i].Minor == int64(minor) {
			l[i].ReadBps = minPositive(l[i].ReadBps, lim.ReadBps)
			l[i].WriteBps = minPositive(l[i].WriteBps, lim.WriteBps)
			l[i].ReadIops = minPositive(l[i].ReadIops, lim.ReadIops)
			l[i].WriteIops = minPositive(l[i].WriteIops, lim.WriteIops)
			return l
		}
	}
	return append(l, driver.BlockIOLimit{Major: int64(major), Minor: int64(minor), IOLimits: lim})
}

func minPositive(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// deviceOf is the block device under a disk device's source: its pool's,
// or the host filesystem's of a host path.
func (m *Manager) deviceOf(d map[string]string, source string) (uint32, uint32, error) {
	if d["pool"] != "" && m.cfg.Volumes != nil {
		return m.cfg.Volumes.PoolDevice(d["pool"])
	}
	var st unix.Stat_t
	if err := unix.Stat(source, &st); err != nil {
		return 0, 0, err
	}
	return unix.Major(st.Dev), unix.Minor(st.Dev), nil
}

// resolveDisk turns one non-root disk device into a mount or a disk; both
// nil is a missing source with required=false.
func (m *Manager) resolveDisk(ctx context.Context, in Instance, n string, d map[string]string) (*driver.Mount, *driver.Disk, error) {
	ro := isTrue(d["readonly"])
	if d["pool"] != "" {
		if m.cfg.Volumes == nil {
			return nil, nil, errdefs.Invalid("storage volumes are not supported by this daemon")
		}
		a, err := m.cfg.Volumes.Attach(ctx, d["pool"], d["source"])
		if err != nil {
			return nil, nil, err
		}
		if a.ISO {
			if err := checkISOVolume(n, d, in.VM); err != nil {
				return nil, nil, err
			}
			return nil, isoDisk(n, a.Path, d), nil
		}
		if a.Block {
			if !in.VM {
				return nil, nil, errdefs.Invalid("%q is a block volume: only a virtual machine can attach it", d["source"])
			}
			dk := &driver.Disk{Name: n, Path: a.Path, Format: "raw", Bus: d["io.bus"], ReadOnly: ro, Limits: ioLimits(d)}
			dk.BootPriority, _ = strconv.Atoi(d["boot.priority"])
			return nil, dk, nil
		}
		// A shifted volume holds ids as the instance sees them: an
		// unprivileged container maps them through an idmapped mount.
		return &driver.Mount{Type: "bind", Source: a.Path, Destination: d["path"], Name: n, ReadOnly: ro,
			Shift: a.Shifted && in.IDMap != nil}, nil, nil
	}
	st, err := os.Stat(d["source"])
	if err != nil {
		if d["required"] != "" && !isTrue(d["required"]) {
			return nil, nil, nil
		}
		return nil, nil, errdefs.Invalid("source %q: %v", d["source"], errors.Unwrap(err))
	}
	if in.VM && !st.IsDir() {
		dk := &driver.Disk{Name: n, Path: d["source"], Format: "raw", Bus: d["io.bus"], ReadOnly: ro, Limits: ioLimits(d)}
		dk.BootPriority, _ = strconv.Atoi(d["boot.priority"])
		if isISO(d) {
			dk.CDROM, dk.ReadOnly, dk.Bus = true, true, "virtio-scsi"
		}
		return nil, dk, nil
	}
	if isISO(d) {
		return nil, nil, errdefs.Invalid("source %q is an ISO image: only a virtual machine can attach one", d["source"])
	}
	return &driver.Mount{Type: "bind", Source: d["source"], Destination: d["path"], Name: n, ReadOnly: ro,
		Shift: isTrue(d["shift"]) && in.IDMap != nil}, nil, nil
}

// updateDisks applies a running instance's disk device changes: a
// container's mounts come and go at once, a VM's block disks are plugged
// over QMP; 9p shares of a VM apply at its next start.
func (m *Manager) updateDisks(ctx context.Context, in Instance, old, cur map[string]map[string]string) error {
	var errs []error
	for _, name := range sortedNames(old) {
		od := old[name]
		if od["type"] != "disk" || isRoot(od) {
			continue
		}
		if nd, still := cur[name]; still && onlyLimits(od, nd) {
			continue
		}
		if in.VM && m.coldPlugged(ctx, od) {
			m.cfg.Log.Info("CD-ROM and USB disk changes apply at the next start", "instance", in.Name, "device", name)
			continue
		}
		switch {
		case !in.VM && in.Mounts != nil && od["path"] != "":
			errs = append(errs, in.Mounts.DetachMount(ctx, od["path"]))
		case in.VM && in.Disks != nil:
			// Whether it was a disk or a 9p share (which stays until the
			// next start) is the VM's to know: a name it has no disk
			// under is not an error.
			if err := in.Disks.DetachDisk(ctx, name); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	for _, name := range sortedNames(cur) {
		nd := cur[name]
		if nd["type"] != "disk" || isRoot(nd) {
			continue
		}
		if od, had := old[name]; had && onlyLimits(od, nd) {
			continue
		}
		if in.VM && m.coldPlugged(ctx, nd) {
			m.cfg.Log.Info("CD-ROM and USB disk changes apply at the next start", "instance", in.Name, "device", name)
			continue
		}
		mnt, disk, err := m.resolveDisk(ctx, in, name, nd)
		if err != nil {
			errs = append(errs, fmt.Errorf("device %s: %w", name, err))
			continue
		}
		switch {
		case mnt != nil && !in.VM && in.Mounts != nil:
			if err := in.Mounts.AttachMount(ctx, *mnt); err != nil {
				errs = append(errs, fmt.Errorf("device %s: %w", name, err))
			}
		case disk != nil && in.Disks != nil:
			if err := in.Disks.AttachDisk(ctx, *disk); err != nil {
				errs = append(errs, fmt.Errorf("device %s: %w", name, err))
			}
		case mnt != nil:
			m.cfg.Log.Info("disk share applies at the next start", "instance", in.Name, "device", name)
		}
	}
	return errors.Join(errs...)
}

// BlockIO are a container's disk devices' limits per host block device,
// as Start gives them, for a live change of limits.
func (m *Manager) BlockIO(ctx context.Context, in Instance, devs map[string]map[string]string) ([]driver.BlockIOLimit, error) {
	var out []driver.BlockIOLimit
	for _, n := range sortedNames(devs) {
		d := devs[n]
		lim := ioLimits(d)
		if d["type"] != "disk" || lim == (driver.IOLimits{}) {
			continue
		}
		var major, minor uint32
		var err error
		switch {
		case isRoot(d) || d["pool"] != "":
			if m.cfg.Volumes == nil {
				continue
			}
			major, minor, err = m.cfg.Volumes.PoolDevice(d["pool"])
		default:
			major, minor, err = m.deviceOf(d, d["source"])
			if err != nil && d["required"] != "" && !isTrue(d["required"]) {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("device %s: %w", n, err)
		}
		out = addBlockIO(out, major, minor, lim)
	}
	return out, nil
}

// onlyLimits says two versions of a disk device differ in limits alone:
// the mount stays, the limits change through the cgroup.
func onlyLimits(a, b map[string]string) bool {
	strip := func(d map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range d {
			if !strings.HasPrefix(k, "limits.") {
				out[k] = v
			}
		}
		return out
	}
	return sameDevice(strip(a), strip(b))
}
