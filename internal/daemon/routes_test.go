package daemon

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDialectRoutes: the socket serves the instances API under
// /instances-api/, the /v/ API under /velocity/ and the virt API at
// /api/current; the HTTPS listener serves the /v/ API at /v/ and /u/;
// everything else is LXD's.
func TestDialectRoutes(t *testing.T) {
	tag := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(name + " " + r.URL.Path)) })
	}
	sock := withDialects(tag("lxd"),
		mount{Prefix: InstancesAPIPrefix, Strip: true, Handler: tag("instances")},
		mount{Prefix: VelocityAPIPrefix, Strip: true, Handler: tag("velocity")},
		mount{Prefix: "/api/current", Handler: tag("virt")})
	tls := withDialects(tag("lxd"), mount{Prefix: "/v/", Handler: tag("velocity")}, mount{Prefix: "/u/", Handler: tag("velocity")},
		mount{Prefix: "/api/current", Handler: tag("virt")})
	tests := []struct {
		h          http.Handler
		path, want string
	}{
		{sock, "/velocity/v/vm/list", "velocity /v/vm/list"},
		{sock, "/velocity/u/auth", "velocity /u/auth"},
		{sock, "/v/vm/list", "lxd /v/vm/list"},
		{sock, "/1.0/instances", "lxd /1.0/instances"},
		{sock, "/instances-api/instances", "instances /instances"},
		{sock, "/api/current", "virt /api/current"},
		{tls, "/v/vm/list", "velocity /v/vm/list"},
		{tls, "/u/auth", "velocity /u/auth"},
		{tls, "/1.0", "lxd /1.0"},
		{tls, "/api/current", "virt /api/current"},
		{tls, "/instances-api/instances", "lxd /instances-api/instances"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		tt.h.ServeHTTP(rec, httptest.NewRequest("POST", tt.path, nil))
		if got := rec.Body.String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.path, got, tt.want)
		}
	}
}
