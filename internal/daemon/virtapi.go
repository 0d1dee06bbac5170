package daemon

import (
	"context"
	"errors"

	"github.com/hangar-dev/hangar/internal/device"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/storage"
)

// virtPools lists storage pools for the virt JSON-RPC API
// (virt.global.config, create's storage_pool).
type virtPools struct {
	m   *storage.Manager
	svc *instance.Service
}

func (p virtPools) PoolNames(ctx context.Context) ([]string, error) {
	pools, err := p.m.Pools(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(pools))
	for _, pl := range pools {
		out = append(out, pl.Name)
	}
	return out, nil
}

// DefaultPool is the pool of the project's default profile's root disk.
func (p virtPools) DefaultPool(ctx context.Context) (string, error) {
	prof, err := p.svc.Profile(ctx, "default")
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return "", err
	}
	for _, d := range prof.Devices {
		if d["type"] == "disk" && d["path"] == "/" && d["pool"] != "" {
			return d["pool"], nil
		}
	}
	return "default", nil
}

// hostDevices is the host's passthrough inventory (package device).
type hostDevices struct{}

func (hostDevices) USB() ([]device.USBDevice, error)  { return device.HostUSBDevices() }
func (hostDevices) PCI() ([]device.PCIDevice, error)  { return device.HostPCIDevices() }
func (hostDevices) GPUs() ([]device.PCIDevice, error) { return device.HostGPUs() }
