package velocity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
)

// createEFI is PUT /v/vm/efi: a VM with an empty disk booted by UEFI
// firmware (OVMF), made stopped. velocity.vm.create is
// can_manage_instances on the group.
func (s *Server) createEFI(w http.ResponseWriter, r *http.Request) error {
	var req wire.EFIRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	ctx, err := s.inGroup(r.Context(), req.GID)
	if err != nil {
		return err
	}
	if err := s.need(ctx, auth.CanManageInstances, "creating VMs"); err != nil {
		return err
	}
	cr, err := s.efiRequest(ctx, req)
	if err != nil {
		return err
	}
	in, err := s.Core.Create(ctx, cr)
	if err != nil {
		// The permission was checked above: a refusal now is the
		// project's limits (its own or an ancestor's) or restrictions.
		if errors.Is(err, errdefs.ErrForbidden) {
			return notAcceptable("%v", err)
		}
		return err
	}
	writeJSON(w, http.StatusOK, wire.Created{VMID: in.ID})
	return nil
}

// efiRequest validates req and maps it to the core's create.
func (s *Server) efiRequest(ctx context.Context, req wire.EFIRequest) (instance.CreateRequest, error) {
	if req.Name == "" {
		return instance.CreateRequest{}, fieldErr("name", "required")
	}
	if req.CPUs < 1 || req.CPUs > maxCPUs {
		return instance.CreateRequest{}, fieldErr("cpus", "%d: from 1 to %d", req.CPUs, maxCPUs)
	}
	if req.MemoryMiB < 1 || req.MemoryMiB > maxMemoryMiB {
		return instance.CreateRequest{}, fieldErr("memory_mib", "%d: from 1 to %d", req.MemoryMiB, maxMemoryMiB)
	}
	if len(req.Displays) > maxDevices || len(req.Media) > maxDevices || len(req.NICs) > maxDevices {
		return instance.CreateRequest{}, errdefs.Invalid("at most %d displays, media and nics each", maxDevices)
	}
	if req.Rosetta {
		return instance.CreateRequest{}, notAcceptable("rosetta: the rosetta x86 translation layer is not available on this host")
	}
	var hostNICs map[string]HostNIC
	lookup := func(id string) (HostNIC, error) {
		if hostNICs == nil {
			hostNICs = map[string]HostNIC{}
			if s.NICs != nil {
				nics, err := s.NICs.HostNICs(ctx)
				if err != nil {
					return HostNIC{}, err
				}
				for _, n := range nics {
					hostNICs[n.ID] = n
				}
			}
		}
		h, ok := hostNICs[id]
		if !ok {
			return HostNIC{}, errdefs.NotFound("host NIC %q not found", id)
		}
		if h.Type == "" {
			return HostNIC{}, errdefs.NotFound("host NIC %q: interface %q is not present on the host", id, h.Interface)
		}
		return h, nil
	}
	devs, err := s.devicesOf(req, lookup)
	if err != nil {
		return instance.CreateRequest{}, err
	}
	for i, m := range req.Media {
		pool, vol, _ := mid(m.MID)
		if s.Volumes == nil {
			return instance.CreateRequest{}, errdefs.NotFound("media[%d].mid: medium %q not found", i, m.MID)
		}
		ct, err := s.Volumes.CustomVolume(ctx, pool, vol)
		if err != nil {
			return instance.CreateRequest{}, fmt.Errorf("media[%d].mid: %w", i, err)
		}
		switch ct {
		case "filesystem":
			return instance.CreateRequest{}, notAcceptable("media[%d].mid: %q is a filesystem volume: media are disk images (block or ISO volumes)", i, m.MID)
		case "iso":
			// An ISO image is read-only whatever its mode: asking to
			// write it is refused, not silently changed.
			if !m.ReadOnly {
				return instance.CreateRequest{}, notAcceptable("media[%d].readonly: %q is an ISO image, which attaches read-only only: give readonly true", i, m.MID)
			}
		}
	}
	return instance.CreateRequest{
		Name: req.Name,
		Type: instance.TypeVM,
		// No image: an empty disk, installed from attached media.
		Source: instance.Source{Type: instance.SourceNone},
		Config: map[string]string{
			"limits.cpu":          strconv.FormatInt(int64(req.CPUs), 10),
			"limits.memory":       strconv.FormatInt(int64(req.MemoryMiB), 10) + "MiB",
			"boot.autostart":      strconv.FormatBool(req.Autostart),
			"security.secureboot": "false",
		},
		Devices: devs,
	}, nil
}
