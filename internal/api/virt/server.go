package virt

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/device"
	"github.com/hangar-dev/hangar/internal/edge"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/project"
)

// Path is where the API is served: the middleware's current API
// endpoint.
const Path = "/api/current"

// Core is what the edge needs of the instance core (*instance.Service,
// through CoreOf). Every call carries the session's identity and project
// in its context: the core authorizes.
type Core interface {
	// Create validates and runs a create; it returns the new name.
	Create(ctx context.Context, req instance.CreateRequest) (string, error)
	Get(ctx context.Context, name string) (instance.Instance, error)
	GetFull(ctx context.Context, name string) (instance.Full, error)
	ListFull(ctx context.Context) []instance.Full
	Delete(ctx context.Context, name string) error
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string, opts instance.StopOptions) error
	Restart(ctx context.Context, name string, opts instance.StopOptions) error
	Update(ctx context.Context, name string, put instance.Put, pre instance.Precondition) error
}

// CoreOf adapts the core service to Core: Create is the core's Create
// and Run in one call (the job ends when the instance exists).
func CoreOf(s *instance.Service) Core { return serviceCore{s} }

type serviceCore struct{ *instance.Service }

func (c serviceCore) Create(ctx context.Context, req instance.CreateRequest) (string, error) {
	cr, err := c.Service.Create(ctx, req)
	if err != nil {
		return "", err
	}
	if err := cr.Run(ctx); err != nil {
		return "", err
	}
	return cr.Name(), nil
}

// Images resolves an alias or a fingerprint (or a unique prefix) among
// the daemon's local images.
type Images interface {
	Resolve(ctx context.Context, aliasOrFingerprint string) (string, error)
}

// Pools are the storage pools virt.global.config lists and create's
// storage_pool must name.
type Pools interface {
	PoolNames(ctx context.Context) ([]string, error)
	// DefaultPool is the pool of the default profile's root disk.
	DefaultPool(ctx context.Context) (string, error)
}

// Ops is the daemon's operation registry: jobs are its operations.
type Ops interface {
	Start(spec operation.Spec) *operation.Op
	Lookup(id string) (*operation.Op, error)
	ListOps() []*operation.Op
}

// Events is the daemon's event hub.
type Events interface {
	Subscribe(types []string, since uint64) (*event.Subscription, error)
}

// Tokens identifies API keys (hangar's API tokens, hgr_...).
type Tokens interface {
	Identify(ctx context.Context, token string) (auth.Identity, error)
}

// Users checks a local user's name and password (trust.Users).
type Users interface {
	Login(ctx context.Context, name, password, addr string) (auth.Identity, error)
	// SessionValid tells whether a user's login at loginAt still counts
	// (the user not deleted, its password not changed since).
	SessionValid(name string, loginAt time.Time) bool
}

// Authorizer answers the roles' questions (auth.Authorizer).
type Authorizer interface {
	Allowed(ctx context.Context, o auth.Object, e auth.Entitlement) bool
}

// Projects resolves the project a session acts in.
type Projects interface {
	Resolve(ctx context.Context, name string) (project.Project, error)
}

// HostDevices lists the host's passthrough candidates (package device).
type HostDevices interface {
	USB() ([]device.USBDevice, error)
	PCI() ([]device.PCIDevice, error)
	GPUs() ([]device.PCIDevice, error)
}

// Server is the edge. Its state is its sessions, the job ids it gave
// operations, and the entries cache change events are computed from.
type Server struct {
	Core     Core
	Images   Images
	Pools    Pools
	Ops      Ops
	Events   Events
	Tokens   Tokens      // nil: auth.login_with_api_key always fails
	Users    Users       // nil: auth.login always fails
	Authz    Authorizer  // nil: every authenticated session holds both roles (tests)
	Projects Projects    // nil: only the default project exists
	Host     HostDevices // nil: the choices are empty
	// Authn says who opened the websocket; nil: everyone is the socket's
	// root (tests).
	Authn edge.Identifier
	Log   *slog.Logger

	jobs  jobTable
	once  sync.Once
	watch atomic.Pointer[watcher]
}

type rootOnly struct{}

func (rootOnly) Identify(*http.Request) auth.Identity { return edge.Root }

// Handler serves the websocket at any path it is mounted on (the daemon
// mounts it at Path on the socket and the HTTPS listener).
func (s *Server) Handler() http.Handler {
	var id edge.Identifier = rootOnly{}
	if s.Authn != nil {
		id = s.Authn
	}
	return edge.Authenticate(id, edge.Audit(edge.AuditLogger(s.log()), http.HandlerFunc(s.serveWS)))
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

func (s *Server) audit() *slog.Logger { return edge.AuditLogger(s.log()) }

// watcher returns the daemon-wide entries cache, started at first use.
func (s *Server) watcher() *watcher {
	s.once.Do(func() {
		w := newWatcher(s)
		s.watch.Store(w)
		go w.run()
	})
	return s.watch.Load()
}

// Close stops the watcher (tests; the daemon's hub closing stops it too).
func (s *Server) Close() {
	if w := s.watch.Load(); w != nil {
		w.stop()
	}
}

// projectOf is the project an identity acts in: a project token's own,
// the default one for everyone else.
func (s *Server) projectOf(ctx context.Context, id auth.Identity) (project.Project, error) {
	name := project.Default
	if id.Restricted && len(id.Projects) == 1 {
		name = id.Projects[0]
	} else if id.Restricted {
		return project.Project{}, newCallError(errnoEACCES, "identity %q is confined to %d projects: this API acts in exactly one", id.Name, len(id.Projects))
	}
	if s.Projects == nil {
		return project.Project{Name: name}, nil
	}
	return s.Projects.Resolve(ctx, name)
}
