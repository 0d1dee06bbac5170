package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Standby saves the whole VM (RAM and device state) to standby.state in
// its directory and ends QEMU: LXD's stateful stop. The guest is paused
// first, so the disk overlay and the saved RAM agree. The next Start
// restores from the file (QEMU -incoming) instead of booting, and deletes
// it. On failure the VM is resumed and keeps running.
//
// comp compresses the saved stream (driver.Compression); the file opens
// with the same header as a checkpoint's (stateMagic), so that it can be
// taken as a stateful snapshot's state as it is.
func (d *Driver) Standby(ctx context.Context, id string, comp driver.Compression) error {
	v := d.get(id)
	if v == nil {
		return driver.ErrNotRunning
	}
	mon := v.monitor()
	if mon == nil {
		return driver.ErrNotRunning
	}
	v.mu.Lock()
	wasPaused, shares := v.state == statePaused, v.shares
	v.mu.Unlock()
	if shares > 0 {
		// QEMU blocks migration while a 9p share is mounted, and the
		// agent mounts every one.
		return errdefs.Conflict("standby: VM %s has %d directory share(s) (9p), and QEMU cannot save a VM with a mounted 9p share: stop it instead", id, shares)
	}
	if !wasPaused {
		if err := d.Freeze(ctx, id); err != nil {
			return fmt.Errorf("standby: %w", err)
		}
	}
	resume := func() {
		if !wasPaused {
			_ = d.Unfreeze(context.WithoutCancel(ctx), id)
		}
	}
	began := time.Now()
	hdr, err := d.headerOf(v, mon, true)
	if err != nil {
		resume()
		return fmt.Errorf("standby: %w", err)
	}
	hdr.Compression = comp.String()
	final := filepath.Join(v.dir, fileState)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		resume()
		return fmt.Errorf("standby: %w", err)
	}
	err = writeStateHeader(f, hdr)
	if err == nil {
		_, err = saveState(ctx, mon, f, false, comp)
	}
	saved := time.Since(began)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		resume()
		return fmt.Errorf("standby: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		resume()
		return fmt.Errorf("standby: %w", err)
	}
	synced := time.Since(began)
	v.mu.Lock()
	v.stopping = true
	v.mu.Unlock()
	d.kill(v)
	d.log.Info("vm standby", "id", id, "compression", hdr.Compression, "save", saved, "sync", synced-saved, "total", time.Since(began))
	return nil
}

// waitIncoming waits until a restoring QEMU has loaded the saved state.
func (d *Driver) waitIncoming(ctx context.Context, v *vm) error {
	mon := v.monitor()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st, err := mon.queryStatus()
		if err != nil {
			return err
		}
		if st != "inmigrate" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("restore: the saved state did not load in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-v.done:
			return fmt.Errorf("restore: QEMU ended: %s", logTail(filepath.Join(v.dir, fileLog), 500))
		case <-time.After(2 * time.Millisecond):
		}
	}
}
