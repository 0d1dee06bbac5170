package daemon

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestVelocityRoutes: the socket serves the /v/ API under /velocity/
// and the HTTPS listener at /v/ and /u/; everything else is LXD's.
func TestVelocityRoutes(t *testing.T) {
	tag := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(name + " " + r.URL.Path)) })
	}
	sock, tls := withVelocity(tag("lxd"), tag("velocity")), withVelocityRoot(tag("lxd"), tag("velocity"))
	tests := []struct {
		h          http.Handler
		path, want string
	}{
		{sock, "/velocity/v/vm/list", "velocity /v/vm/list"},
		{sock, "/velocity/u/auth", "velocity /u/auth"},
		{sock, "/v/vm/list", "lxd /v/vm/list"},
		{sock, "/1.0/instances", "lxd /1.0/instances"},
		{tls, "/v/vm/list", "velocity /v/vm/list"},
		{tls, "/u/auth", "velocity /u/auth"},
		{tls, "/1.0", "lxd /1.0"},
	}
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		tt.h.ServeHTTP(rec, httptest.NewRequest("POST", tt.path, nil))
		if got := rec.Body.String(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.path, got, tt.want)
		}
	}
}
