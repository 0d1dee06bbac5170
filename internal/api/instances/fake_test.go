package instances

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
)

// fakeCore is an in-memory core: enough state rules to answer as the
// real one does (stop of a stopped instance is a conflict, a stateful
// stop leaves Stateful set).
type fakeCore struct {
	mu       sync.Mutex
	byName   map[string]*instance.Full
	creates  []instance.CreateRequest
	projects []string // project of every call
	patches  []instance.Patch
	stops    []instance.StopOptions
	briefs   int // GetBrief calls
	fulls    int // GetFull calls
	snapReqs []instance.SnapshotRequest
	logLines [][]byte
}

func newFakeCore() *fakeCore { return &fakeCore{byName: map[string]*instance.Full{}} }

func (f *fakeCore) add(name string, typ instance.Type, status instance.Status, stateful, workload bool) {
	f.byName[name] = &instance.Full{Instance: instance.Instance{
		ID: "a" + name + "00000000000000000000000"[:23-len(name)], Name: name, Type: typ, Status: status, Stateful: stateful,
		Config: map[string]string{}, ExpandedConfig: map[string]string{"image.oci.reference": "docker.io/library/alpine:3"},
		Devices: instance.Devices{}, ExpandedDevices: instance.Devices{}, CreatedAt: time.Unix(1700000000, 0).UTC(),
	}, State: instance.State{Status: status, WorkloadStarted: workload}}
}

func (f *fakeCore) seen(ctx context.Context) {
	f.projects = append(f.projects, project.Name(ctx))
}

func (f *fakeCore) get(name string) (*instance.Full, error) {
	in, ok := f.byName[name]
	if !ok {
		return nil, errdefs.NotFound("instance %q not found", name)
	}
	return in, nil
}

func (f *fakeCore) Create(ctx context.Context, req instance.CreateRequest, _ instance.CreateOptions) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	if _, ok := f.byName[req.Name]; ok {
		return "", errdefs.Conflict("instance %q already exists", req.Name)
	}
	f.creates = append(f.creates, req)
	f.add(req.Name, req.Type, instance.StatusRunning, false, true)
	in := f.byName[req.Name]
	maps.Copy(in.Config, req.Config)
	maps.Copy(in.ExpandedConfig, req.Config)
	maps.Copy(in.Devices, req.Devices)
	maps.Copy(in.ExpandedDevices, req.Devices)
	return req.Name, nil
}

func (f *fakeCore) ResolveID(ctx context.Context, id string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for n, in := range f.byName {
		if in.ID == id || n == id {
			return n, nil
		}
	}
	return "", errdefs.NotFound("instance %q not found", id)
}

func (f *fakeCore) Get(ctx context.Context, name string) (instance.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, err := f.get(name)
	if err != nil {
		return instance.Instance{}, err
	}
	return in.Instance, nil
}

func (f *fakeCore) GetFull(ctx context.Context, name string) (instance.Full, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fulls++
	in, err := f.get(name)
	if err != nil {
		return instance.Full{}, err
	}
	return *in, nil
}

// GetBrief is GetFull without what the guest tells (its network).
func (f *fakeCore) GetBrief(ctx context.Context, name string) (instance.Full, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, err := f.get(name)
	if err != nil {
		return instance.Full{}, err
	}
	out := *in
	out.State.Network = nil
	f.briefs++
	return out, nil
}

func (f *fakeCore) ListFull(ctx context.Context) []instance.Full {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen(ctx)
	var out []instance.Full
	for _, in := range f.byName {
		out = append(out, *in)
	}
	return out
}

func (f *fakeCore) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, err := f.get(name)
	if err != nil {
		return err
	}
	if in.Status != instance.StatusStopped {
		return errdefs.Conflict("running")
	}
	delete(f.byName, name)
	return nil
}

func (f *fakeCore) setStatus(name string, st instance.Status, stateful bool) {
	in := f.byName[name]
	in.Status, in.State.Status, in.Stateful = st, st, stateful
	in.State.WorkloadStarted = st == instance.StatusRunning
}

func (f *fakeCore) Start(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, err := f.get(name)
	if err != nil {
		return err
	}
	if in.Status != instance.StatusStopped {
		return errdefs.Conflict("instance %q is already running", name)
	}
	f.setStatus(name, instance.StatusRunning, false)
	return nil
}

func (f *fakeCore) Stop(ctx context.Context, name string, opts instance.StopOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, err := f.get(name)
	if err != nil {
		return err
	}
	if in.Status == instance.StatusStopped {
		return errdefs.Conflict("instance %q is already stopped", name)
	}
	f.stops = append(f.stops, opts)
	f.setStatus(name, instance.StatusStopped, opts.Stateful)
	return nil
}

func (f *fakeCore) Update(ctx context.Context, name string, put instance.Put, pre instance.Precondition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, err := f.get(name)
	if err != nil {
		return err
	}
	if pre != nil {
		if err := pre(in.Instance); err != nil {
			return err
		}
	}
	in.Devices, in.ExpandedDevices = put.Devices, put.Devices
	return nil
}

func (f *fakeCore) Patch(ctx context.Context, name string, p instance.Patch, pre instance.Precondition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, err := f.get(name)
	if err != nil {
		return err
	}
	if pre != nil {
		if err := pre(in.Instance); err != nil {
			return err
		}
	}
	f.patches = append(f.patches, p)
	maps.Copy(in.Config, p.Config)
	maps.Copy(in.ExpandedConfig, p.Config)
	maps.Copy(in.Devices, p.Devices)
	maps.Copy(in.ExpandedDevices, p.Devices)
	return nil
}

func (f *fakeCore) Fork(ctx context.Context, name, newName string) (instance.ForkResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	src, err := f.get(name)
	if err != nil {
		return instance.ForkResult{}, err
	}
	st := instance.StatusStopped
	if src.Status == instance.StatusRunning {
		st = instance.StatusRunning
	}
	f.add(newName, instance.TypeVM, st, false, st == instance.StatusRunning)
	return instance.ForkResult{Name: newName}, nil
}

func (f *fakeCore) Snapshots(ctx context.Context, name string) ([]instance.Snapshot, error) {
	return []instance.Snapshot{{Name: "snap0", Instance: name, Kind: "Standby", Stateful: true}}, nil
}

func (f *fakeCore) CreateSnapshot(ctx context.Context, name string, req instance.SnapshotRequest) (instance.Snapshot, error) {
	kind := "Stopped"
	if req.Stateful {
		kind = "Standby"
	}
	n := req.Name
	if n == "" {
		n = "snap1"
	}
	f.mu.Lock()
	f.snapReqs = append(f.snapReqs, req)
	f.mu.Unlock()
	return instance.Snapshot{Name: n, Instance: name, Kind: kind, Stateful: req.Stateful, Metadata: req.Metadata}, nil
}

func (f *fakeCore) RestoreSnapshot(ctx context.Context, name, snap string, stateful bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if stateful {
		f.setStatus(name, instance.StatusRunning, false)
	}
	return nil
}

func (f *fakeCore) VMStats(ctx context.Context, name string) (instance.VMStats, error) {
	return instance.VMStats{CPUSeconds: 1.5, MemoryRSS: 100, AllocatedMemory: 200, VCPUs: 2, NetRx: 7, NetTx: 8}, nil
}

func (f *fakeCore) StatPath(ctx context.Context, name, p string, follow bool) (instance.PathInfo, error) {
	if p == "/etc" {
		return instance.PathInfo{Exists: true, IsDir: true, Mode: 0o755}, nil
	}
	return instance.PathInfo{}, nil
}

func (f *fakeCore) StreamLog(ctx context.Context, name string, src instance.LogSource, tail int, follow bool, emit func([][]byte) error) error {
	if src == instance.LogVMM {
		return errdefs.NotImplemented("no vmm log")
	}
	return emit(f.logLines)
}

func (f *fakeCore) UpdateCredentialValues(ctx context.Context, name string, env map[string]string) error {
	if _, ok := env["TOKEN"]; !ok {
		return errdefs.Invalid("env: no credential takes its value from these keys")
	}
	return nil
}

func (f *fakeCore) SnapshotSchedule(ctx context.Context, name string) (instance.SnapshotSchedule, error) {
	return instance.SnapshotSchedule{}, errdefs.NotFound("instance %q has no snapshot schedule", name)
}

func (f *fakeCore) SetSnapshotSchedule(ctx context.Context, name string, sch instance.SnapshotSchedule) (instance.SnapshotSchedule, error) {
	sch.CreatedAt, sch.UpdatedAt, sch.NextRunAt = time.Unix(1, 0), time.Unix(1, 0), time.Unix(61, 0)
	return sch, nil
}

func (f *fakeCore) DeleteSnapshotSchedule(ctx context.Context, name string) error { return nil }

type fakeVolumes struct{}

func (fakeVolumes) PoolOfCustomVolume(ctx context.Context, name string) (string, error) {
	if name == "data" {
		return "default", nil
	}
	return "", errdefs.NotFound("custom volume %q not found", name)
}
