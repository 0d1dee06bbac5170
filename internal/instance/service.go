package instance

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
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
	DeleteProfile(ctx context.Context, name string) error
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
	// LegacyRoot says where an instance made before storage pools
	// existed keeps its root files (the runtimes' old layout), so Storage
	// can move them into a volume.
	LegacyRoot func(runtimeID string, vm bool) storage.LegacyRoot
}

// Service owns instances: their records, their status and the locks that
// keep two operations on one instance from interleaving.
type Service struct {
	cfg Config
	log *slog.Logger

	// mu guards the maps below and every inst's fields except op. It is
	// held only for short reads and writes, never across driver calls, so
	// operations on different instances never wait on each other.
	mu        sync.RWMutex
	byName    map[string]*inst
	byRuntime map[string]*inst
	reserved  map[string]bool // names of instances being created
	profiles  map[string]store.Profile

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
}

// New returns a Service; call Load before serving.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.IDMap.Size == 0 {
		cfg.IDMap = DefaultIDMap
	}
	return &Service{
		cfg:       cfg,
		log:       cfg.Log,
		byName:    map[string]*inst{},
		byRuntime: map[string]*inst{},
		reserved:  map[string]bool{},
		profiles:  map[string]store.Profile{},

		onlineCPUs: readOnlineCPUs,
	}
}

// runtimeID is the driver's name for an instance: stable across renames.
func runtimeID(id int64) string { return fmt.Sprintf("h%d", id) }

// instanceEntity names an instance in lifecycle events.
func instanceEntity(name string) event.Entity {
	return event.Entity{Kind: event.EntityInstance, Name: name}
}

// lookup returns the instance by name under the read lock.
func (s *Service) lookup(name string) (*inst, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.byName[name]
	if !ok {
		return nil, errdefs.NotFound("instance %q not found", name)
	}
	return in, nil
}

// lockInstance finds an instance and takes its operation lock. The caller
// must unlock in.op. A deleted instance is reported as not found.
func (s *Service) lockInstance(name string) (*inst, error) {
	in, err := s.lookup(name)
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
		delete(s.byName, in.rec.Name)
		s.byName[rec.Name] = in
	}
	in.rec = cloneRecord(rec)
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
func (s *Service) profileViewsLocked(names []string) ([]profileView, error) {
	out := make([]profileView, 0, len(names))
	for _, n := range names {
		p, ok := s.profiles[n]
		if !ok {
			return nil, errdefs.NotFound("profile %q not found", n)
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
		s.profiles[p.Name] = p
	}
	for _, r := range recs {
		in := &inst{rec: r, status: StatusStopped}
		s.byName[r.Name] = in
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
