package lxd

import (
	"encoding/base64"
	"net/http"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/trust"
)

// certificateRoutes are /1.0/certificates: the trust store. POST is also
// how an untrusted client redeems a token or the trust password (with or
// without ?public, which LXD uses only to tell the two apart in its docs).
func (s *Server) certificateRoutes() []struct {
	method, path string
	h            http.HandlerFunc
} {
	return []struct {
		method, path string
		h            http.HandlerFunc
	}{
		{"GET", "", s.listCertificates},
		{"POST", "", s.createCertificate},
		{"GET", "/{fp}", s.getCertificate},
		{"PUT", "/{fp}", s.putCertificate},
		{"PATCH", "/{fp}", s.patchCertificate},
		{"DELETE", "/{fp}", s.deleteCertificate},
	}
}

// certificateAuthz wraps a certificate route with its check: any trusted
// identity that may view the server lists and reads certificates; adding
// one, asking for a token and changing or removing one is the server's
// admin's (can_edit), but for an untrusted client's POST, which redeems a
// token or the trust password and is judged by that.
func (s *Server) certificateAuthz(method string, h http.HandlerFunc) http.HandlerFunc {
	edit := s.Requires(auth.CanEdit, h)
	switch method {
	case "GET":
		return s.Requires(auth.CanView, h)
	case "POST":
		return func(w http.ResponseWriter, r *http.Request) {
			if !auth.From(r.Context()).Trusted() {
				h(w, r)
				return
			}
			edit(w, r)
		}
	}
	return edit
}

func certificateURL(fp string) string { return "/1.0/certificates/" + fp }

func toAPICertificate(c trust.Certificate) api.Certificate {
	projects := c.Projects
	if projects == nil {
		projects = []string{}
	}
	return api.Certificate{
		CertificatePut: api.CertificatePut{
			Name: c.Name, Type: c.Type, Restricted: c.Restricted, Projects: projects, Certificate: c.Certificate,
		},
		Fingerprint: c.Fingerprint,
	}
}

func (s *Server) listCertificates(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	certs, err := s.Trust.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		urls := make([]string, len(certs))
		for i, c := range certs {
			urls[i] = certificateURL(c.Fingerprint)
		}
		writeSync(w, urls, "")
		return
	}
	out := make([]api.Certificate, len(certs))
	for i, c := range certs {
		out[i] = toAPICertificate(c)
	}
	writeSync(w, out, "")
}

func (s *Server) createCertificate(w http.ResponseWriter, r *http.Request) {
	var req api.CertificatesPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	id := auth.From(r.Context())
	put := trust.Put{Name: req.Name, Type: req.Type, Restricted: req.Restricted, Projects: req.Projects}
	switch {
	case !id.Trusted():
		s.redeem(w, r, req)
		return
	case req.Token && req.Certificate != "":
		writeError(w, errdefs.Invalid("a request for a token cannot carry a certificate"))
		return
	case req.Token:
		if req.Name == "" {
			writeError(w, errdefs.Invalid("a token needs the name of the client it is for"))
			return
		}
		op, err := s.Trust.IssueToken(r.Context(), put)
		if err != nil {
			writeError(w, err)
			return
		}
		writeAsync(w, op.Snapshot())
		return
	case req.Certificate == "":
		writeError(w, errdefs.Invalid("client is already trusted: give a certificate to add, or ask for a token"))
		return
	}
	der, err := base64.StdEncoding.DecodeString(req.Certificate)
	if err != nil {
		writeError(w, errdefs.Invalid("certificate is not base64 DER: %v", err))
		return
	}
	c, err := s.Trust.Add(r.Context(), der, put)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", certificateURL(c.Fingerprint))
	writeSync(w, map[string]any{}, "")
}

// redeem adds an untrusted client's own TLS certificate when it gives a
// valid token or the trust password; everything it asks for beyond that
// is ignored, as in LXD: the token decides the name and restrictions.
func (s *Server) redeem(w http.ResponseWriter, r *http.Request, req api.CertificatesPost) {
	if req.Token {
		writeError(w, errdefs.Forbidden("not authorized"))
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeError(w, errdefs.Invalid("no client certificate: trust is granted to the TLS certificate the client connects with"))
		return
	}
	c, err := s.Trust.RedeemAndAdd(r.Context(), r.RemoteAddr, req.Password, r.TLS.PeerCertificates[0].Raw)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", certificateURL(c.Fingerprint))
	writeSync(w, map[string]any{}, "")
}

func (s *Server) getCertificate(w http.ResponseWriter, r *http.Request) {
	c, err := s.Trust.Get(r.Context(), r.PathValue("fp"))
	if err != nil {
		writeError(w, err)
		return
	}
	ac := toAPICertificate(c)
	writeSync(w, ac, etagJSON(ac))
}

func (s *Server) putCertificate(w http.ResponseWriter, r *http.Request) {
	s.updateCertificate(w, r, true)
}

func (s *Server) patchCertificate(w http.ResponseWriter, r *http.Request) {
	s.updateCertificate(w, r, false)
}

// updateCertificate is PUT (the body is the whole writable record) and
// PATCH (fields not sent keep their values).
func (s *Server) updateCertificate(w http.ResponseWriter, r *http.Request, replace bool) {
	cur, err := s.Trust.Get(r.Context(), r.PathValue("fp"))
	if err != nil {
		writeError(w, err)
		return
	}
	ac := toAPICertificate(cur)
	if m := ifMatch(r); m != "" {
		if e := etagJSON(ac); e != m {
			writeError(w, errdefs.PreconditionFailed("ETag doesn't match: %s vs %s", e, m))
			return
		}
	}
	req := ac.CertificatePut
	if replace {
		req = api.CertificatePut{}
	}
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	put := trust.Put{Name: req.Name, Type: req.Type, Restricted: req.Restricted, Projects: req.Projects}
	if _, err := s.Trust.Update(r.Context(), cur.Fingerprint, put, req.Certificate); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteCertificate(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Trust.Delete(r.Context(), r.PathValue("fp")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}
