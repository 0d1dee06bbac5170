package lxd

import (
	"io"
	"net/http"
)

func (s *Server) listLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	files, err := s.Instances.Logs(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = instanceURL(name) + "/logs/" + f
	}
	writeSync(w, out, "")
}

func (s *Server) getLog(w http.ResponseWriter, r *http.Request) {
	b, err := s.Instances.Log(r.Context(), r.PathValue("name"), r.PathValue("file"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(b)
}

func (s *Server) deleteLog(w http.ResponseWriter, r *http.Request) {
	if err := s.Instances.DeleteLog(r.Context(), r.PathValue("name"), r.PathValue("file")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) listExecOutputs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	files, err := s.Instances.ExecOutputs(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = instanceURL(name) + "/logs/exec-output/" + f
	}
	writeSync(w, out, "")
}

func (s *Server) getExecOutput(w http.ResponseWriter, r *http.Request) {
	f, err := s.Instances.OpenExecOutput(r.Context(), r.PathValue("name"), r.PathValue("file"))
	if err != nil {
		writeError(w, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	io.Copy(w, f)
}

func (s *Server) deleteExecOutput(w http.ResponseWriter, r *http.Request) {
	if err := s.Instances.DeleteExecOutput(r.Context(), r.PathValue("name"), r.PathValue("file")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}
