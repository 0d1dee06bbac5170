package lxd

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
)

func (s *Server) listOperations(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	// LXD groups operations by lower-case status: {"running": [...], "success": [...]}.
	var ops []api.Operation
	for _, op := range s.Ops.ListOps() {
		if project.Sees(r.Context(), op.Project()) {
			ops = append(ops, op.Snapshot())
		}
	}
	if rec == 0 {
		out := map[string][]string{}
		for _, op := range ops {
			k := strings.ToLower(op.Status)
			out[k] = append(out[k], "/1.0/operations/"+op.ID)
		}
		writeSync(w, out, "")
		return
	}
	out := map[string][]api.Operation{}
	for _, op := range ops {
		k := strings.ToLower(op.Status)
		out[k] = append(out[k], op)
	}
	writeSync(w, out, "")
}

func (s *Server) getOperation(w http.ResponseWriter, r *http.Request) {
	op, err := s.Ops.Get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, op, "")
}

func (s *Server) waitOperation(w http.ResponseWriter, r *http.Request) {
	timeout := time.Duration(-1)
	if v := r.URL.Query().Get("timeout"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, errdefs.Invalid("timeout %q: not an integer number of seconds", v))
			return
		}
		if n >= 0 {
			timeout = time.Duration(n) * time.Second
		}
	}
	op, err := s.Ops.Wait(r.Context(), r.PathValue("id"), timeout)
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, op, "")
}

func (s *Server) cancelOperation(w http.ResponseWriter, r *http.Request) {
	if err := s.Ops.Cancel(r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}
