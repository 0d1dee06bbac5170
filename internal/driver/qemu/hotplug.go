package qemu

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/netdev"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// nicPlugTimeout bounds AttachNIC's wait for the guest agent to configure
// the NIC (the guest's PCIe hotplug, then the agent's set-up), and
// nicUnplugTimeout DetachNIC's wait for the guest to release the device:
// Linux's native PCIe hotplug waits 5 s after the "attention button"
// before it lets a device go.
const (
	nicPlugTimeout   = 30 * time.Second
	nicUnplugTimeout = 30 * time.Second
)

// AttachNIC plugs a NIC into a running VM: its tap (nic.HostName, made by
// the network layer) as a netdev, a virtio-net-pci device on a free root
// port, then, with a guest agent, the same set-up as at boot (found by
// MAC, renamed, addresses, routes, resolv.conf); it returns once the
// guest has it. A VM booted from a disk image gets the device and
// configures it itself (DHCP).
//
// Errors: errdefs.ErrInvalidArgument for a bad NIC, ErrNotFound for a
// tap that does not exist, ErrConflict for a
// name the VM has already or a paused VM, ErrNotImplemented when all the
// VM's spare ports are taken (the NIC can come at the next start), and
// driver.ErrNotRunning. A failure leaves the VM as it was.
func (d *Driver) AttachNIC(ctx context.Context, id string, nic driver.NIC) error {
	if err := checkNIC(nic); err != nil {
		return err
	}
	v, mon, err := d.runningVM(id)
	if err != nil {
		return err
	}
	v.nicMu.Lock()
	defer v.nicMu.Unlock()
	v.mu.Lock()
	port := -1
	for i, name := range v.slots {
		if name == nic.Name {
			v.mu.Unlock()
			return errdefs.Conflict("VM %s has a NIC %s already", id, nic.Name)
		}
		if name == "" && port < 0 {
			port = i
		}
	}
	v.mu.Unlock()
	macvtap, err := checkTap(nic)
	if err != nil {
		return err
	}
	if port < 0 {
		return errdefs.NotImplemented("VM %s has no free port for one more NIC while it runs (it booted with %d spare): %s comes at its next start", id, hotplugPorts, nic.Name)
	}

	netdev := map[string]any{
		"type": "tap", "id": nicNetdevID(nic.Name), "ifname": nic.HostName,
		"script": "no", "downscript": "no",
	}
	if macvtap {
		// QEMU takes the named descriptor over at netdev_add.
		fdName := "fd-" + nicNetdevID(nic.Name)
		if err := passMacvtap(mon, nic, fdName); err != nil {
			return err
		}
		netdev = map[string]any{"type": "tap", "id": nicNetdevID(nic.Name), "fd": fdName}
		defer func() {
			if err != nil {
				_, _ = mon.run("closefd", map[string]any{"fdname": fdName})
			}
		}()
	}
	if vhostNet(d.kvm) {
		netdev["vhost"] = true
	}
	if _, err = mon.run("netdev_add", netdev); err != nil {
		return fmt.Errorf("nic %s: tap %s: %w", nic.Name, nic.HostName, err)
	}
	dev := map[string]any{
		"driver": "virtio-net-pci", "id": nicDeviceID(nic.Name), "netdev": nicNetdevID(nic.Name),
		"mac": agentNIC(nic).Hwaddr, "bus": nicPortID(port),
	}
	if nic.MTU > 0 {
		dev["host_mtu"] = nic.MTU
	}
	if _, err := mon.run("device_add", dev); err != nil {
		_, _ = mon.run("netdev_del", map[string]any{"id": nicNetdevID(nic.Name)})
		return fmt.Errorf("nic %s: %w", nic.Name, err)
	}
	v.mu.Lock()
	v.slots[port] = nic.Name
	if v.taps == nil {
		v.taps = map[string]string{}
	}
	v.taps[nic.Name] = nic.HostName
	v.mu.Unlock()
	v.net.invalidate()
	if err := v.saveMeta(); err != nil {
		d.log.Warn("record NIC layout", "id", id, "err", err)
	}

	ac := v.agentConn()
	if ac == nil {
		return nil // the guest's own network set-up takes it
	}
	if ac.agentVersion() < vmagent.VersionNet {
		d.log.Warn("guest agent too old to configure a plugged NIC: the guest has it unconfigured", "id", id, "nic", nic.Name)
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, nicPlugTimeout)
	defer cancel()
	if err := agentDo(pctx, ac, vmagent.MsgNetConfig, agentNIC(nic)); err != nil {
		// Unplug what the guest could not set up, so that a retry
		// starts afresh.
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), nicUnplugTimeout)
		defer ucancel()
		if uerr := d.unplug(uctx, v, mon, nic.Name); uerr != nil {
			d.log.Warn("unplug a NIC the guest did not take", "id", id, "nic", nic.Name, "err", uerr)
		}
		return fmt.Errorf("nic %s: guest: %w", nic.Name, err)
	}
	return nil
}

// passMacvtap opens a NIC's macvtap and hands QEMU the descriptor as
// fdName (getfd); the daemon's copy is closed after.
func passMacvtap(mon *monitor, nic driver.NIC, fdName string) error {
	f, err := netdev.OpenMacvtap(nic.HostName)
	if err != nil {
		return fmt.Errorf("nic %s: %w", nic.Name, err)
	}
	defer f.Close()
	if _, err := mon.runWithFile("getfd", map[string]any{"fdname": fdName}, f); err != nil {
		return fmt.Errorf("nic %s: pass macvtap %s: %w", nic.Name, nic.HostName, err)
	}
	return nil
}

// agentDo sends the agent a request that it answers Done or Error (a
// plugged NIC or disk to set up) and waits for the answer.
func agentDo(ctx context.Context, ac *agentConn, t byte, req any) error {
	ch, q, err := ac.open()
	if err != nil {
		return err
	}
	defer ac.release(ch)
	if err := ac.send(t, ch, req); err != nil {
		return err
	}
	f, err := q.pop(ctx)
	if err != nil {
		return err
	}
	switch f.Type {
	case vmagent.MsgDone:
		return nil
	case vmagent.MsgError:
		return agentError(f)
	}
	return fmt.Errorf("guest agent: unexpected reply %d to request %d", f.Type, t)
}

// DetachNIC unplugs the NIC called name from a running VM, whether it
// was there at boot or plugged since, and returns once the guest has let
// it go and QEMU has closed its tap (the network layer may delete the
// tap then). errdefs.ErrNotFound when the VM has no such NIC;
// ErrConflict for a paused VM, whose guest cannot answer.
func (d *Driver) DetachNIC(ctx context.Context, id, name string) error {
	if !validIfName(name) {
		return errdefs.Invalid("nic name %q: want 1 to 15 letters, digits, '_', '-' or '.'", name)
	}
	v, mon, err := d.runningVM(id)
	if err != nil {
		return err
	}
	v.nicMu.Lock()
	defer v.nicMu.Unlock()
	v.mu.Lock()
	found := false
	for _, n := range v.slots {
		found = found || n == name
	}
	v.mu.Unlock()
	if !found {
		return errdefs.NotFound("VM %s has no NIC %s", id, name)
	}
	uctx, cancel := context.WithTimeout(ctx, nicUnplugTimeout)
	defer cancel()
	return d.unplug(uctx, v, mon, name)
}

// unplug removes a NIC's device, waits for the guest to release it, then
// removes its backend (closing the tap) and frees its port.
func (d *Driver) unplug(ctx context.Context, v *vm, mon *monitor, name string) error {
	if err := deviceDel(ctx, v, mon, nicDeviceID(name)); err != nil {
		return fmt.Errorf("nic %s: %w", name, err)
	}
	if _, err := mon.run("netdev_del", map[string]any{"id": nicNetdevID(name)}); err != nil && !strings.Contains(err.Error(), "not found") {
		return fmt.Errorf("nic %s: %w", name, err)
	}
	v.mu.Lock()
	for i, n := range v.slots {
		if n == name {
			v.slots[i] = ""
		}
	}
	delete(v.taps, name)
	v.mu.Unlock()
	v.net.invalidate()
	if err := v.saveMeta(); err != nil {
		d.log.Warn("record NIC layout", "id", v.id, "err", err)
	}
	return nil
}

// deviceDel unplugs a device and waits until QEMU says it is gone
// (DEVICE_DELETED: the guest let go of it). A device gone already is not
// an error: an unplug that outlived its wait may have finished since.
func deviceDel(ctx context.Context, v *vm, mon *monitor, devID string) error {
	gone := make(chan struct{})
	v.mu.Lock()
	if v.unplugged == nil {
		v.unplugged = map[string]chan struct{}{}
	}
	v.unplugged[devID] = gone
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		if v.unplugged[devID] == gone {
			delete(v.unplugged, devID)
		}
		v.mu.Unlock()
	}()
	if _, err := mon.run("device_del", map[string]any{"id": devID}); err != nil {
		// QMP errors reach us as their description alone.
		if !strings.Contains(err.Error(), "not found") {
			return err
		}
		return nil
	}
	select {
	case <-gone:
		return nil
	case <-v.done:
		return driver.ErrNotRunning
	case <-ctx.Done():
		return fmt.Errorf("the guest has not released the device (%w); it goes at the next stop", ctx.Err())
	}
}

// runningVM is a running VM and its monitor; a paused one is a conflict:
// its guest cannot take part in a hotplug.
func (d *Driver) runningVM(id string) (*vm, *monitor, error) {
	v := d.get(id)
	if v == nil {
		return nil, nil, driver.ErrNotRunning
	}
	mon := v.monitor()
	if mon == nil {
		return nil, nil, driver.ErrNotRunning
	}
	v.mu.Lock()
	s := v.state
	v.mu.Unlock()
	switch s {
	case stateRunning:
		return v, mon, nil
	case statePaused:
		return nil, nil, errdefs.Conflict("VM %s is paused: its devices change while it runs", id)
	}
	return nil, nil, fmt.Errorf("VM %s is %s: %w", id, s, driver.ErrNotRunning)
}
