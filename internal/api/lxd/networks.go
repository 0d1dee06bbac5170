package lxd

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"strings"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/network"
)

// Networks is what the edge needs of the network manager
// (*network.Manager).
type Networks interface {
	List(ctx context.Context) ([]network.Network, error)
	Get(ctx context.Context, name string) (network.Network, error)
	Create(ctx context.Context, req network.CreateRequest) error
	Update(ctx context.Context, name string, put network.Put) error
	Patch(ctx context.Context, name string, put network.Put) error
	Rename(ctx context.Context, name, newName string) error
	Delete(ctx context.Context, name string) error
	State(ctx context.Context, name string) (network.Interface, error)
	Leases(ctx context.Context, name string) ([]network.Lease, error)
	Forwards(ctx context.Context, network string) ([]network.Forward, error)
	GetForward(ctx context.Context, network, listen string) (network.Forward, error)
	PutForward(ctx context.Context, f network.Forward, replace bool) error
	DeleteForward(ctx context.Context, network, listen string) error
}

// The manager is what the daemon gives the edge.
var _ Networks = (*network.Manager)(nil)

// networkRoutes are the network endpoints, below /1.0/networks.
func (s *Server) networkRoutes() []struct {
	method, path string
	h            http.HandlerFunc
} {
	return []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"GET", "", s.listNetworks},
		{"POST", "", s.createNetwork},
		{"GET", "/{name}", s.getNetwork},
		{"PUT", "/{name}", s.putNetwork},
		{"PATCH", "/{name}", s.patchNetwork},
		{"POST", "/{name}", s.renameNetwork},
		{"DELETE", "/{name}", s.deleteNetwork},
		{"GET", "/{name}/state", s.getNetworkState},
		{"GET", "/{name}/leases", s.getNetworkLeases},
		{"GET", "/{name}/forwards", s.listForwards},
		{"POST", "/{name}/forwards", s.createForward},
		{"GET", "/{name}/forwards/{listen}", s.getForward},
		{"PUT", "/{name}/forwards/{listen}", s.putForward},
		{"PATCH", "/{name}/forwards/{listen}", s.patchForward},
		{"DELETE", "/{name}/forwards/{listen}", s.deleteForward},
	}
}

// withManager serves h when the daemon has the manager an endpoint needs
// (present, asked at each request). Without one there are none of its
// objects: the list is empty, a named one (path value key) is not found,
// and a change is not implemented.
func (s *Server) withManager(present func() bool, kind, key string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch {
		case present():
			h(w, r)
		case r.Method == http.MethodGet && r.PathValue(key) == "":
			s.emptyCollection(w, r)
		case r.Method == http.MethodGet:
			writeError(w, errdefs.NotFound("%s %q not found", kind, r.PathValue(key)))
		default:
			writeError(w, errdefs.NotImplemented("hangard does not manage %ss here", kind))
		}
	}
}

func networkURL(name string) string { return "/1.0/networks/" + url.PathEscape(name) }

func forwardURL(network, listen string) string {
	return networkURL(network) + "/forwards/" + url.PathEscape(listen)
}

// usedByURL turns the manager's "instances/NAME" and "profiles/NAME"
// (with "?project=P" outside the default project) into LXD's URLs.
func usedByURL(u string) string {
	if strings.HasPrefix(u, "/1.0/") {
		return u
	}
	u, query := cutUsedByQuery(u)
	kind, name, ok := strings.Cut(u, "/")
	if !ok {
		return "/1.0/" + u + query
	}
	return "/1.0/" + kind + "/" + url.PathEscape(name) + query
}

func toAPINetwork(n network.Network) api.Network {
	used := make([]string, len(n.UsedBy))
	for i, u := range n.UsedBy {
		used[i] = usedByURL(u)
	}
	cfg := n.Config
	if cfg == nil {
		cfg = map[string]string{}
	}
	out := api.Network{
		NetworkPut: api.NetworkPut{Config: cfg, Description: n.Description},
		Name:       n.Name,
		Type:       n.Type,
		UsedBy:     used,
		Managed:    n.Managed,
		Status:     n.Status,
	}
	// LXD gives managed networks their members; hangard is one, "none".
	if n.Managed {
		out.Locations = []string{location}
	}
	return out
}

// networkETag hashes what LXD's network ETag covers.
func networkETag(n network.Network) string {
	cfg := n.Config
	if cfg == nil {
		cfg = map[string]string{}
	}
	return etagJSON([]any{n.Name, n.Managed, n.Type, n.Description, cfg})
}

// checkNetworkETag refuses a change made from a stale read. The manager
// takes no precondition, so this check and the change are two steps: it
// catches a change made since the client read, not one racing this
// request.
func (s *Server) checkNetworkETag(r *http.Request, name string) (network.Network, error) {
	cur, err := s.Networks.Get(r.Context(), name)
	if err != nil {
		return network.Network{}, err
	}
	if m := ifMatch(r); m != "" && m != networkETag(cur) {
		return network.Network{}, errdefs.PreconditionFailed("network %q changed since it was read (ETag mismatch)", name)
	}
	return cur, nil
}

func (s *Server) listNetworks(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	nets, err := s.Networks.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		urls := make([]string, len(nets))
		for i, n := range nets {
			urls[i] = networkURL(n.Name)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.Network, len(nets))
	for i, n := range nets {
		out[i] = toAPINetwork(n)
	}
	writeSync(w, out, "")
}

func (s *Server) createNetwork(w http.ResponseWriter, r *http.Request) {
	var req api.NetworksPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Name == "" {
		writeError(w, errdefs.Invalid("no network name given (field \"name\")"))
		return
	}
	err := s.Networks.Create(r.Context(), network.CreateRequest{
		Name: req.Name, Description: req.Description, Type: req.Type, Config: req.Config,
	})
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", networkURL(req.Name))
	writeSync(w, map[string]any{}, "")
}

func (s *Server) getNetwork(w http.ResponseWriter, r *http.Request) {
	n, err := s.Networks.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPINetwork(n), networkETag(n))
}

func (s *Server) putNetwork(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var put api.NetworkPut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	if _, err := s.checkNetworkETag(r, name); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Networks.Update(r.Context(), name, network.Put{Description: put.Description, Config: put.Config}); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// patchNetwork merges the keys given into the network's config (an empty
// value removes a key) and replaces the description when given.
func (s *Server) patchNetwork(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var patch struct {
		Config      map[string]string `json:"config"`
		Description *string           `json:"description"`
	}
	if err := decode(r, &patch); err != nil {
		writeError(w, err)
		return
	}
	cur, err := s.checkNetworkETag(r, name)
	if err != nil {
		writeError(w, err)
		return
	}
	if patch.Description != nil && *patch.Description == "" && cur.Description != "" {
		// The manager's Patch keeps the description on "", which is
		// how a Put says "not given"; clearing it is a replace of the
		// merged whole.
		cfg := maps.Clone(cur.Config)
		if cfg == nil {
			cfg = map[string]string{}
		}
		for k, v := range patch.Config {
			if v == "" {
				delete(cfg, k)
			} else {
				cfg[k] = v
			}
		}
		err = s.Networks.Update(r.Context(), name, network.Put{Config: cfg})
	} else {
		put := network.Put{Config: patch.Config}
		if patch.Description != nil {
			put.Description = *patch.Description
		}
		err = s.Networks.Patch(r.Context(), name, put)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) renameNetwork(w http.ResponseWriter, r *http.Request) {
	var req api.NetworkPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Name == "" {
		writeError(w, errdefs.Invalid("no new network name given (field \"name\")"))
		return
	}
	if err := s.Networks.Rename(r.Context(), r.PathValue("name"), req.Name); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", networkURL(req.Name))
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	if err := s.Networks.Delete(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func toAPINetworkState(i network.Interface) api.NetworkState {
	st := api.NetworkState{
		Addresses: make([]api.NetworkStateAddress, len(i.Addresses)),
		Counters: api.NetworkStateCounters{
			BytesReceived: i.Counters.BytesReceived, BytesSent: i.Counters.BytesSent,
			PacketsReceived: i.Counters.PacketsReceived, PacketsSent: i.Counters.PacketsSent,
		},
		Hwaddr: i.Hwaddr,
		Mtu:    i.MTU,
		State:  "down",
		Type:   i.Type,
	}
	if i.Up {
		st.State = "up"
	}
	for k, a := range i.Addresses {
		st.Addresses[k] = api.NetworkStateAddress{Family: a.Family, Address: a.Address, Netmask: a.Netmask, Scope: a.Scope}
	}
	if i.Type == "bridge" {
		// The ports are what the manager reads; the bridge's other
		// settings (STP, delays, VLANs) are not, and show as zero.
		members := i.Members
		if members == nil {
			members = []string{}
		}
		st.Bridge = &api.NetworkStateBridge{UpperDevices: members}
	}
	return st
}

func (s *Server) getNetworkState(w http.ResponseWriter, r *http.Request) {
	i, err := s.Networks.State(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPINetworkState(i), "")
}

func (s *Server) getNetworkLeases(w http.ResponseWriter, r *http.Request) {
	leases, err := s.Networks.Leases(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]api.NetworkLease, len(leases))
	for i, l := range leases {
		out[i] = api.NetworkLease{Hostname: l.Hostname, Hwaddr: l.Hwaddr, Address: l.Address, Type: l.Type, Location: location}
	}
	writeSync(w, out, "")
}
