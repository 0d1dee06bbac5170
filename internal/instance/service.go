package instance

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/storage"
	"github.com/hangar-dev/hangar/internal/store"
)

// DB is the persistence the service needs.
type DB interface {
	CreateInstance(ctx context.Context, inst *store.Instance) error
	UpdateInstance(ctx context.Context, inst store.Instance) error
	DeleteInstance(ctx context.Context, id int64) error
	ListInstances(ctx context.Context) ([]store.Instance, error)
	CreateProfile(ctx context.Context, p *store.Profile) error
	ListProfiles(ctx context.Context) ([]store.Profile, error)
	UpdateProfile(ctx context.Context, p store.Profile) error
	DeleteProfile(ctx context.Context, project, name string) error
	CreateInstanceSnapshot(ctx context.Context, sn *store.InstanceSnapshot) error
	ListInstanceSnapshots(ctx context.Context, instanceID int64) ([]store.InstanceSnapshot, error)
	GetInstanceSnapshot(ctx context.Context, instanceID int64, name string) (store.InstanceSnapshot, error)
	UpdateInstanceSnapshot(ctx context.Context, sn store.InstanceSnapshot) error
	DeleteInstanceSnapshot(ctx context.Context, id int64) error
	CreateInstanceBackup(ctx context.Context, b *store.InstanceBackup) error
	ListInstanceBackups(ctx context.Context, instanceID int64) ([]store.InstanceBackup, error)
	GetInstanceBackup(ctx context.Context, instanceID int64, name string) (store.InstanceBackup, error)
	UpdateInstanceBackup(ctx context.Context, b store.InstanceBackup) error
	DeleteInstanceBackup(ctx context.Context, id int64) error
	SetInstanceSecrets(ctx context.Context, instanceID int64, values map[string]string) error
	InstanceSecrets(ctx context.Context, instanceID int64) (map[string]string, error)
}

// Images is what the service needs of the image store.
type Images interface {
	Resolve(ctx context.Context, ref string) (fingerprint string, err error)
	Image(ctx context.Context, fingerprint string) (Image, error)
	MarkUsed(ctx context.Context, fingerprint string) error
}

// Image is what the core reads of a stored image.
type Image struct {
	Fingerprint  string
	Type         Type // TypeVM for a bootable disk, else a root filesystem tree
	Architecture string
	// Properties are copied into an instance's config as image.* keys.
	Properties map[string]string
}

// Emitter publishes lifecycle events: an action (LXD's names, such as
// "instance-started") on an entity, with optional detail. Each edge
// renders the entity its own way (the LXD edge: /1.0/instances/NAME).
type Emitter interface {
	Lifecycle(ctx context.Context, action string, e event.Entity, meta map[string]any)
}

// Projects is what the core reads of projects.
type Projects interface {
	Project(ctx context.Context, name string) (project.Project, error)
}

// DefaultIDMap is the map unprivileged containers share unless Config
// says otherwise: LXD's default range.
var DefaultIDMap = driver.IDMap{HostID: 1000000, Size: 65536}

// Config wires a Service.
type Config struct {
	DB     DB
	Images Images
	// OCI, when set, gives instances from OCI images their run defaults
	// and lets a create pull from a registry (oci.go).
	OCI OCIImages
	// Drivers run instances, by type (TypeContainer: runc, TypeVM: QEMU).
	// A type without one cannot be created.
	Drivers map[Type]driver.Driver
	Events  Emitter
	Log     *slog.Logger
	// IDMap is the map every unprivileged container gets (LXD's default:
	// one shared range, so one shifted image tree serves them all).
	IDMap driver.IDMap
	// HostMemory is the host's RAM in bytes, for "limits.memory: 50%".
	HostMemory int64
	// Architecture is the host's architecture in LXD's naming.
	Architecture string
	// Devices makes the host side of nic and proxy devices; nil refuses
	// every device but "none".
	Devices DeviceLayer
	// LogDir holds instances' log files (recorded exec output), one
	// directory per instance; "" disables recording.
	LogDir string
	// Storage makes instances' roots on storage pools.
	Storage Storage
	// StateDir holds the saved RAM and device state of stateful
	// snapshots, one directory per instance.
	StateDir string
	// BackupDir holds instance backups' tarballs, one directory per
	// instance (backup.go).
	BackupDir string
	// Quota checks project limits; nil: no limits (tests).
	Quota Quota
	// Projects reads projects, for the daemon's own work on an instance
	// outside any request; nil: projects have no config (tests).
	Projects Projects
	// LegacyRoot says where an instance made before storage pools
	// existed keeps its root files (the runtimes' old layout), so Storage
	// can move them into a volume.
	LegacyRoot func(runtimeID string, vm bool) storage.LegacyRoot
	// Authorizer checks every entry point (authz.go); nil allows all.
	Authorizer Authorizer
	// EgressCA is the egress proxy's CA certificate (PEM, never its
	// key): an instance with egress is started trusting it
	// (driver.Spec.EgressCA). nil: no proxy, nothing to trust.
	EgressCA []byte
}

// Service owns instances: their records, their status and the locks that
// keep two operations on one instance from interleaving.
type Service struct {
	cfg Config
	log *slog.Logger
	// usageGen counts changes to profiles: the instances' cached usage
	// is valid for one value of it (a record's own change drops its
	// instance's cache, saveRecord).
	usageGen atomic.Uint64

	// mu guards the maps below and every inst's fields except op. It is
	// held only for short reads and writes, never across driver calls, so
	// operations on different instances never wait on each other.
	mu        sync.RWMutex
	byName    map[ref]*inst
	byRuntime map[string]*inst
	reserved  map[ref]bool // names of instances being created
	profiles  map[ref]store.Profile
	// pending counts, per project, what creations under way will add,
	// so two concurrent creates cannot both pass a project limit.
	pending map[string]project.Usage
	// quotaMu orders project limit checks with their reservations.
	quotaMu sync.Mutex

	// profileMu serialises changes to profiles and to which instances use
	// them (profile writes, the registration of a new instance), so that
	// a profile change is checked against every instance that will use
	// it. Taken before any instance lock.
	profileMu sync.Mutex

	// onlineCPUs reads the host's online CPUs (a CPU list); tests set
	// their own host.
	onlineCPUs func() (string, error)

	background sync.WaitGroup
}

// inst is the in-memory view of one instance. Reads are served from here;
// the database is written through on every change.
type inst struct {
	// op orders the operations that act on the runtime (doc.go, Locking).
	op sync.Mutex
	// cfg orders the changes to rec: every read-modify-write of the
	// record, its database write included, holds it. Never held across a
	// driver call but a live limits update. Taken after op.
	cfg sync.Mutex

	rec     store.Instance
	status  Status
	pid     int
	deleted bool
	// stoppedPid is the pid a Stop ended last: its exit, which comes
	// after the Stop, records how the workload ended (vmfacts.go).
	stoppedPid int
	// usage caches what the instance takes from its project (quota.go),
	// valid while Service.usageGen is what it was computed at.
	usage atomic.Pointer[cachedUsage]
}

// New returns a Service; call Load before serving.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.IDMap.Size == 0 {
		cfg.IDMap = DefaultIDMap
	}
	s := &Service{
		cfg:       cfg,
		log:       cfg.Log,
		byName:    map[ref]*inst{},
		byRuntime: map[string]*inst{},
		reserved:  map[ref]bool{},
		profiles:  map[ref]store.Profile{},
		pending:   map[string]project.Usage{},

		onlineCPUs: readOnlineCPUs,
	}
	// Every lifecycle event goes through the instance's daemon log
	// (streamlog.go) on its way out.
	s.cfg.Events = &hangarLogEmitter{next: cfg.Events, s: s, now: time.Now}
	return s
}

// runtimeID is the driver's name for an instance: stable across renames.
func runtimeID(id int64) string { return fmt.Sprintf("h%d", id) }

// ref names an instance or a profile: names are unique per project.
type ref struct{ project, name string }

// instanceRef names instance name in the project ctx acts in.
func instanceRef(ctx context.Context, name string) ref {
	return ref{project.Name(ctx), name}
}

// profileRef names profile name as ctx's project sees it: its own when it
// has features.profiles, else the default project's.
func profileRef(ctx context.Context, name string) ref {
	return ref{project.From(ctx).Scope(project.FeatureProfiles), name}
}

// usedBy names r as a user of something, in the "KIND/NAME" form the
// edges turn into their own references; one outside the default project
// carries it as "?project=P", as LXD's used_by lists do.
func (r ref) usedBy(kind string) string {
	if r.project == "" || r.project == project.Default {
		return kind + "/" + r.name
	}
	return kind + "/" + r.name + "?project=" + r.project
}

// inProject returns ctx acting in project name, for the daemon's own work
// on an instance (autostart, shutdown, schedules), which no request put in
// a project.
func (s *Service) inProject(ctx context.Context, name string) context.Context {
	if project.Name(ctx) == name && !project.All(ctx) {
		return ctx
	}
	p := project.Project{Name: name}
	if s.cfg.Projects != nil {
		got, err := s.cfg.Projects.Project(ctx, name)
		if err != nil {
			s.log.Warn("load project", "project", name, "err", err)
		} else {
			p = got
		}
	}
	return project.WithProject(ctx, p)
}

// ref names the instance.
func (in *inst) ref() ref { return ref{in.rec.Project, in.rec.Name} }

// profileRefs names the instance's profiles, in order.
func profileRefs(rec store.Instance) []ref {
	out := make([]ref, len(rec.Profiles))
	for i, n := range rec.Profiles {
		out[i] = ref{rec.ProfileProject, n}
	}
	return out
}

// usesProfile tells whether rec lists profile p.
func usesProfile(rec store.Instance, p ref) bool {
	return rec.ProfileProject == p.project && slices.Contains(rec.Profiles, p.name)
}

// sortedRefs returns m's keys ordered by project, then name.
func sortedRefs[V any](m map[ref]V) []ref {
	out := make([]ref, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, compareRefs)
	return out
}

func compareRefs(a, b ref) int {
	if c := strings.Compare(a.project, b.project); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// instanceEntity names an instance in lifecycle events.
func instanceEntity(project, name string) event.Entity {
	return event.Entity{Kind: event.EntityInstance, Name: name, Project: project}
}

// lookup returns the instance by name, in ctx's project, under the read
// lock.
func (s *Service) lookup(ctx context.Context, name string) (*inst, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.byName[instanceRef(ctx, name)]
	if !ok {
		return nil, errdefs.NotFound("instance %q not found", name)
	}
	return in, nil
}

// lockInstance finds an instance in ctx's project and takes its operation
// lock. The caller must unlock in.op. A deleted instance is reported as
// not found.
func (s *Service) lockInstance(ctx context.Context, name string) (*inst, error) {
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	in.op.Lock()
	s.mu.RLock()
	gone := in.deleted || in.rec.Name != name
	s.mu.RUnlock()
	if gone {
		in.op.Unlock()
		return nil, errdefs.NotFound("instance %q not found", name)
	}
	return in, nil
}

// lockRecord takes the record lock of an instance found by name; a
// deleted or renamed instance is reported as not found.
func (s *Service) lockRecord(in *inst, name string) error {
	in.cfg.Lock()
	s.mu.RLock()
	gone := in.deleted || in.rec.Name != name
	s.mu.RUnlock()
	if gone {
		in.cfg.Unlock()
		return notFound(name)
	}
	return nil
}

// setStatus moves an instance to a new status through the state machine.
func (s *Service) setStatus(in *inst, to Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.status == to {
		return nil
	}
	if err := checkTransition(in.rec.Name, in.status, to); err != nil {
		return err
	}
	in.status = to
	return nil
}

// forceStatus records what the runtime reports, bypassing the table: used
// only when reality is read back (recovery, unexpected exits).
func (s *Service) forceStatus(in *inst, to Status, pid int) {
	s.mu.Lock()
	in.status = to
	in.pid = pid
	s.mu.Unlock()
}

// snapshot copies an instance's record and status under the read lock.
func (s *Service) snapshot(in *inst) (store.Instance, Status, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cloneRecord(in.rec), in.status, in.pid
}

// saveRecord writes a changed record through to the database and then to
// memory; on a database error memory keeps the old record. The caller
// holds in.cfg.
func (s *Service) saveRecord(ctx context.Context, in *inst, rec store.Instance) error {
	if err := s.cfg.DB.UpdateInstance(ctx, rec); err != nil {
		return fmt.Errorf("save instance %q: %w", rec.Name, err)
	}
	s.mu.Lock()
	if in.rec.Name != rec.Name {
		delete(s.byName, in.ref())
		s.byName[ref{rec.Project, rec.Name}] = in
	}
	in.rec = cloneRecord(rec)
	// Only this instance's usage changes: the others' cached usage stays
	// (a create in a tree of 1000 instances would otherwise recompute
	// every one of them at its quota check).
	in.usage.Store(nil)
	s.mu.Unlock()
	return nil
}

// updateRecord changes an instance's current record with fn and saves it,
// under the record lock, which the caller must not hold.
func (s *Service) updateRecord(ctx context.Context, in *inst, fn func(*store.Instance)) error {
	in.cfg.Lock()
	defer in.cfg.Unlock()
	rec, _, _ := s.snapshot(in)
	fn(&rec)
	return s.saveRecord(ctx, in, rec)
}

// profileViews returns the named profiles in order; the caller holds s.mu.
func (s *Service) profileViewsLocked(refs []ref) ([]profileView, error) {
	out := make([]profileView, 0, len(refs))
	for _, r := range refs {
		p, ok := s.profiles[r]
		if !ok {
			return nil, errdefs.NotFound("profile %q not found", r.name)
		}
		out = append(out, profileView{Name: p.Name, Config: p.Config, Devices: p.Devices})
	}
	return out, nil
}

// Load reads every profile and instance from the database. It must run
// before Recover.
func (s *Service) Load(ctx context.Context) error {
	profiles, err := s.cfg.DB.ListProfiles(ctx)
	if err != nil {
		return fmt.Errorf("load profiles: %w", err)
	}
	recs, err := s.cfg.DB.ListInstances(ctx)
	if err != nil {
		return fmt.Errorf("load instances: %w", err)
	}
	// Instances created before volatile.uuid existed get theirs now: it
	// must be there, and stable, from here on.
	for i := range recs {
		if recs[i].Config[keyUUID] != "" {
			continue
		}
		if recs[i].Config == nil {
			recs[i].Config = map[string]string{}
		}
		recs[i].Config[keyUUID] = newUUID()
		if err := s.cfg.DB.UpdateInstance(ctx, recs[i]); err != nil {
			return fmt.Errorf("load instance %s: %w", recs[i].Name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range profiles {
		p.Project = cmp.Or(p.Project, project.Default)
		s.profiles[ref{p.Project, p.Name}] = p
	}
	for _, r := range recs {
		r.Project = cmp.Or(r.Project, project.Default)
		r.ProfileProject = cmp.Or(r.ProfileProject, project.Default)
		in := &inst{rec: r, status: StatusStopped}
		s.byName[ref{r.Project, r.Name}] = in
		s.byRuntime[runtimeID(r.ID)] = in
	}
	return nil
}

// Wait blocks until background work (ephemeral deletes, autostarts) ends,
// or ctx does (its error is returned then).
func (s *Service) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.background.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func cloneRecord(r store.Instance) store.Instance {
	r.Config = cloneMap(r.Config)
	r.Devices = cloneDevices(r.Devices)
	r.Profiles = append([]string(nil), r.Profiles...)
	return r
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func cloneDevices(m map[string]map[string]string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(m))
	for k, v := range m {
		out[k] = cloneMap(v)
	}
	return out
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func nowUTC() time.Time { return time.Now().UTC() }
