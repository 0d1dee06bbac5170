package lxd

import (
	"net/http"

	"github.com/hangar-dev/hangar/api"
)

func (s *Server) listProfiles(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	profiles := s.Instances.Profiles()
	if rec == 0 {
		urls := make([]string, len(profiles))
		for i, p := range profiles {
			urls[i] = "/1.0/profiles/" + p.Name
		}
		writeSync(w, urls, "")
		return
	}
	writeSync(w, profiles, "")
}

func (s *Server) createProfile(w http.ResponseWriter, r *http.Request) {
	var req api.ProfilesPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Instances.CreateProfile(r.Context(), req); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", "/1.0/profiles/"+req.Name)
	writeSync(w, map[string]any{}, "")
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	p, etag, err := s.Instances.Profile(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, p, etag)
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request) {
	var put api.ProfilePut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Instances.UpdateProfile(r.Context(), r.PathValue("name"), put, ifMatch(r)); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

// patchProfile merges config and devices into the profile's and replaces
// the description when given.
func (s *Server) patchProfile(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var patch struct {
		Config      map[string]string            `json:"config"`
		Description *string                      `json:"description"`
		Devices     map[string]map[string]string `json:"devices"`
	}
	if err := decode(r, &patch); err != nil {
		writeError(w, err)
		return
	}
	cur, etag, err := s.Instances.Profile(name)
	if err != nil {
		writeError(w, err)
		return
	}
	if m := ifMatch(r); m != "" && m != etag {
		etag = m // let the service report the mismatch
	}
	put := cur.ProfilePut
	for k, v := range patch.Config {
		put.Config[k] = v
	}
	for k, v := range patch.Devices {
		put.Devices[k] = v
	}
	if patch.Description != nil {
		put.Description = *patch.Description
	}
	if err := s.Instances.UpdateProfile(r.Context(), name, put, etag); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) renameProfile(w http.ResponseWriter, r *http.Request) {
	var req api.ProfilePost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Instances.RenameProfile(r.Context(), r.PathValue("name"), req.Name); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", "/1.0/profiles/"+req.Name)
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteProfile(w http.ResponseWriter, r *http.Request) {
	if err := s.Instances.DeleteProfile(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}
