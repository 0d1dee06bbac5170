package lxd

import (
	"cmp"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
)

// The translation between the core's types and LXD's wire shapes: every
// URL, ETag, status code and placeholder the LXD API shows is made here,
// so the core knows none of them.

// Constant fields of every answer: hangard is one node with one project.
const (
	location       = "none"
	defaultProject = "default"
)

func instanceURL(name string) string { return "/1.0/instances/" + name }
func profileURL(name string) string  { return "/1.0/profiles/" + name }

// entityURL is an entity as LXD names it in an event's source.
func entityURL(e event.Entity) string {
	return inProject(entityPath(e), e.Project)
}

// entityPath is an entity's URL path, without its project.
func entityPath(e event.Entity) string {
	switch e.Kind {
	case event.EntityInstance:
		return instanceURL(e.Name)
	case event.EntityProfile:
		return profileURL(e.Name)
	case event.EntityImage:
		return "/1.0/images/" + e.Name
	case event.EntityImageAlias:
		return "/1.0/images/aliases/" + e.Name
	case event.EntityNetworkForward:
		network, listen, _ := strings.Cut(e.Name, "/")
		return "/1.0/networks/" + network + "/forwards/" + listen
	case event.EntityStorageVolume:
		pool, rest, _ := strings.Cut(e.Name, "/")
		return "/1.0/storage-pools/" + pool + "/volumes/" + rest
	case event.EntityInstanceSnapshot:
		inst, snap, _ := strings.Cut(e.Name, "/")
		return instanceURL(inst) + "/snapshots/" + snap
	case event.EntityInstanceBackup:
		inst, b, _ := strings.Cut(e.Name, "/")
		return instanceURL(inst) + "/backups/" + b
	case event.EntityStorageVolumeSnapshot:
		pool, rest, _ := strings.Cut(e.Name, "/")
		i := strings.LastIndex(rest, "/")
		return "/1.0/storage-pools/" + pool + "/volumes/" + rest[:i] + "/snapshots/" + rest[i+1:]
	}
	return "/1.0/" + e.Kind + "s/" + e.Name
}

// statusCodes maps the core's statuses to LXD's codes.
var statusCodes = map[instance.Status]api.StatusCode{
	instance.StatusStopped:  api.Stopped,
	instance.StatusStarting: api.Starting,
	instance.StatusRunning:  api.Running,
	instance.StatusStopping: api.Stopping,
	instance.StatusFreezing: api.Freezing,
	instance.StatusFrozen:   api.Frozen,
	instance.StatusError:    api.Error,
}

func statusCode(s instance.Status) api.StatusCode {
	if c, ok := statusCodes[s]; ok {
		return c
	}
	return api.Error // a status the table lacks is a bug; say Error, not 0
}

func toAPIInstance(in instance.Instance) api.Instance {
	code := statusCode(in.Status)
	return api.Instance{
		InstancePut: api.InstancePut{
			Architecture: in.Architecture,
			Config:       in.Config,
			Devices:      in.Devices,
			Ephemeral:    in.Ephemeral,
			Profiles:     in.Profiles,
			Stateful:     in.Stateful,
			Description:  in.Description,
		},
		CreatedAt:       in.CreatedAt,
		ExpandedConfig:  in.ExpandedConfig,
		ExpandedDevices: in.ExpandedDevices,
		Name:            in.Name,
		Status:          code.String(),
		StatusCode:      code,
		LastUsedAt:      in.LastUsedAt,
		Location:        location,
		Type:            string(in.Type),
		Project:         cmp.Or(in.Project, defaultProject),
	}
}

// toAPIFull is an instance at recursion 2: with its state, and empty
// snapshots (the handler adds them: snapshotsOf) and backups (hangard has
// none yet).
func toAPIFull(f instance.Full) api.InstanceFull {
	st := toAPIState(f.State)
	return api.InstanceFull{Instance: toAPIInstance(f.Instance), State: &st, Snapshots: []api.InstanceSnapshot{}, Backups: []any{}}
}

func toAPIState(st instance.State) api.InstanceState {
	code := statusCode(st.Status)
	out := api.InstanceState{
		Status:     code.String(),
		StatusCode: code,
		Disk:       map[string]api.InstanceStateDisk{},
		Memory:     api.InstanceStateMemory{Usage: st.MemoryUsage, UsagePeak: st.MemoryPeak},
		Network:    make(map[string]api.InstanceStateNetwork, len(st.Network)),
		Pid:        int64(st.Pid),
		Processes:  st.Processes,
		CPU:        api.InstanceStateCPU{Usage: st.CPUUsage},
	}
	for name, d := range st.Disk {
		out.Disk[name] = api.InstanceStateDisk{Usage: d.Usage, Total: d.Total}
	}
	for name, n := range st.Network {
		addrs := make([]api.InstanceStateNetworkAddress, len(n.Addresses))
		for i, a := range n.Addresses {
			addrs[i] = api.InstanceStateNetworkAddress{Family: a.Family, Address: a.Address, Netmask: a.Netmask, Scope: a.Scope}
		}
		c := n.Counters
		out.Network[name] = api.InstanceStateNetwork{
			Addresses: addrs,
			Counters: api.InstanceStateNetworkCounters{
				BytesReceived: c.BytesReceived, BytesSent: c.BytesSent,
				PacketsReceived: c.PacketsReceived, PacketsSent: c.PacketsSent,
				ErrorsReceived: c.ErrorsReceived, ErrorsSent: c.ErrorsSent,
				PacketsDroppedInbound: c.PacketsDroppedInbound, PacketsDroppedOutbound: c.PacketsDroppedOutbound,
			},
			Hwaddr:   n.Hwaddr,
			HostName: n.HostName,
			Mtu:      n.MTU,
			State:    n.State,
			Type:     n.Type,
		}
	}
	return out
}

func toAPIProfile(p instance.Profile) api.Profile {
	used := make([]string, len(p.UsedBy))
	for i, n := range p.UsedBy {
		used[i] = inProject(instanceURL(n.Name), n.Project)
	}
	return api.Profile{
		ProfilePut: api.ProfilePut{Config: p.Config, Description: p.Description, Devices: p.Devices},
		Name:       p.Name,
		UsedBy:     used,
		Project:    p.Project,
	}
}

// inProject adds project to an object's URL, as LXD does outside the
// default project.
func inProject(u, p string) string {
	if p == "" || p == project.Default {
		return u
	}
	return u + "?project=" + url.QueryEscape(p)
}

func fromInstancesPost(req api.InstancesPost) instance.CreateRequest {
	return instance.CreateRequest{
		Name:         req.Name,
		Type:         instance.Type(req.Type),
		Architecture: req.Architecture,
		Description:  req.Description,
		Config:       req.Config,
		Devices:      req.Devices,
		Profiles:     req.Profiles,
		Ephemeral:    req.Ephemeral,
		Start:        req.Start,
		Preset:       req.InstanceType,
		Source: instance.Source{
			Type:         req.Source.Type,
			Alias:        req.Source.Alias,
			Fingerprint:  req.Source.Fingerprint,
			Server:       req.Source.Server,
			Protocol:     req.Source.Protocol,
			Instance:     req.Source.Source,
			InstanceOnly: req.Source.InstanceOnly,
		},
	}
}

func fromInstancePut(put api.InstancePut) instance.Put {
	return instance.Put{
		Architecture: put.Architecture,
		Config:       put.Config,
		Devices:      put.Devices,
		Ephemeral:    put.Ephemeral,
		Profiles:     put.Profiles,
		Stateful:     put.Stateful,
		Description:  put.Description,
		Restore:      put.Restore,
	}
}

// instancePatch is a PATCH body: absent fields are left as they are.
type instancePatch struct {
	Architecture *string                      `json:"architecture"`
	Config       map[string]string            `json:"config"`
	Devices      map[string]map[string]string `json:"devices"`
	Ephemeral    *bool                        `json:"ephemeral"`
	Profiles     *[]string                    `json:"profiles"`
	Description  *string                      `json:"description"`
}

func (p instancePatch) core() instance.Patch {
	return instance.Patch{
		Architecture: p.Architecture,
		Config:       p.Config,
		Devices:      p.Devices,
		Ephemeral:    p.Ephemeral,
		Profiles:     p.Profiles,
		Description:  p.Description,
	}
}

// instanceETag hashes the fields a PUT replaces, as LXD does, so If-Match
// detects any concurrent change to them.
func instanceETag(in instance.Instance) string {
	return etagJSON([]any{in.Architecture, in.Config, in.Devices, in.Ephemeral, in.Profiles, in.Description})
}

func profileETag(p instance.Profile) string {
	return etagJSON([]any{p.Config, p.Description, p.Devices})
}

// ETag preconditions. The core calls them under the lock that orders
// changes to the instance (or profile), so the check and the change are
// one atomic step; "" (no If-Match) checks nothing.
func instanceMatch(etag string) instance.Precondition {
	if etag == "" {
		return nil
	}
	return func(cur instance.Instance) error {
		if instanceETag(cur) != etag {
			return errdefs.PreconditionFailed("instance %q changed since it was read (ETag mismatch)", cur.Name)
		}
		return nil
	}
}

func profileMatch(etag string) instance.ProfilePrecondition {
	if etag == "" {
		return nil
	}
	return func(cur instance.Profile) error {
		if profileETag(cur) != etag {
			return errdefs.PreconditionFailed("profile %q changed since it was read (ETag mismatch)", cur.Name)
		}
		return nil
	}
}

// lifecycleMetadata is api.EventLifecycle with the context already encoded.
type lifecycleMetadata struct {
	Action    string                       `json:"action"`
	Source    string                       `json:"source"`
	Context   json.RawMessage              `json:"context,omitempty"`
	Requestor *api.EventLifecycleRequestor `json:"requestor,omitempty"`
}

// toAPIEvent renders a hub event as LXD sends it on /1.0/events.
func toAPIEvent(ev event.Event) (api.Event, error) {
	out := api.Event{Type: ev.Type, Timestamp: ev.Timestamp, Metadata: ev.Metadata, Location: ev.Location, Sequence: ev.Sequence}
	if lc := ev.Lifecycle; lc != nil {
		md := lifecycleMetadata{Action: lc.Action, Source: entityURL(lc.Entity), Context: lc.Context}
		if r := lc.Requestor; r != nil {
			md.Requestor = &api.EventLifecycleRequestor{Username: r.Username, Protocol: r.Protocol, Address: r.Address}
		}
		out.Project = lc.Entity.Project
		raw, err := json.Marshal(md)
		if err != nil {
			return api.Event{}, err
		}
		out.Metadata = raw
	}
	return out, nil
}
