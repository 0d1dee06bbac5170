package daemon

import (
	"net/http"
	"strings"
)

// mount is one dialect's place on a listener: requests under Prefix go
// to Handler, with the prefix taken off when Strip is set (the socket's
// /instances-api/ and /velocity/), as they are (the HTTPS listener's /v/).
type mount struct {
	Prefix  string
	Strip   bool
	Handler http.Handler
}

// withDialects serves every mount beside lxd, which gets the rest: one
// mux per listener, so an LXD request passes one route lookup however
// many dialects there are.
func withDialects(lxd http.Handler, mounts ...mount) http.Handler {
	mux := http.NewServeMux()
	for _, m := range mounts {
		h := m.Handler
		if m.Strip {
			h = http.StripPrefix(strings.TrimSuffix(m.Prefix, "/"), h)
		}
		mux.Handle(m.Prefix, h)
	}
	mux.Handle("/", lxd)
	return mux
}
