package lxd

import (
	"net/http"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/instance"
)

func fromProfilePut(put api.ProfilePut) instance.ProfilePut {
	return instance.ProfilePut{Description: put.Description, Config: put.Config, Devices: put.Devices}
}

func (s *Server) listProfiles(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	profiles := s.Instances.Profiles(r.Context())
	if rec == 0 {
		urls := make([]string, len(profiles))
		for i, p := range profiles {
			urls[i] = profileURL(p.Name)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.Profile, len(profiles))
	for i, p := range profiles {
		out[i] = toAPIProfile(p)
	}
	writeSync(w, out, "")
}

func (s *Server) createProfile(w http.ResponseWriter, r *http.Request) {
	var req api.ProfilesPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Instances.CreateProfile(r.Context(), req.Name, fromProfilePut(req.ProfilePut)); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", profileURL(req.Name))
	writeSync(w, map[string]any{}, "")
}

func (s *Server) getProfile(w http.ResponseWriter, r *http.Request) {
	p, err := s.Instances.Profile(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIProfile(p), profileETag(p))
}

func (s *Server) putProfile(w http.ResponseWriter, r *http.Request) {
	var put api.ProfilePut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Instances.UpdateProfile(r.Context(), r.PathValue("name"), fromProfilePut(put), profileMatch(ifMatch(r))); err != nil {
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
	// The read below needs only can_view: check the change first.
	if checked(w, s.allow(r, profileObject(r, name), auth.CanEdit)) {
		return
	}
	cur, err := s.Instances.Profile(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	// The merge is made from what was read here, so the update must
	// apply only if the profile is still that (or what If-Match names).
	etag := profileETag(cur)
	if m := ifMatch(r); m != "" {
		etag = m
	}
	put := instance.ProfilePut{Config: cur.Config, Description: cur.Description, Devices: cur.Devices}
	for k, v := range patch.Config {
		put.Config[k] = v
	}
	for k, v := range patch.Devices {
		put.Devices[k] = v
	}
	if patch.Description != nil {
		put.Description = *patch.Description
	}
	if err := s.Instances.UpdateProfile(r.Context(), name, put, profileMatch(etag)); err != nil {
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
	w.Header().Set("Location", profileURL(req.Name))
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteProfile(w http.ResponseWriter, r *http.Request) {
	if err := s.Instances.DeleteProfile(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}
