package velocity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/edge"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
)

// Core is what the edge needs of the instance core (*instance.Service,
// through CoreOf). Every call carries the request's identity and
// project: the core authorizes and enforces quotas.
type Core interface {
	// Create makes the instance and its root; it does not start it.
	Create(ctx context.Context, req instance.CreateRequest) (instance.Instance, error)
	FindID(ctx context.Context, id string) (instance.Ref, error)
	Get(ctx context.Context, name string) (instance.Instance, error)
	List(ctx context.Context) []instance.Instance
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string, opts instance.StopOptions) error
	Freeze(ctx context.Context, name string) error
	Unfreeze(ctx context.Context, name string) error
}

// CoreOf adapts the core service to Core.
func CoreOf(s *instance.Service) Core { return serviceCore{s} }

type serviceCore struct{ *instance.Service }

func (c serviceCore) Create(ctx context.Context, req instance.CreateRequest) (instance.Instance, error) {
	cr, err := c.Service.Create(ctx, req)
	if err != nil {
		return instance.Instance{}, err
	}
	if err := cr.Run(ctx); err != nil {
		return instance.Instance{}, err
	}
	return c.Service.Get(ctx, cr.Name())
}

// Projects resolves a GID.
type Projects interface {
	Resolve(ctx context.Context, name string) (project.Project, error)
}

// Authorizer is the authorization core (*auth.Authorizer).
type Authorizer interface {
	Check(ctx context.Context, o auth.Object, e auth.Entitlement) error
	Allowed(ctx context.Context, o auth.Object, e auth.Entitlement) bool
}

// Users checks a login (*trust.Users) and whether a session still
// counts (its user not deleted, its password not changed since).
type Users interface {
	Login(ctx context.Context, name, password, addr string) (auth.Identity, error)
	SessionValid(name string, loginAt time.Time) bool
}

// HostNIC is one host NIC the administrator made available: its NICID,
// the host interface it names, and the host's view of that interface.
type HostNIC struct {
	ID, Interface string
	// Type is the host's kind of interface (LXD's names: physical,
	// bridge, bond, ...); "" when the interface is not there now.
	Type   string
	Hwaddr string
}

// HostNICs lists the administrator's NICIDs.
type HostNICs interface {
	HostNICs(ctx context.Context) ([]HostNIC, error)
}

// Volumes finds a custom volume (a medium) in ctx's project.
type Volumes interface {
	// CustomVolume returns the volume's content type ("block",
	// "filesystem", "iso"); a missing or hidden one is ErrNotFound.
	CustomVolume(ctx context.Context, pool, name string) (string, error)
}

// Server is the edge. Its only state is the sessions (authkeys).
type Server struct {
	Core     Core
	Projects Projects
	Auth     Authorizer
	Users    Users
	NICs     HostNICs
	Volumes  Volumes
	// NATNetwork is the managed bridge NAT NICs join.
	NATNetwork string
	// RootPool holds the disks of VMs made here.
	RootPool string
	// SessionTTL is an authkey's lifetime (default DefaultSessionTTL).
	SessionTTL time.Duration
	Log        *slog.Logger

	sessions sessions
}

// DefaultSessionTTL is how long an authkey lives unless renewed.
const DefaultSessionTTL = time.Hour

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// route is one endpoint and the status it answers when the caller lacks
// the permission (the seed says 401 on some endpoints, 403 on others).
type route struct {
	pattern string
	denied  int
	h       func(w http.ResponseWriter, r *http.Request) error
}

func (s *Server) routes() []route {
	return []route{
		{"POST /v/vm/list", http.StatusUnauthorized, s.listVMs},
		{"POST /v/vm", http.StatusNotFound, s.getVM},
		{"PUT /v/vm/efi", http.StatusUnauthorized, s.createEFI},
		{"POST /v/vm/state", http.StatusForbidden, s.getState},
		{"PUT /v/vm/state", http.StatusForbidden, s.putState},
		{"POST /v/nic/list", http.StatusUnauthorized, s.listNICs},
	}
}

// Handler serves /u/auth and /v/ at the root: the daemon mounts it at /
// of the HTTPS listener and under /velocity/ on the unix socket.
func (s *Server) Handler() http.Handler {
	s.sessions.init(s.SessionTTL)
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.authenticated(rt))
	}
	mux.HandleFunc("POST /u/auth", s.handle(http.StatusForbidden, s.login))
	mux.HandleFunc("DELETE /u/auth", s.handle(http.StatusForbidden, s.logout))
	mux.HandleFunc("PATCH /u/auth", s.handle(http.StatusForbidden, s.renew))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errdefs.NotFound("no route for %s %s", r.Method, r.URL.Path), http.StatusNotFound)
	})
	return mux
}

func (s *Server) handle(denied int, h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			status := writeError(w, err, denied)
			if status == http.StatusInternalServerError {
				s.log().Error("velocity api", "method", r.Method, "path", r.URL.Path, "err", err)
			}
		}
	}
}

// authenticated reads the body's authkey, puts its session's identity in
// the request's context (so the audit log and the authorization core see
// the user) and hands the body on. No authkey, an unknown or an expired
// one is 401 on every endpoint: the unix socket's root has no authkey either,
// as the dialect knows no other authentication.
func (s *Server) authenticated(rt route) http.Handler {
	inner := edge.Audit(edge.AuditLogger(s.log()), s.handle(rt.denied, rt.h))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
		if err != nil {
			writeError(w, errdefs.Invalid("body: %v", err), rt.denied)
			return
		}
		if len(body) > maxBody {
			writeError(w, errdefs.Invalid("body: larger than %d bytes", maxBody), rt.denied)
			return
		}
		var k struct {
			AuthKey string `json:"authkey"`
		}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &k); err != nil {
				writeError(w, edge.BodyError(err), rt.denied)
				return
			}
		}
		sess, ok := s.session(k.AuthKey)
		if !ok {
			ctx := auth.WithIdentity(r.Context(), edge.Untrusted)
			edge.Audit(edge.AuditLogger(s.log()), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				writeError(w, errUnauthenticated, rt.denied)
			})).ServeHTTP(w, r.WithContext(ctx))
			return
		}
		id := sess.id
		id.Address = r.RemoteAddr
		r = r.WithContext(auth.WithIdentity(r.Context(), id))
		r.Body = io.NopCloser(bytes.NewReader(body))
		inner.ServeHTTP(w, r)
	})
}

// inGroup resolves gid to the project the request acts in; a GID the
// caller may not see is 404 as a missing one.
func (s *Server) inGroup(ctx context.Context, gid string) (context.Context, error) {
	if gid == "" {
		return nil, errdefs.Invalid("gid: required")
	}
	p, err := s.Projects.Resolve(ctx, gid)
	if err != nil {
		return nil, err
	}
	if !s.Auth.Allowed(ctx, auth.Project(p.Name), auth.CanView) {
		return nil, errdefs.NotFound("group %q not found", gid)
	}
	return project.WithProject(ctx, p), nil
}

// need checks e on the group (a project) in ctx: lacking it is the
// route's denial.
func (s *Server) need(ctx context.Context, e auth.Entitlement, what string) error {
	p := project.Name(ctx)
	if !s.Auth.Allowed(ctx, auth.Project(p), e) {
		return denied("%s needs %s on group %q", what, e, p)
	}
	return nil
}

// vm finds the VM vmid names and returns ctx acting in its project.
func (s *Server) vm(ctx context.Context, vmid string) (context.Context, instance.Instance, error) {
	if vmid == "" {
		return nil, instance.Instance{}, errdefs.Invalid("vmid: required")
	}
	ref, err := s.Core.FindID(ctx, vmid)
	if err != nil {
		return nil, instance.Instance{}, errdefs.NotFound("vm %q not found", vmid)
	}
	p, err := s.Projects.Resolve(ctx, ref.Project)
	if err != nil {
		return nil, instance.Instance{}, err
	}
	ctx = project.WithProject(ctx, p)
	in, err := s.Core.Get(ctx, ref.Name)
	if err != nil {
		return nil, instance.Instance{}, err
	}
	if in.Type != instance.TypeVM {
		return nil, instance.Instance{}, errdefs.NotFound("vm %q not found", vmid)
	}
	return ctx, in, nil
}

// listNICs is POST /v/nic/list: velocity.nic.list is can_view_resources
// on the server.
func (s *Server) listNICs(w http.ResponseWriter, r *http.Request) error {
	var req wire.AuthKeyRequest
	if err := decode(r, &req, true); err != nil {
		return err
	}
	ctx := r.Context()
	if !s.Auth.Allowed(ctx, auth.Server(), auth.CanViewResources) {
		return denied("listing host NICs needs %s on the server", auth.CanViewResources)
	}
	out := wire.HostNICs{HostNICs: []wire.HostNIC{}}
	if s.NICs != nil {
		nics, err := s.NICs.HostNICs(ctx)
		if err != nil {
			return err
		}
		for _, n := range nics {
			out.HostNICs = append(out.HostNICs, wire.HostNIC{NICID: n.ID, Identifier: n.Interface, Description: nicDescription(n)})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
