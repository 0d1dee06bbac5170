package lxd

import (
	"context"
	"net/http"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// instancePrefixes are the collections LXD 5.0 serves every instance
// endpoint under. The older two are aliases that see one type only: a VM
// under /1.0/containers is "Instance not found", GET /1.0/containers lists
// containers, and a POST there creates a container unless the body says
// otherwise (lxd/instances.go, instances_get.go urlInstanceTypeDetect).
var instancePrefixes = []struct{ path, typ string }{
	{"instances", ""},
	{"containers", api.InstanceTypeContainer},
	{"virtual-machines", api.InstanceTypeVM},
}

// prefixKey carries the index in instancePrefixes of the prefix a request
// came in under; absent means /1.0/instances.
type prefixKey struct{}

// typed serves h under the prefix of type typ ("" for /1.0/instances).
// A route naming an instance of the other type answers 404 before h runs,
// as LXD's lookup filtered by type does.
func (s *Server) typed(typ string, h http.HandlerFunc) http.HandlerFunc {
	if typ == "" {
		return h
	}
	idx := 0
	for i, p := range instancePrefixes {
		if p.typ == typ {
			idx = i
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if name := r.PathValue("name"); name != "" {
			inst, err := s.Instances.Get(r.Context(), name)
			if err != nil {
				writeError(w, err)
				return
			}
			if string(inst.Type) != typ {
				writeError(w, errdefs.NotFound("Instance not found"))
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), prefixKey{}, idx)))
	}
}

// urlType is the instance type a request selects: by its URL's prefix or,
// under /1.0/instances, by ?instance-type=; "" selects every type.
func urlType(r *http.Request) (string, error) {
	if i, ok := r.Context().Value(prefixKey{}).(int); ok {
		return instancePrefixes[i].typ, nil
	}
	switch t := r.URL.Query().Get("instance-type"); t {
	case "", api.InstanceTypeContainer, api.InstanceTypeVM:
		return t, nil
	default:
		// LXD answers this with a 500 (a plain error through SmartError);
		// it is the client's mistake, so a 400 with LXD's words.
		return "", errdefs.Invalid("Invalid instance type")
	}
}

// collectionURL is the collection a request came in under, for the URLs
// of a recursion=0 listing (LXD answers /1.0/containers/c1 there).
func collectionURL(r *http.Request) string {
	i, _ := r.Context().Value(prefixKey{}).(int)
	return "/1.0/" + instancePrefixes[i].path
}
