package network

import (
	"context"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// scope is the project whose networks ctx sees: its own with
// features.networks, else the default project's.
func scope(ctx context.Context) string {
	return project.From(ctx).Scope(project.FeatureNetworks)
}

// network returns the managed network called name of the scope project;
// another project's is not found, so names do not leak.
func (m *Manager) network(ctx context.Context, name string) (store.Network, error) {
	rec, err := m.cfg.Store.GetNetwork(ctx, name)
	if err != nil {
		return store.Network{}, err
	}
	if rec.Project != scope(ctx) {
		return store.Network{}, errdefs.NotFound("network %q not found", name)
	}
	return rec, nil
}

// NetworkCount is how many managed networks project holds itself (what
// its limits.networks counts).
func (m *Manager) NetworkCount(ctx context.Context, project string) (int64, error) {
	recs, err := m.cfg.Store.ListNetworks(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, r := range recs {
		if r.Project == project {
			n++
		}
	}
	return n, nil
}

// emitIn publishes a lifecycle event about a network of proj.
func (m *Manager) emitIn(ctx context.Context, proj, action, kind, name string, meta map[string]any) {
	if m.cfg.Events != nil {
		m.cfg.Events.Lifecycle(ctx, action, event.Entity{Kind: kind, Name: name, Project: proj}, meta)
	}
}
