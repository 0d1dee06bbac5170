package instance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/store"
)

// Names lists instance names, sorted.
func (s *Service) Names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sortedNames(s.byName)
}

// List returns every instance, sorted by name. With state, the live state
// of each is read from the runtime (recursion=2).
func (s *Service) List(ctx context.Context, withState bool) []api.InstanceFull {
	s.mu.RLock()
	names := sortedNames(s.byName)
	out := make([]api.InstanceFull, 0, len(names))
	ids := make([]string, 0, len(names))
	for _, n := range names {
		in := s.byName[n]
		out = append(out, api.InstanceFull{Instance: s.toAPILocked(in)})
		ids = append(ids, runtimeID(in.rec.ID))
	}
	s.mu.RUnlock()
	if withState {
		// Runtime reads happen outside the lock: they touch the cgroup
		// filesystem and must not hold up writers.
		for i := range out {
			st := s.liveState(ctx, s.driverFor(out[i].Type), ids[i], out[i].StatusCode)
			out[i].State = &st
			out[i].Snapshots = []any{}
			out[i].Backups = []any{}
		}
	}
	return out
}

// Get returns one instance and its ETag.
func (s *Service) Get(name string) (api.Instance, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.byName[name]
	if !ok {
		return api.Instance{}, "", notFound(name)
	}
	return s.toAPILocked(in), etagOf(in.rec), nil
}

// GetFull returns one instance with its live state.
func (s *Service) GetFull(ctx context.Context, name string) (api.InstanceFull, string, error) {
	inst, etag, err := s.Get(name)
	if err != nil {
		return api.InstanceFull{}, "", err
	}
	st, err := s.State(ctx, name)
	if err != nil {
		return api.InstanceFull{}, "", err
	}
	return api.InstanceFull{Instance: inst, State: &st, Snapshots: []any{}, Backups: []any{}}, etag, nil
}

// State returns the live state of one instance.
func (s *Service) State(ctx context.Context, name string) (api.InstanceState, error) {
	s.mu.RLock()
	in, ok := s.byName[name]
	var id, typ string
	var status Status
	if ok {
		id, typ, status = runtimeID(in.rec.ID), in.rec.Type, in.status
	}
	s.mu.RUnlock()
	if !ok {
		return api.InstanceState{}, notFound(name)
	}
	return s.liveState(ctx, s.driverFor(typ), id, status), nil
}

func (s *Service) liveState(ctx context.Context, drv driver.Driver, id string, status Status) api.InstanceState {
	st := api.InstanceState{
		Status:     status.String(),
		StatusCode: status,
		Disk:       map[string]api.InstanceStateDisk{},
		Network:    map[string]api.InstanceStateNetwork{},
	}
	if !isActive(status) {
		return st
	}
	ds, err := drv.State(ctx, id)
	if err != nil {
		s.log.Warn("read instance state", "id", id, "err", err)
		return st
	}
	st.Pid = int64(ds.Pid)
	st.Processes = ds.Processes
	st.Memory = api.InstanceStateMemory{Usage: ds.MemoryUsage, UsagePeak: ds.MemoryPeak}
	st.CPU = api.InstanceStateCPU{Usage: ds.CPUUsage}
	if ds.Status == driver.StatusFrozen && status == api.Running {
		st.Status, st.StatusCode = api.Frozen.String(), api.Frozen
	}
	if ds.Status == driver.StatusError {
		// The runtime says it crashed (a VM whose guest panicked); the
		// exit that follows records it.
		st.Status, st.StatusCode = api.Error.String(), api.Error
	}
	return st
}

// toAPILocked renders an instance; the caller holds s.mu.
func (s *Service) toAPILocked(in *inst) api.Instance {
	r := in.rec
	views, _ := s.profileViewsLocked(r.Profiles) // profiles in use cannot be deleted
	return api.Instance{
		InstancePut: api.InstancePut{
			Architecture: r.Architecture,
			Config:       cloneMap(r.Config),
			Devices:      cloneDevices(r.Devices),
			Ephemeral:    r.Ephemeral,
			Profiles:     append([]string{}, r.Profiles...),
			Stateful:     r.Stateful,
			Description:  r.Description,
		},
		CreatedAt:       r.CreatedAt,
		ExpandedConfig:  expandConfig(r.Config, views),
		ExpandedDevices: expandDevices(r.Devices, views),
		Name:            r.Name,
		Status:          in.status.String(),
		StatusCode:      in.status,
		LastUsedAt:      r.LastUsedAt,
		Location:        "none",
		Type:            r.Type,
		Project:         "default",
	}
}

// etagOf hashes the fields a PUT replaces, as LXD does, so If-Match
// detects any concurrent change to them.
func etagOf(r store.Instance) string {
	b, _ := json.Marshal([]any{r.Architecture, r.Config, r.Devices, r.Ephemeral, r.Profiles, r.Description})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
