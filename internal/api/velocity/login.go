package velocity

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// errBadLogin is every failed login and renewal (403, as Velocity's
// /u/auth): it never says whether the name exists.
var errBadLogin = errors.New("authentication failed")

// login is POST /u/auth: a user's name and password for an authkey.
func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	var req wire.AuthRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	if req.Name == "" {
		return errdefs.Invalid("name: required")
	}
	if s.Users == nil {
		return errdefs.NotImplemented("no users on this server")
	}
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr // the unix socket's "@"
	}
	loginAt := time.Now()
	id, err := s.Users.Login(r.Context(), req.Name, req.Password, addr)
	if err != nil {
		if errors.Is(err, errdefs.ErrForbidden) || errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalidArgument) {
			return denied("%v", errBadLogin)
		}
		return err
	}
	return s.issue(w, id, loginAt)
}

// logout is DELETE /u/auth: 200 whether the key existed or not.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	var req wire.AuthKeyRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	s.sessions.drop(req.AuthKey)
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// renew is PATCH /u/auth: a live key for a new one; the old one ends.
func (s *Server) renew(w http.ResponseWriter, r *http.Request) error {
	var req wire.AuthKeyRequest
	if err := decode(r, &req, false); err != nil {
		return err
	}
	sess, ok := s.session(req.AuthKey)
	if !ok {
		return denied("%v: unknown or expired authkey", errBadLogin)
	}
	s.sessions.drop(req.AuthKey)
	return s.issue(w, sess.id, sess.loginAt)
}

// session returns the live session of an authkey whose user still
// counts; a session of a deleted user, or from before a password change,
// is dropped.
func (s *Server) session(key string) (session, bool) {
	sess, ok := s.sessions.lookup(key)
	if !ok {
		return session{}, false
	}
	if sess.id.Kind == auth.KindUser && (s.Users == nil || !s.Users.SessionValid(sess.id.Name, sess.loginAt)) {
		s.sessions.drop(key)
		return session{}, false
	}
	return sess, true
}

func (s *Server) issue(w http.ResponseWriter, id auth.Identity, loginAt time.Time) error {
	key, exp, err := s.sessions.create(id, loginAt)
	if err != nil {
		return fmt.Errorf("new authkey: %w", err)
	}
	writeJSON(w, http.StatusOK, wire.AuthResponse{AuthKey: key, Expires: wire.Num(exp.Unix())})
	return nil
}
