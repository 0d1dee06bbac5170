package lxd

import (
	"context"
	"maps"
	"net/http"
	"slices"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// ServerConfig is what the edge needs of the server configuration.
type ServerConfig interface {
	Get() map[string]string
	Replace(ctx context.Context, cfg map[string]any) error
	Patch(ctx context.Context, cfg map[string]any) error
}

// serverInfo is GET /1.0: the host's description with the configuration.
func (s *Server) serverInfo() api.Server {
	info := s.Info()
	info.Config = maps.Clone(info.Config) // Info's map is shared.
	if info.Config == nil {
		info.Config = map[string]any{}
	}
	if s.Config != nil {
		for k, v := range s.Config.Get() {
			info.Config[k] = v
		}
	}
	// No network or storage manager, no network or storage API: lxc must
	// not think otherwise.
	if s.Networks == nil || s.Storage == nil {
		info.APIExtensions = slices.DeleteFunc(slices.Clone(info.APIExtensions), func(e string) bool {
			return (s.Networks == nil && slices.Contains(api.NetworkExtensions, e)) ||
				(s.Storage == nil && slices.Contains(api.StorageExtensions, e))
		})
	}
	return info
}

func (s *Server) putServer(w http.ResponseWriter, r *http.Request) {
	s.updateServer(w, r, true)
}

func (s *Server) patchServer(w http.ResponseWriter, r *http.Request) {
	s.updateServer(w, r, false)
}

func (s *Server) updateServer(w http.ResponseWriter, r *http.Request, replace bool) {
	var body struct {
		Config map[string]any `json:"config"`
	}
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	if s.Config == nil {
		for k := range body.Config {
			writeError(w, errdefs.Invalid("unknown server config key %q", k))
			return
		}
		writeSync(w, map[string]any{}, "")
		return
	}
	if m := ifMatch(r); m != "" {
		if cur := etagJSON(s.serverInfo().Config); cur != m {
			writeError(w, errdefs.PreconditionFailed("ETag doesn't match: %s vs %s", cur, m))
			return
		}
	}
	var err error
	if replace {
		err = s.Config.Replace(r.Context(), body.Config)
	} else {
		err = s.Config.Patch(r.Context(), body.Config)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}
