package velocity

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
)

// putState is PUT /v/vm/state: velocity.vm.state is can_update_state on
// the VM (can_operate_instances on its group or an ancestor). Already
// in the state asked for is 200; a transition the VM cannot make from
// where it is, or one the hypervisor fails, is the seed's 500.
func (s *Server) putState(w http.ResponseWriter, r *http.Request) error {
	var req wire.StateRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	if !req.State.Requestable() {
		return fieldErr("state", "%q: a user may request STOPPED, RUNNING or PAUSED", req.State)
	}
	ctx, in, err := s.vm(r.Context(), req.VMID)
	if err != nil {
		return err
	}
	if !s.Auth.Allowed(ctx, auth.Instance(in.Project, in.Name), auth.CanUpdateState) {
		return denied("changing the state of vm %q needs %s", req.VMID, auth.CanUpdateState)
	}
	if err := s.transition(ctx, in, req.State, req.Force); err != nil {
		if errors.Is(err, errdefs.ErrForbidden) || errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
		return &transitionError{err}
	}
	cur, err := s.Core.Get(ctx, in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.VMState{VMID: in.ID, State: stateOf(cur.Status)})
	return nil
}

// transition takes the VM from where it is to want, in the core's hops.
func (s *Server) transition(ctx context.Context, in instance.Instance, want wire.State, force bool) error {
	cur := stateOf(in.Status)
	name := in.Name
	if cur == want {
		return nil
	}
	switch {
	case want == wire.StateRunning && cur == wire.StateStopped:
		return s.Core.Start(ctx, name)
	case want == wire.StateRunning && cur == wire.StatePaused:
		return s.Core.Unfreeze(ctx, name)
	case want == wire.StatePaused && cur == wire.StateRunning:
		return s.Core.Freeze(ctx, name)
	case want == wire.StateStopped && (cur == wire.StateRunning || cur == wire.StatePaused):
		opts := instance.StopOptions{Timeout: -1, Force: force}
		return s.Core.Stop(ctx, name, opts)
	case want == wire.StateStopped && cur == wire.StateStopping && force:
		return s.Core.Stop(ctx, name, instance.StopOptions{Force: true})
	}
	return fmt.Errorf("vm %q in project %q is %s: cannot go to %s", in.ID, project.Name(ctx), cur, want)
}
