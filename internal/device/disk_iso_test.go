package device

import (
	"context"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
)

// TestISOVolumeDisk: an ISO volume is a read-only CD-ROM on the SCSI bus,
// or a read-only disk on the bus io.bus names; boot.priority carries over.
func TestISOVolumeDisk(t *testing.T) {
	e := newEnv(t)
	path := e.vols.vols["default/iso"].Path
	tests := []struct {
		name string
		dev  map[string]string
		want driver.Disk
	}{
		{"CD-ROM", map[string]string{"type": "disk", "pool": "default", "source": "iso", "boot.priority": "10"},
			driver.Disk{Name: "cd", Path: path, Format: "raw", Bus: "virtio-scsi", ReadOnly: true, CDROM: true, BootPriority: 10}},
		{"CD-ROM on virtio-scsi", map[string]string{"type": "disk", "pool": "default", "source": "iso", "io.bus": "virtio-scsi", "readonly": "true"},
			driver.Disk{Name: "cd", Path: path, Format: "raw", Bus: "virtio-scsi", ReadOnly: true, CDROM: true}},
		{"USB", map[string]string{"type": "disk", "pool": "default", "source": "iso", "io.bus": "usb"},
			driver.Disk{Name: "cd", Path: path, Format: "raw", Bus: "usb", ReadOnly: true}},
		{"virtio-blk", map[string]string{"type": "disk", "pool": "default", "source": "iso", "io.bus": "virtio-blk", "limits.read": "10MB"},
			driver.Disk{Name: "cd", Path: path, Format: "raw", Bus: "virtio-blk", ReadOnly: true, Limits: driver.IOLimits{ReadBps: 10_000_000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run, err := e.m.Start(context.Background(), vm(), map[string]map[string]string{"cd": tt.dev})
			if err != nil {
				t.Fatal(err)
			}
			if len(run.Disks) != 1 || run.Disks[0] != tt.want {
				t.Fatalf("disks %+v, want %+v", run.Disks, tt.want)
			}
		})
	}
	// A container never gets one, whatever got past validation.
	ct := vm()
	ct.VM = false
	_, err := e.m.Start(context.Background(), ct, map[string]map[string]string{"cd": {"type": "disk", "pool": "default", "source": "iso", "path": "/mnt"}})
	wantErr(t, err, errInvalid, "ISO volume")
}

// TestISOVolumeColdPlugged: a running VM's CD-ROM from an ISO volume is
// plugged at its next start (the driver does not hotplug CD-ROMs); on
// virtio-blk it is plugged at once.
func TestISOVolumeColdPlugged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, tt := range []struct {
		dev  map[string]string
		cold bool
	}{
		{map[string]string{"type": "disk", "pool": "default", "source": "iso"}, true},
		{map[string]string{"type": "disk", "pool": "default", "source": "iso", "io.bus": "virtio-scsi"}, true},
		{map[string]string{"type": "disk", "pool": "default", "source": "iso", "io.bus": "usb"}, true},
		{map[string]string{"type": "disk", "pool": "default", "source": "iso", "io.bus": "virtio-blk"}, false},
		{map[string]string{"type": "disk", "pool": "default", "source": "blk"}, false},
		{map[string]string{"type": "disk", "pool": "default", "source": "blk", "io.bus": "usb"}, true},
		{map[string]string{"type": "disk", "source": "/srv/x.iso"}, true},
	} {
		if got := e.m.coldPlugged(ctx, tt.dev); got != tt.cold {
			t.Errorf("%v: cold plugged %v, want %v", tt.dev, got, tt.cold)
		}
	}
}
