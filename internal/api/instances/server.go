package instances

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/edge"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
)

// Core is what the edge needs of the instance core (*instance.Service,
// through CoreOf). Every method takes the request's context, which
// carries its identity and project: the core authorizes.
type Core interface {
	// Create validates and runs a create; it returns the new name.
	Create(ctx context.Context, req instance.CreateRequest, opts instance.CreateOptions) (string, error)
	ResolveID(ctx context.Context, idOrName string) (string, error)
	Get(ctx context.Context, name string) (instance.Instance, error)
	GetFull(ctx context.Context, name string) (instance.Full, error)
	GetBrief(ctx context.Context, name string) (instance.Full, error)
	ListFull(ctx context.Context) []instance.Full
	Delete(ctx context.Context, name string) error
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string, opts instance.StopOptions) error
	Update(ctx context.Context, name string, put instance.Put, pre instance.Precondition) error
	Patch(ctx context.Context, name string, patch instance.Patch, pre instance.Precondition) error
	Fork(ctx context.Context, name, newName string) (instance.ForkResult, error)
	Snapshots(ctx context.Context, name string) ([]instance.Snapshot, error)
	CreateSnapshot(ctx context.Context, name string, req instance.SnapshotRequest) (instance.Snapshot, error)
	RestoreSnapshot(ctx context.Context, name, snap string, stateful bool) error
	VMStats(ctx context.Context, name string) (instance.VMStats, error)
	StatPath(ctx context.Context, name, path string, followLinks bool) (instance.PathInfo, error)
	StreamLog(ctx context.Context, name string, source instance.LogSource, tail int, follow bool, emit func(lines [][]byte) error) error
	UpdateCredentialValues(ctx context.Context, name string, env map[string]string) error
	SnapshotSchedule(ctx context.Context, name string) (instance.SnapshotSchedule, error)
	SetSnapshotSchedule(ctx context.Context, name string, sch instance.SnapshotSchedule) (instance.SnapshotSchedule, error)
	DeleteSnapshotSchedule(ctx context.Context, name string) error
}

// CoreOf adapts the core service to Core: its Create is the core's
// Create and Run in one call (this API answers when the instance
// exists and has started).
func CoreOf(s *instance.Service) Core { return serviceCore{s} }

type serviceCore struct{ *instance.Service }

func (c serviceCore) Create(ctx context.Context, req instance.CreateRequest, opts instance.CreateOptions) (string, error) {
	cr, err := c.Service.Create(ctx, req, opts)
	if err != nil {
		return "", err
	}
	if err := cr.Run(ctx); err != nil {
		return "", err
	}
	return cr.Name(), nil
}

// AutoStandbyStatus is the auto-standby controller's view of one
// instance, every field of the seed's AutoStandbyStatus in Go types; nil
// and "" are the seed's nulls.
type AutoStandbyStatus struct {
	ActiveInboundConnections int64
	Configured, Eligible     bool
	Enabled, Supported       bool
	Reason, Status           string
	TrackingMode             string
	CountdownRemaining       *time.Duration
	IdleSince                *time.Time
	IdleTimeout              string
	LastInboundActivityAt    *time.Time
	NextStandbyAt            *time.Time
}

// AutoStandby is the daemon's auto-standby controller (package
// autostandby, adapted by the daemon).
type AutoStandby interface {
	Status(ctx context.Context, project, name string) (AutoStandbyStatus, error)
	// Hold keeps the instance out of standby for one idle timeout from
	// now; a conflict for an instance in standby.
	Hold(ctx context.Context, project, name string) (AutoStandbyStatus, error)
}

// Projects resolves the project a token is confined to.
type Projects interface {
	Resolve(ctx context.Context, name string) (project.Project, error)
}

// Addresses is the networks' IPAM as the edge reads it.
type Addresses interface {
	// AssignedIPv4 maps each NIC's MAC (lower case) to the IPv4
	// address its network assigned it.
	AssignedIPv4(ctx context.Context) (map[string]string, error)
}

// Volumes finds the pool of a custom volume of ctx's project.
type Volumes interface {
	PoolOfCustomVolume(ctx context.Context, name string) (string, error)
}

// Events is the daemon's event hub: Wait wakes on lifecycle events.
type Events interface {
	Subscribe(types []string, since uint64) (*event.Subscription, error)
}

// Server is the edge: it holds no state of its own.
type Server struct {
	Core        Core
	Projects    Projects    // nil: only the default project exists
	AutoStandby AutoStandby // nil: the auto-standby routes answer 501
	Volumes     Volumes     // nil: volumes answer 501
	Addresses   Addresses   // nil: network.ip is the guest's live address only
	Events      Events      // nil: Wait polls only
	// Authn says who a request is; nil: everyone is the socket's root
	// (tests).
	Authn edge.Identifier
	// NICNetwork is the network a NIC with bandwidth limits joins (the
	// default profile's eth0's).
	NICNetwork string
	Log        *slog.Logger
}

type rootOnly struct{}

func (rootOnly) Identify(*http.Request) auth.Identity { return edge.Root }

// Handler serves the API with its routes at the root ("/instances"):
// the daemon mounts it at / on its own listener and under
// /instances-api/ on the unix socket.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.pattern, rt.h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errdefs.NotFound("no route for %s %s", r.Method, r.URL.Path))
	})
	var id edge.Identifier = rootOnly{}
	if s.Authn != nil {
		id = s.Authn
	}
	return edge.Authenticate(id, edge.Audit(edge.AuditLogger(s.log()), s.gate(mux)))
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.Default()
	}
	return s.Log
}

// gate refuses untrusted requests (401: no or a bad bearer token) and
// puts the identity's project in the context: a token's own project,
// the default one for root and admin tokens.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := auth.From(r.Context())
		if !id.Trusted() {
			writeError(w, errUnauthorized)
			return
		}
		name := project.Default
		if id.Restricted && len(id.Projects) == 1 {
			name = id.Projects[0]
		} else if id.Restricted {
			writeError(w, errdefs.Forbidden("identity %q is confined to %d projects: this API acts in exactly one", id.Name, len(id.Projects)))
			return
		}
		p := project.Project{Name: name}
		if s.Projects != nil {
			var err error
			if p, err = s.Projects.Resolve(r.Context(), name); err != nil {
				writeError(w, err)
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(project.WithProject(r.Context(), p)))
	})
}

type route struct {
	pattern string
	h       http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{"POST /instances", s.create},
		{"GET /instances", s.list},
		{"GET /instances/{id}", s.withName(s.get)},
		{"PATCH /instances/{id}", s.withName(s.update)},
		{"DELETE /instances/{id}", s.withName(s.delete)},
		{"POST /instances/{id}/fork", s.withName(s.fork)},
		{"GET /instances/{id}/logs", s.withName(s.logs)},
		{"POST /instances/{id}/restore", s.withName(s.restore)},
		{"POST /instances/{id}/standby", s.withName(s.standby)},
		{"POST /instances/{id}/start", s.withName(s.start)},
		{"POST /instances/{id}/stop", s.withName(s.stop)},
		{"GET /instances/{id}/stat", s.withName(s.stat)},
		{"GET /instances/{id}/stats", s.withName(s.stats)},
		{"GET /instances/{id}/wait", s.withName(s.wait)},
		{"GET /instances/{id}/auto-standby/status", s.withName(s.autoStandbyStatus)},
		{"POST /instances/{id}/auto-standby/hold", s.withName(s.autoStandbyHold)},
		{"POST /instances/{id}/snapshots", s.withName(s.createSnapshot)},
		{"POST /instances/{id}/snapshots/{snapshotId}/restore", s.withName(s.restoreSnapshot)},
		{"GET /instances/{id}/snapshot-schedule", s.withName(s.getSchedule)},
		{"PUT /instances/{id}/snapshot-schedule", s.withName(s.setSchedule)},
		{"DELETE /instances/{id}/snapshot-schedule", s.withName(s.deleteSchedule)},
		{"POST /instances/{id}/volumes/{volumeId}", s.withName(s.attachVolume)},
		{"DELETE /instances/{id}/volumes/{volumeId}", s.withName(s.detachVolume)},
	}
}

// withName resolves {id} (an id, a name or a unique id prefix) to the
// instance's name; only virtual machines are instances of this API.
func (s *Server) withName(h func(w http.ResponseWriter, r *http.Request, name string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		name, err := s.Core.ResolveID(r.Context(), id)
		if err != nil {
			writeError(w, err)
			return
		}
		in, err := s.Core.Get(r.Context(), name)
		if err != nil {
			writeError(w, err)
			return
		}
		if in.Type != instance.TypeVM {
			writeError(w, errdefs.NotFound("instance %q not found: it is a container, and this API serves virtual machines", id))
			return
		}
		h(w, r, name)
	}
}
