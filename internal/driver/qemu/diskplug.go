package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// diskPlugTimeout bounds the wait for the guest to see a plugged or grown
// disk, diskUnplugTimeout for it to release one (Linux's native PCIe
// hotplug waits 5 s before it lets a device go).
const (
	diskPlugTimeout   = 30 * time.Second
	diskUnplugTimeout = 30 * time.Second
)

var (
	_ driver.DiskHotplugger = (*Driver)(nil)
	_ driver.DiskResizer    = (*Driver)(nil)
)

// AttachDisk plugs a disk into a running VM: its nodes (blockdev-add, and
// its throttle group), then its device, a virtio-blk or nvme one on a free
// disk port, or a scsi-hd on the virtio-scsi controller (plugged first, on
// a free port, when the VM has none). With a guest agent it returns once
// the guest has the disk and links it in /dev/disk/by-id. A failure leaves
// the VM as it was.
//
// Errors: errdefs.ErrInvalidArgument for a bad disk, ErrNotFound for a
// file that does not exist, ErrConflict for a name the VM has already or
// a paused VM, ErrNotImplemented when the VM has no free port (the disk
// comes at its next start), driver.ErrNotRunning.
func (d *Driver) AttachDisk(ctx context.Context, id string, dk driver.Disk) error {
	if err := checkDisk(dk); err != nil {
		return err
	}
	if coldPlugged(dk) {
		return errdefs.Invalid("disk %s: a CD-ROM or USB disk is plugged at the VM's next start", dk.Name)
	}
	v, mon, err := d.runningVM(id)
	if err != nil {
		return err
	}
	v.diskMu.Lock()
	defer v.diskMu.Unlock()
	v.mu.Lock()
	var l *diskLayout
	if v.disks != nil {
		l = v.disks.clone()
	}
	v.mu.Unlock()
	if l == nil {
		return errdefs.NotImplemented("VM %s started before disks could be plugged into it: disk %s comes at its next start", id, dk.Name)
	}
	key := diskKey(dk.Name)
	for _, p := range l.Disks {
		if p.Name == dk.Name {
			return errdefs.Conflict("VM %s has a disk %s already", id, dk.Name)
		}
		if p.Key == key {
			return errdefs.Conflict("VM %s has a disk %s with the serial %s that disk %s would have", id, p.Name, key, dk.Name)
		}
	}
	blockDev, err := checkDiskFile(dk)
	if err != nil {
		return err
	}
	p := newPlace(dk)
	if p.Bus == busVirtioSCSI {
		if l.SCSI == scsiNone {
			port := l.freePort()
			if port == noPortsFree {
				return errdefs.NotImplemented("VM %s has no free port for a SCSI controller while it runs: disk %s comes at its next start", id, dk.Name)
			}
			if _, err := mon.run("device_add", scsiControllerDevice(port).qmp()); err != nil {
				return fmt.Errorf("disk %s: SCSI controller: %w", dk.Name, err)
			}
			// The controller stays: the layout records it, so a
			// restore has it in the same place.
			l.SCSI = port
			d.setDisks(v, l)
		}
		p.Target = l.freeTarget()
	} else {
		if p.Port = l.freePort(); p.Port == noPortsFree {
			return errdefs.NotImplemented("VM %s has no free port for one more disk while it runs (it booted with %d spare): disk %s comes at its next start", id, hotplugDiskPorts, dk.Name)
		}
	}
	if err := plugDisk(mon, dk, p, blockDev); err != nil {
		return err
	}
	l.Disks = append(l.Disks, p)
	d.setDisks(v, l)

	ac := v.agentConn()
	if ac == nil || ac.agentVersion() < vmagent.VersionDisk {
		return nil // the guest's own udev takes it
	}
	pctx, cancel := context.WithTimeout(ctx, diskPlugTimeout)
	defer cancel()
	if err := agentDo(pctx, ac, vmagent.MsgDisk, agentDisk(p)); err != nil {
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), diskUnplugTimeout)
		defer ucancel()
		if uerr := d.unplugDisk(uctx, v, mon, l, p); uerr != nil {
			d.log.Warn("unplug a disk the guest did not take", "id", id, "disk", dk.Name, "err", uerr)
		}
		return fmt.Errorf("disk %s: guest: %w", dk.Name, err)
	}
	return nil
}

// plugDisk adds a disk's throttle group, nodes and device, undoing what
// it did on failure.
func plugDisk(mon *monitor, dk driver.Disk, p diskPlace, blockDev bool) error {
	if p.Throttled {
		if _, err := mon.run("object-add", throttleGroup(p.Key, dk.Limits)); err != nil {
			return fmt.Errorf("disk %s: I/O limits: %w", dk.Name, err)
		}
	}
	undoGroup := func() {
		if p.Throttled {
			_, _ = mon.run("object-del", map[string]any{"id": diskGroupID(p.Key)})
		}
	}
	if _, err := mon.run("blockdev-add", blockdev(dk, p, blockDev)); err != nil {
		undoGroup()
		return fmt.Errorf("disk %s: %w", dk.Name, err)
	}
	if _, err := mon.run("device_add", diskDevice(p, false, -1).qmp()); err != nil {
		_, _ = mon.run("blockdev-del", map[string]any{"node-name": topNode(p)})
		undoGroup()
		return fmt.Errorf("disk %s: %w", dk.Name, err)
	}
	return nil
}

// setDisks makes l the VM's disk layout and records it.
func (d *Driver) setDisks(v *vm, l *diskLayout) {
	v.mu.Lock()
	v.disks = l.clone()
	v.mu.Unlock()
	if err := v.saveMeta(); err != nil {
		d.log.Warn("record disk layout", "id", v.id, "err", err)
	}
}

// DetachDisk unplugs the disk called name from a running VM, whether it
// was there at boot or plugged since, and returns once the guest has let
// it go and QEMU has closed its file. The root disk cannot be detached
// (errdefs.ErrInvalidArgument); errdefs.ErrNotFound when the VM has no
// such disk; ErrConflict for a paused VM.
func (d *Driver) DetachDisk(ctx context.Context, id, name string) error {
	v, mon, err := d.runningVM(id)
	if err != nil {
		return err
	}
	v.diskMu.Lock()
	defer v.diskMu.Unlock()
	v.mu.Lock()
	var l *diskLayout
	if v.disks != nil {
		l = v.disks.clone()
	}
	v.mu.Unlock()
	if l == nil {
		return errdefs.NotImplemented("VM %s started before disks could be unplugged from it: disk %s goes at its next start", id, name)
	}
	p, ok := l.find(name)
	if !ok {
		return errdefs.NotFound("VM %s has no disk %s", id, name)
	}
	if p.Name == l.Disks[0].Name {
		return errdefs.Invalid("disk %s is the VM's root disk: it cannot be detached", name)
	}
	uctx, cancel := context.WithTimeout(ctx, diskUnplugTimeout)
	defer cancel()
	if err := d.unplugDisk(uctx, v, mon, l, p); err != nil {
		return err
	}
	if ac := v.agentConn(); ac != nil && ac.agentVersion() >= vmagent.VersionDisk {
		// The guest's /dev/disk/by-id link of the disk goes too.
		if err := agentDo(uctx, ac, vmagent.MsgDisk, vmagent.Disk{}); err != nil {
			d.log.Warn("remove the link of an unplugged disk", "id", id, "disk", name, "err", err)
		}
	}
	return nil
}

// unplugDisk removes a disk's device, waits for the guest to release it,
// then removes its nodes (closing its file) and throttle group, and takes
// it out of layout l (a clone of the VM's, made its layout).
func (d *Driver) unplugDisk(ctx context.Context, v *vm, mon *monitor, l *diskLayout, p diskPlace) error {
	if err := deviceDel(ctx, v, mon, diskDeviceID(p.Key)); err != nil {
		return fmt.Errorf("disk %s: %w", p.Name, err)
	}
	if _, err := mon.run("blockdev-del", map[string]any{"node-name": topNode(p)}); err != nil && !strings.Contains(err.Error(), "not found") {
		return fmt.Errorf("disk %s: %w", p.Name, err)
	}
	if p.Throttled {
		if _, err := mon.run("object-del", map[string]any{"id": diskGroupID(p.Key)}); err != nil && !strings.Contains(err.Error(), "not found") {
			d.log.Warn("remove a disk's throttle group", "id", v.id, "disk", p.Name, "err", err)
		}
	}
	l.Disks = removePlace(l.Disks, p.Name)
	d.setDisks(v, l)
	return nil
}

func removePlace(ps []diskPlace, name string) []diskPlace {
	out := ps[:0]
	for _, p := range ps {
		if p.Name != name {
			out = append(out, p)
		}
	}
	return out
}

// ResizeDisk makes a running VM's disk size bytes through QEMU
// (block_resize, which grows the image file itself: storage must not
// resize an image a running QEMU holds, and qemu-img refuses to, as QEMU
// holds its lock). The guest sees the new size at once; for the root
// disk of a VM with a guest agent, its ext4 filesystem grows to it before
// ResizeDisk returns. A smaller size than the disk has is
// errdefs.ErrInvalidArgument; the same size is nothing to change (the
// root's filesystem still grows to it).
func (d *Driver) ResizeDisk(ctx context.Context, id, name string, size int64) error {
	if size <= 0 {
		return errdefs.Invalid("disk %s: size %d: want a positive byte count", name, size)
	}
	v, mon, err := d.runningVM(id)
	if err != nil {
		return err
	}
	v.diskMu.Lock()
	defer v.diskMu.Unlock()
	v.mu.Lock()
	l := v.disks
	v.mu.Unlock()
	if l == nil {
		return errdefs.NotImplemented("VM %s started before its disks could be resized while it runs: disk %s grows at its next start", id, name)
	}
	p, ok := l.find(name)
	if !ok {
		return errdefs.NotFound("VM %s has no disk %s", id, name)
	}
	have, err := nodeSize(mon, diskFormatNode(p.Key))
	if err != nil {
		return fmt.Errorf("disk %s: %w", name, err)
	}
	if size < have {
		return errdefs.Invalid("disk %s: size %d is below its current %d bytes: disks only grow", name, size, have)
	}
	if size > have {
		if _, err := mon.run("block_resize", map[string]any{"node-name": diskFormatNode(p.Key), "size": size}); err != nil {
			return fmt.Errorf("disk %s: %w", name, err)
		}
	}
	ac := v.agentConn()
	if p.Name != l.Disks[0].Name || ac == nil {
		return nil
	}
	if ac.agentVersion() < vmagent.VersionDisk {
		d.log.Warn("guest agent too old to grow the root filesystem while the VM runs: it grows at the next start", "id", id)
		return nil
	}
	gctx, cancel := context.WithTimeout(ctx, diskPlugTimeout)
	defer cancel()
	req := agentDisk(p)
	req.Size = size
	if err := agentDo(gctx, ac, vmagent.MsgDisk, req); err != nil {
		return fmt.Errorf("disk %s: grow the guest's filesystem: %w", name, err)
	}
	return nil
}

// nodeSize is a block node's virtual size as QEMU sees it.
func nodeSize(mon *monitor, node string) (int64, error) {
	out, err := mon.run("query-named-block-nodes", map[string]any{"flat": true})
	if err != nil {
		return 0, err
	}
	var nodes []struct {
		NodeName string `json:"node-name"`
		Image    struct {
			VirtualSize int64 `json:"virtual-size"`
		} `json:"image"`
	}
	if err := json.Unmarshal(out, &nodes); err != nil {
		return 0, fmt.Errorf("query-named-block-nodes: %w", err)
	}
	for _, n := range nodes {
		if n.NodeName == node {
			return n.Image.VirtualSize, nil
		}
	}
	return 0, fmt.Errorf("QEMU has no block node %s", node)
}
