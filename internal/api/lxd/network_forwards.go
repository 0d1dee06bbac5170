package lxd

import (
	"maps"
	"net/http"
	"net/netip"
	"strings"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/network"
)

// Network forwards (LXD's network_forward extension): a listen address of
// the host and the instance addresses its ports go to. The manager checks
// their meaning; here they get LXD's shapes, URLs and ETags.

func toAPIForward(f network.Forward) api.NetworkForward {
	cfg := f.Config
	if cfg == nil {
		cfg = map[string]string{}
	}
	ports := make([]api.NetworkForwardPort, len(f.Ports))
	for i, p := range f.Ports {
		ports[i] = api.NetworkForwardPort(p)
	}
	return api.NetworkForward{
		NetworkForwardPut: api.NetworkForwardPut{Description: f.Description, Config: cfg, Ports: ports},
		ListenAddress:     f.ListenAddress,
		Location:          location,
	}
}

func fromAPIForward(netName, listen string, put api.NetworkForwardPut) network.Forward {
	put = normaliseForward(put)
	ports := make([]network.ForwardPort, len(put.Ports))
	for i, p := range put.Ports {
		ports[i] = network.ForwardPort(p)
	}
	return network.Forward{
		Network: netName, ListenAddress: canonicalIP(listen),
		Description: put.Description, Config: put.Config, Ports: ports,
	}
}

// forwardETag hashes what LXD's forward ETag covers.
func forwardETag(f network.Forward) string {
	a := toAPIForward(f)
	return etagJSON([]any{a.ListenAddress, a.Description, a.Config, a.Ports})
}

// canonicalIP writes an address as the manager stores it ("FD00::0001"
// is "fd00::1"), as LXD does, so that the same address is one forward;
// what is not an address is left for the manager to refuse.
func canonicalIP(s string) string {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return s
}

// normaliseForward trims what LXD trims and writes addresses canonically.
func normaliseForward(put api.NetworkForwardPut) api.NetworkForwardPut {
	put.Description = strings.TrimSpace(put.Description)
	put.Config = maps.Clone(put.Config)
	if put.Config == nil {
		put.Config = map[string]string{}
	}
	if t, ok := put.Config["target_address"]; ok {
		put.Config["target_address"] = canonicalIP(t)
	}
	ports := make([]api.NetworkForwardPort, len(put.Ports))
	for i, p := range put.Ports {
		p.Description = strings.TrimSpace(p.Description)
		p.Protocol = strings.TrimSpace(p.Protocol)
		p.TargetAddress = canonicalIP(p.TargetAddress)
		p.ListenPort = trimList(p.ListenPort)
		p.TargetPort = trimList(p.TargetPort)
		ports[i] = p
	}
	put.Ports = ports
	return put
}

// trimList trims the spaces around each item of "80, 443".
func trimList(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return strings.Join(parts, ",")
}

func (s *Server) listForwards(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	name := r.PathValue("name")
	fs, err := s.Networks.Forwards(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		urls := make([]string, len(fs))
		for i, f := range fs {
			urls[i] = forwardURL(name, f.ListenAddress)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.NetworkForward, len(fs))
	for i, f := range fs {
		out[i] = toAPIForward(f)
	}
	writeSync(w, out, "")
}

func (s *Server) createForward(w http.ResponseWriter, r *http.Request) {
	var req api.NetworkForwardsPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if strings.TrimSpace(req.ListenAddress) == "" {
		writeError(w, errdefs.Invalid("no listen address given (field \"listen_address\")"))
		return
	}
	name := r.PathValue("name")
	f := fromAPIForward(name, req.ListenAddress, req.NetworkForwardPut)
	if err := s.Networks.PutForward(r.Context(), f, false); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", forwardURL(name, f.ListenAddress))
	writeSync(w, map[string]any{}, "")
}

func (s *Server) getForward(w http.ResponseWriter, r *http.Request) {
	f, err := s.Networks.GetForward(r.Context(), r.PathValue("name"), canonicalIP(r.PathValue("listen")))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIForward(f), forwardETag(f))
}

// checkForwardETag refuses a change made from a stale read; like
// checkNetworkETag, it is a step of its own before the change.
func (s *Server) checkForwardETag(r *http.Request) (network.Forward, error) {
	cur, err := s.Networks.GetForward(r.Context(), r.PathValue("name"), canonicalIP(r.PathValue("listen")))
	if err != nil {
		return network.Forward{}, err
	}
	if m := ifMatch(r); m != "" && m != forwardETag(cur) {
		return network.Forward{}, errdefs.PreconditionFailed("network forward %s changed since it was read (ETag mismatch)", cur.ListenAddress)
	}
	return cur, nil
}

func (s *Server) putForward(w http.ResponseWriter, r *http.Request) {
	var put api.NetworkForwardPut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	cur, err := s.checkForwardETag(r)
	if err != nil {
		writeError(w, err)
		return
	}
	f := fromAPIForward(r.PathValue("name"), cur.ListenAddress, put)
	if err := s.Networks.PutForward(r.Context(), f, true); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// patchForward merges config keys (an empty value removes one), and
// replaces the ports and the description when given.
func (s *Server) patchForward(w http.ResponseWriter, r *http.Request) {
	var patch struct {
		Description *string                   `json:"description"`
		Config      map[string]string         `json:"config"`
		Ports       *[]api.NetworkForwardPort `json:"ports"`
	}
	if err := decode(r, &patch); err != nil {
		writeError(w, err)
		return
	}
	cur, err := s.checkForwardETag(r)
	if err != nil {
		writeError(w, err)
		return
	}
	put := toAPIForward(cur).NetworkForwardPut
	put.Config = maps.Clone(put.Config)
	for k, v := range patch.Config {
		if v == "" {
			delete(put.Config, k)
		} else {
			put.Config[k] = v
		}
	}
	if patch.Ports != nil {
		put.Ports = *patch.Ports
	}
	if patch.Description != nil {
		put.Description = *patch.Description
	}
	f := fromAPIForward(r.PathValue("name"), cur.ListenAddress, put)
	if err := s.Networks.PutForward(r.Context(), f, true); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteForward(w http.ResponseWriter, r *http.Request) {
	if err := s.Networks.DeleteForward(r.Context(), r.PathValue("name"), canonicalIP(r.PathValue("listen"))); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}
