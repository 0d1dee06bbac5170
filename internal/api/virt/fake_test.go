package virt

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
)

// fakeCore is an in-memory instance core that publishes lifecycle events
// to a real hub, as the core does.
type fakeCore struct {
	hub *event.Hub
	mu  sync.Mutex
	ins map[string]instance.Full
}

func newFakeCore(hub *event.Hub) *fakeCore {
	return &fakeCore{hub: hub, ins: map[string]instance.Full{}}
}

func (f *fakeCore) emit(ctx context.Context, action, name string) {
	f.hub.Lifecycle(action, event.Entity{Kind: event.EntityInstance, Name: name, Project: project.Name(ctx)}, nil)
}

func expand(in *instance.Full) {
	in.ExpandedConfig = maps.Clone(in.Config)
	in.ExpandedDevices = cloneDevices(in.Devices)
	if _, ok := in.ExpandedDevices["eth0"]; !ok {
		in.ExpandedDevices["eth0"] = map[string]string{"type": "nic", "network": "hangarbr0"}
	}
}

func (f *fakeCore) put(in instance.Full) {
	f.mu.Lock()
	expand(&in)
	in.State.Status = in.Status
	f.ins[in.Name] = in
	f.mu.Unlock()
}

func (f *fakeCore) Create(ctx context.Context, req instance.CreateRequest) (string, error) {
	f.mu.Lock()
	if _, ok := f.ins[req.Name]; ok {
		f.mu.Unlock()
		return "", errdefs.Conflict("instance %q already exists", req.Name)
	}
	f.mu.Unlock()
	typ := req.Type
	if typ == "" {
		typ = instance.TypeContainer
	}
	cfg := maps.Clone(req.Config)
	cfg["image.os"] = "busybox"
	f.put(instance.Full{Instance: instance.Instance{Name: req.Name, Project: project.Name(ctx), Type: typ, Config: cfg, Devices: req.Devices, Status: instance.StatusStopped}})
	f.emit(ctx, "instance-created", req.Name)
	return req.Name, nil
}

func (f *fakeCore) Get(ctx context.Context, name string) (instance.Instance, error) {
	g, err := f.GetFull(ctx, name)
	return g.Instance, err
}

func (f *fakeCore) GetFull(_ context.Context, name string) (instance.Full, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.ins[name]
	if !ok {
		return instance.Full{}, errdefs.NotFound("instance %q not found", name)
	}
	return in, nil
}

func (f *fakeCore) ListFull(context.Context) []instance.Full {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := slices.Sorted(maps.Keys(f.ins))
	out := make([]instance.Full, 0, len(names))
	for _, n := range names {
		out = append(out, f.ins[n])
	}
	return out
}

func (f *fakeCore) setStatus(ctx context.Context, name string, st instance.Status, action string) error {
	f.mu.Lock()
	in, ok := f.ins[name]
	if !ok {
		f.mu.Unlock()
		return errdefs.NotFound("instance %q not found", name)
	}
	in.Status, in.State.Status = st, st
	f.ins[name] = in
	f.mu.Unlock()
	f.emit(ctx, action, name)
	return nil
}

func (f *fakeCore) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	delete(f.ins, name)
	f.mu.Unlock()
	f.emit(ctx, "instance-deleted", name)
	return nil
}

func (f *fakeCore) Start(ctx context.Context, name string) error {
	return f.setStatus(ctx, name, instance.StatusRunning, "instance-started")
}

func (f *fakeCore) Stop(ctx context.Context, name string, _ instance.StopOptions) error {
	return f.setStatus(ctx, name, instance.StatusStopped, "instance-stopped")
}

func (f *fakeCore) Restart(ctx context.Context, name string, _ instance.StopOptions) error {
	return f.setStatus(ctx, name, instance.StatusRunning, "instance-restarted")
}

func (f *fakeCore) Update(ctx context.Context, name string, put instance.Put, pre instance.Precondition) error {
	f.mu.Lock()
	in, ok := f.ins[name]
	if !ok {
		f.mu.Unlock()
		return errdefs.NotFound("instance %q not found", name)
	}
	if pre != nil {
		if err := pre(in.Instance); err != nil {
			f.mu.Unlock()
			return err
		}
	}
	in.Config, in.Devices = put.Config, put.Devices
	expand(&in)
	f.ins[name] = in
	f.mu.Unlock()
	f.emit(ctx, "instance-updated", name)
	return nil
}

type fakeImages struct{}

func (fakeImages) Resolve(_ context.Context, v string) (string, error) {
	if v == "busybox" {
		return "abc123", nil
	}
	return "", errdefs.NotFound("image %q not found", v)
}

type fakeTokens map[string]auth.Identity

func (t fakeTokens) Identify(_ context.Context, tok string) (auth.Identity, error) {
	if id, ok := t[tok]; ok {
		return id, nil
	}
	return auth.Identity{}, errdefs.Forbidden("bad token")
}

// fakeAuthz grants by identity name: "viewer" READ, "operator" both.
type fakeAuthz struct{}

func (fakeAuthz) Allowed(ctx context.Context, _ auth.Object, e auth.Entitlement) bool {
	switch auth.From(ctx).Name {
	case "root", "operator":
		return true
	case "viewer":
		return e == auth.CanView
	}
	return false
}
