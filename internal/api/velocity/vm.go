package velocity

import (
	"context"
	"net/http"

	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/instance"
)

// listVMs is POST /v/vm/list: the VMs of a group (velocity.vm.view is
// can_view_instances on its project, held there or on an ancestor).
func (s *Server) listVMs(w http.ResponseWriter, r *http.Request) error {
	var req wire.VMListRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	ctx, err := s.inGroup(r.Context(), req.GID)
	if err != nil {
		return err
	}
	if err := s.need(ctx, auth.CanViewInstances, "listing VMs"); err != nil {
		return err
	}
	ins := s.Core.List(ctx)
	out := wire.VMList{VMs: make([]wire.VMListEntry, 0, len(ins))}
	for _, in := range ins {
		if in.Type != instance.TypeVM {
			continue
		}
		out.VMs = append(out.VMs, wire.VMListEntry{VMID: in.ID, Name: in.Name, State: stateOf(in.Status),
			CPUs: wire.Num(cpusOf(in.ExpandedConfig)), MemoryMiB: wire.Num(memoryMiBOf(in.ExpandedConfig))})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getVM is POST /v/vm: one VM; one the caller cannot view is 404.
func (s *Server) getVM(w http.ResponseWriter, r *http.Request) error {
	var req wire.VMRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	ctx, in, err := s.vm(r.Context(), req.VMID)
	if err != nil {
		return err
	}
	ids, err := s.nicIDs(ctx)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, render(in, func(iface string) string { return ids[iface] }))
	return nil
}

// nicIDs maps host interfaces to their NICIDs.
func (s *Server) nicIDs(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	if s.NICs == nil {
		return out, nil
	}
	nics, err := s.NICs.HostNICs(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range nics {
		out[n.Interface] = n.ID
	}
	return out, nil
}

// getState is POST /v/vm/state.
func (s *Server) getState(w http.ResponseWriter, r *http.Request) error {
	var req wire.VMRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	_, in, err := s.vm(r.Context(), req.VMID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.VMState{VMID: in.ID, State: stateOf(in.Status)})
	return nil
}
