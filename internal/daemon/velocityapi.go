package daemon

import (
	"context"

	velocityapi "github.com/hangar-dev/hangar/internal/api/velocity"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/network"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/serverconfig"
	"github.com/hangar-dev/hangar/internal/storage"
)

// VelocityAPIPrefix is where the unix socket serves the /v/ API of seed
// 003 and its /u/auth login: base URL http://unix/velocity/. Over HTTPS
// (core.https_address) they sit at the root, beside /1.0, as Velocity's
// clients expect.
const VelocityAPIPrefix = "/velocity/"

// velocityNICs joins the administrator's NICIDs (velocity.host_nics) with
// what the host has now.
type velocityNICs struct {
	conf *serverconfig.Service
	nets *network.Manager
}

func (v velocityNICs) HostNICs(ctx context.Context) ([]velocityapi.HostNIC, error) {
	ids := v.conf.HostNICs()
	if len(ids) == 0 {
		return nil, nil
	}
	// The host's interfaces are the default project's unmanaged networks.
	nets, err := v.nets.List(project.WithProject(auth.AsDaemon(ctx), project.Project{Name: project.Default}))
	if err != nil {
		return nil, err
	}
	byName := map[string]network.Network{}
	for _, n := range nets {
		if !n.Managed {
			byName[n.Name] = n
		}
	}
	out := make([]velocityapi.HostNIC, len(ids))
	for i, id := range ids {
		out[i] = velocityapi.HostNIC{ID: id.ID, Interface: id.Interface}
		if n, ok := byName[id.Interface]; ok {
			out[i].Type = n.Type
		}
	}
	return out, nil
}

// velocityVolumes finds a medium: a custom volume of the project ctx
// acts in. It looks as the daemon, within that project only: creating
// VMs in a group (can_manage_instances) covers attaching the group's
// media, as an LXD instance may name any volume of its project.
type velocityVolumes struct{ m *storage.Manager }

func (v velocityVolumes) CustomVolume(ctx context.Context, pool, name string) (string, error) {
	vol, err := v.m.Volume(auth.AsDaemon(ctx), pool, "custom", name)
	if err != nil {
		return "", err
	}
	return vol.ContentType, nil
}

// syncProjectTree tells the authorizer the project nesting, so that
// permissions on a project apply below it.
func syncProjectTree(ctx context.Context, projects *project.Service, authz *auth.Authorizer) error {
	ps, err := projects.List(ctx)
	if err != nil {
		return err
	}
	parents := make(map[string]string, len(ps))
	for _, p := range ps {
		if p.Parent != "" {
			parents[p.Name] = p.Parent
		}
	}
	authz.SetProjectTree(parents)
	return nil
}
