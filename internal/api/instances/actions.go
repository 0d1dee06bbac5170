package instances

import (
	"context"
	"errors"
	"net/http"
	"strings"

	wire "github.com/hangar-dev/hangar/api/instances"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
)

// answer renders the instance as it is now.
func (s *Server) answer(w http.ResponseWriter, ctx context.Context, name string, status int) {
	full, ips, err := s.instanceNow(ctx, name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, status, render(full, ips))
}

// instanceNow reads an instance for rendering, and the addresses its
// networks assigned. The guest is asked for its addresses only when the
// network assigned eth0 none (a static or unmanaged NIC): right after a
// restore that question waits for the agent, and the API's answer must
// not (standby and restore cost what they cost through the LXD API).
func (s *Server) instanceNow(ctx context.Context, name string) (instance.Full, map[string]string, error) {
	ips := s.assigned(ctx)
	full, err := s.Core.GetBrief(ctx, name)
	if err != nil {
		return instance.Full{}, nil, err
	}
	mac := strings.ToLower(full.Config["volatile."+nicName+".hwaddr"])
	if _, known := ips[mac]; (!known || mac == "") && full.Status == instance.StatusRunning {
		if full, err = s.Core.GetFull(ctx, name); err != nil {
			return instance.Full{}, nil, err
		}
	}
	return full, ips, nil
}

// stateNow is the instance's state in the seed's terms. Only a running
// instance's live state matters (has its workload started?): others are
// told from the record, without asking the runtime.
func (s *Server) stateNow(ctx context.Context, name string) (wire.State, string, error) {
	in, err := s.Core.Get(ctx, name)
	if err != nil {
		return "", "", err
	}
	var live instance.State
	if in.Status == instance.StatusRunning {
		full, err := s.Core.GetBrief(ctx, name)
		if err != nil {
			return "", "", err
		}
		in, live = full.Instance, full.State
	}
	st, msg := stateOf(in, live)
	return st, msg, nil
}

// assigned is the IPv4 address each NIC (by MAC) holds from its
// network's IPAM: kept while an instance is stopped or in standby, when
// the guest reports none. nil without Addresses or on an error (the live
// addresses are shown then).
func (s *Server) assigned(ctx context.Context) map[string]string {
	if s.Addresses == nil {
		return nil
	}
	m, err := s.Addresses.AssignedIPv4(ctx)
	if err != nil {
		s.log().Warn("read the addresses networks assigned", "err", err)
		return nil
	}
	return m
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, name string) {
	s.answer(w, r.Context(), name, http.StatusOK)
}

// list is GET /instances?state=S&tags[k]=v: virtual machines only, the
// filters ANDed.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var want wire.State
	tags := map[string]string{}
	for k, vs := range q {
		switch {
		case k == "state":
			st, err := parseState("state", vs[0])
			if err != nil {
				writeError(w, err)
				return
			}
			want = st
		case strings.HasPrefix(k, "tags[") && strings.HasSuffix(k, "]"):
			tags[k[len("tags["):len(k)-1]] = vs[0]
		default:
			writeError(w, fieldErr(k, "unknown query parameter (want state or tags[KEY])"))
			return
		}
	}
	out := []wire.Instance{}
	ips := s.assigned(r.Context())
	for _, f := range s.Core.ListFull(r.Context()) {
		if f.Type != instance.TypeVM {
			continue
		}
		in := render(f, ips)
		if want != "" && in.State != want {
			continue
		}
		match := true
		for k, v := range tags {
			if got, ok := in.Tags[k]; !ok || got != v {
				match = false
				break
			}
		}
		if match {
			out = append(out, in)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// update is PATCH /instances/{id}: new real values of credentials.
func (s *Server) update(w http.ResponseWriter, r *http.Request, name string) {
	var p wire.InstanceUpdateParams
	if err := decode(r, &p, false); err != nil {
		writeError(w, err)
		return
	}
	if len(p.Env) == 0 {
		writeError(w, fieldErr("env", "required: the credential values to replace"))
		return
	}
	if err := checkEnv("env", p.Env); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Core.UpdateCredentialValues(r.Context(), name, p.Env); err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, r.Context(), name, http.StatusOK)
}

// delete is DELETE /instances/{id}: stop (at once) and delete.
func (s *Server) delete(w http.ResponseWriter, r *http.Request, name string) {
	ctx := context.WithoutCancel(r.Context())
	in, err := s.Core.Get(ctx, name)
	if err != nil {
		writeError(w, err)
		return
	}
	if in.Status != instance.StatusStopped {
		if err := s.Core.Stop(ctx, name, instance.StopOptions{Force: true}); err != nil && !errors.Is(err, errdefs.ErrConflict) {
			writeError(w, err)
			return
		}
	}
	if err := s.Core.Delete(ctx, name); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stop is POST /instances/{id}/stop: a graceful stop.
func (s *Server) stop(w http.ResponseWriter, r *http.Request, name string) {
	if err := decode(r, &struct{}{}, true); err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if err := s.Core.Stop(ctx, name, instance.StopOptions{Timeout: -1}); err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, ctx, name, http.StatusOK)
}

// start is POST /instances/{id}/start, with entrypoint/cmd overrides
// written to the config first (they stay for later starts, as the seed
// says "omit to keep previous value"). An instance in standby is
// restored with /restore, not started.
func (s *Server) start(w http.ResponseWriter, r *http.Request, name string) {
	var p wire.InstanceStartParams
	if err := decode(r, &p, true); err != nil {
		writeError(w, err)
		return
	}
	if err := checkArgv("entrypoint", p.Entrypoint); err != nil {
		writeError(w, err)
		return
	}
	if err := checkArgv("cmd", p.Cmd); err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	st, _, err := s.stateNow(ctx, name)
	if err != nil {
		writeError(w, err)
		return
	}
	if st == wire.StateStandby {
		writeError(w, errdefs.Conflict("instance %q is in standby: restore it (POST /instances/{id}/restore)", name))
		return
	}
	if p.Entrypoint != nil || p.Cmd != nil {
		cfg := map[string]string{}
		if p.Entrypoint != nil {
			cfg[keyEntrypoint] = argvJSON(p.Entrypoint)
		}
		if p.Cmd != nil {
			cfg[keyCmd] = argvJSON(p.Cmd)
		}
		if err := s.Core.Patch(ctx, name, instance.Patch{Config: cfg}, nil); err != nil {
			writeError(w, err)
			return
		}
	}
	if err := s.Core.Start(ctx, name); err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, ctx, name, http.StatusOK)
}

// standby is POST /instances/{id}/standby: a stateful stop (409 unless
// running). A compression given here applies to this standby only; the
// instance's snapshot_policy (snapshots.compression) is the default.
func (s *Server) standby(w http.ResponseWriter, r *http.Request, name string) {
	var p wire.InstanceStandbyParams
	if err := decode(r, &p, true); err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	opts := instance.StopOptions{Stateful: true}
	if p.Compression != nil {
		v, err := compressionValue("compression", p.Compression)
		if err != nil {
			writeError(w, err)
			return
		}
		opts.Compression = v
	}
	if err := s.Core.Stop(ctx, name, opts); err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, ctx, name, http.StatusOK)
}

// restore is POST /instances/{id}/restore: start from the saved state.
func (s *Server) restore(w http.ResponseWriter, r *http.Request, name string) {
	if err := decode(r, &struct{}{}, true); err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	st, _, err := s.stateNow(ctx, name)
	if err != nil {
		writeError(w, err)
		return
	}
	if st != wire.StateStandby {
		writeError(w, errdefs.Conflict("instance %q is %s, not in standby", name, st))
		return
	}
	if err := s.Core.Start(ctx, name); err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, ctx, name, http.StatusOK)
}

// fork is POST /instances/{id}/fork. A running source needs
// from_running; the core forks it with its memory (the fork runs), a
// stopped or standby source gives a stopped fork. The fork is then
// brought to target_state (default: the source's state).
func (s *Server) fork(w http.ResponseWriter, r *http.Request, name string) {
	var p wire.InstanceForkParams
	if err := decode(r, &p, false); err != nil {
		writeError(w, err)
		return
	}
	if err := checkName("name", p.Name); err != nil {
		writeError(w, err)
		return
	}
	target, err := parseTargetState("target_state", p.TargetState)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	st, _, err := s.stateNow(ctx, name)
	if err != nil {
		writeError(w, err)
		return
	}
	switch st {
	case wire.StateRunning, wire.StateInitializing:
		if p.FromRunning == nil || !*p.FromRunning {
			writeError(w, errdefs.Conflict("instance %q is running: set from_running to fork it", name))
			return
		}
		st = wire.StateRunning
	case wire.StateStopped, wire.StateStandby:
	default:
		writeError(w, errdefs.Conflict("instance %q is %s: fork from Running, Stopped or Standby", name, st))
		return
	}
	if target == "" {
		target = st
	}
	res, err := s.Core.Fork(ctx, name, p.Name)
	if err != nil {
		writeError(w, err)
		return
	}
	running := st == wire.StateRunning
	if err := s.bringTo(ctx, res.Name, running, target); err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, ctx, res.Name, http.StatusCreated)
}

// bringTo moves a fresh instance (running or stopped) to target.
func (s *Server) bringTo(ctx context.Context, name string, running bool, target wire.State) error {
	switch {
	case target == wire.StateRunning && !running:
		return s.Core.Start(ctx, name)
	case target == wire.StateStopped && running:
		return s.Core.Stop(ctx, name, instance.StopOptions{Timeout: -1})
	case target == wire.StateStandby && !running:
		// Standby needs a running guest to save: boot it, then save.
		if err := s.Core.Start(ctx, name); err != nil {
			return err
		}
		fallthrough
	case target == wire.StateStandby:
		return s.Core.Stop(ctx, name, instance.StopOptions{Stateful: true})
	}
	return nil
}
