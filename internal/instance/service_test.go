package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/store"
)

// fakeDB keeps records in memory.
type fakeDB struct {
	mu        sync.Mutex
	next      int64
	instances map[int64]store.Instance
	profiles  map[string]store.Profile
	snaps     map[int64]store.InstanceSnapshot
	backups   map[int64]store.InstanceBackup // backup_test.go
	secrets   map[int64]map[string]string    // credentials_test.go
	failNext  error
	// onUpdate runs (under mu) after each instance update.
	onUpdate func()
}

func newFakeDB() *fakeDB {
	return &fakeDB{
		instances: map[int64]store.Instance{},
		profiles:  map[string]store.Profile{"default": {ID: 1, Name: "default", Config: map[string]string{}, Devices: map[string]map[string]string{}}},
		snaps:     map[int64]store.InstanceSnapshot{},
		backups:   map[int64]store.InstanceBackup{},
	}
}

// clone copies the database as it is now: what a daemon killed at this
// moment leaves for the next one.
func (d *fakeDB) clone() *fakeDB {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cloneLocked()
}

func (d *fakeDB) cloneLocked() *fakeDB {
	c := &fakeDB{next: d.next, instances: map[int64]store.Instance{}, profiles: map[string]store.Profile{}, snaps: map[int64]store.InstanceSnapshot{},
		backups: map[int64]store.InstanceBackup{}}
	for id, sn := range d.snaps {
		c.snaps[id] = sn
	}
	for id, b := range d.backups {
		c.backups[id] = b
	}
	for id, r := range d.instances {
		c.instances[id] = cloneRecord(r)
	}
	for n, p := range d.profiles {
		c.profiles[n] = p
	}
	return c
}

func (d *fakeDB) CreateInstance(_ context.Context, in *store.Instance) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.instances {
		if r.Name == in.Name {
			return errdefs.Conflict("instance %q already exists", in.Name)
		}
	}
	d.next++
	in.ID = d.next
	d.instances[in.ID] = cloneRecord(*in)
	return nil
}

func (d *fakeDB) UpdateInstance(_ context.Context, in store.Instance) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.failNext; err != nil {
		d.failNext = nil
		return err
	}
	d.instances[in.ID] = cloneRecord(in)
	if d.onUpdate != nil {
		d.onUpdate()
	}
	return nil
}

func (d *fakeDB) DeleteInstance(_ context.Context, id int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.instances, id)
	delete(d.secrets, id) // ON DELETE CASCADE
	return nil
}

func (d *fakeDB) SetInstanceSecrets(_ context.Context, id int64, values map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(values) == 0 {
		return nil
	}
	if _, ok := d.instances[id]; !ok {
		return errdefs.NotFound("instance %d not found", id)
	}
	if d.secrets == nil {
		d.secrets = map[int64]map[string]string{}
	}
	if d.secrets[id] == nil {
		d.secrets[id] = map[string]string{}
	}
	for k, v := range values {
		d.secrets[id][k] = v
	}
	return nil
}

func (d *fakeDB) InstanceSecrets(_ context.Context, id int64) (map[string]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]string{}
	for k, v := range d.secrets[id] {
		out[k] = v
	}
	return out, nil
}

func (d *fakeDB) ListInstances(context.Context) ([]store.Instance, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []store.Instance
	for _, r := range d.instances {
		out = append(out, cloneRecord(r))
	}
	return out, nil
}

func (d *fakeDB) CreateProfile(_ context.Context, p *store.Profile) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.profiles[p.Name] = *p
	return nil
}

func (d *fakeDB) ListProfiles(context.Context) ([]store.Profile, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []store.Profile
	for _, p := range d.profiles {
		out = append(out, p)
	}
	return out, nil
}

func (d *fakeDB) UpdateProfile(_ context.Context, p store.Profile) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for n, old := range d.profiles {
		if old.ID == p.ID {
			delete(d.profiles, n)
		}
	}
	d.profiles[p.Name] = p
	return nil
}

func (d *fakeDB) DeleteProfile(_ context.Context, _, name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.profiles, name)
	return nil
}

// lastSpec is what the last Start ran.
func (f *fakeDriver) lastSpec() driver.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.spec
}

// fakeImages knows one image, "busybox".
type fakeImages struct{}

const fakeFP = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func (fakeImages) Resolve(_ context.Context, ref string) (string, error) {
	if ref == "busybox" || ref == fakeFP[:12] {
		return fakeFP, nil
	}
	return "", errdefs.NotFound("image %q not found", ref)
}

func (fakeImages) Image(context.Context, string) (Image, error) {
	return Image{Fingerprint: fakeFP, Type: TypeContainer, Architecture: "x86_64", Properties: map[string]string{"os": "busybox"}}, nil
}

func (fakeImages) MarkUsed(context.Context, string) error { return nil }

// fakeDriver runs nothing; it records calls and can be told to fail. Its
// per-ID "busy" check proves the service never runs two calls for one ID
// at once.
type fakeDriver struct {
	mu        sync.Mutex
	running   map[string]int
	busy      map[string]bool
	failStart error
	nextPid   int
	overlap   bool
	onExit    driver.ExitHandler
	delay     time.Duration
	limits    map[string]driver.Limits // last live update, by ID
	spec      driver.Spec              // the last Start's
	// failUpdate makes UpdateLimits of an ID fail.
	failUpdate map[string]error
	// failStop makes Stop fail, leaving the instance running.
	failStop error
	// freezeDelay is how long Freeze and Unfreeze take.
	freezeDelay time.Duration
	// freezeEntered, when set, hears each Freeze, which then waits for
	// freezeRelease to close.
	freezeEntered chan string
	freezeRelease chan struct{}
	// afterKill runs when Stop has ended PID 1, before it returns: the
	// moment a daemon killed mid-stop leaves behind.
	afterKill func(id string)
	execs     []driver.ExecSpec // every Exec, in order
}

func newFakeDriver() *fakeDriver {
	return &fakeDriver{running: map[string]int{}, busy: map[string]bool{}, nextPid: 100}
}

func (f *fakeDriver) enter(id string) func() {
	f.mu.Lock()
	if f.busy[id] {
		f.overlap = true
	}
	f.busy[id] = true
	f.mu.Unlock()
	time.Sleep(f.delay)
	return func() { f.mu.Lock(); f.busy[id] = false; f.mu.Unlock() }
}

func (f *fakeDriver) Start(_ context.Context, spec driver.Spec) (int, error) {
	defer f.enter(spec.ID)()
	f.mu.Lock()
	f.spec = spec
	f.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failStart != nil {
		return 0, f.failStart
	}
	f.nextPid++
	f.running[spec.ID] = f.nextPid
	return f.nextPid, nil
}

func (f *fakeDriver) Stop(_ context.Context, id string, _ syscall.Signal, _ time.Duration, _ bool) error {
	defer f.enter(id)()
	f.mu.Lock()
	if f.failStop != nil {
		f.mu.Unlock()
		return f.failStop
	}
	delete(f.running, id)
	hook := f.afterKill
	f.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	return nil
}

func (f *fakeDriver) UpdateLimits(_ context.Context, id string, l driver.Limits) error {
	defer f.enter(id)()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[id]; !ok {
		return driver.ErrNotRunning
	}
	if err := f.failUpdate[id]; err != nil {
		return err
	}
	if f.limits == nil {
		f.limits = map[string]driver.Limits{}
	}
	f.limits[id] = l
	return nil
}

func (f *fakeDriver) Freeze(_ context.Context, id string) error {
	defer f.enter(id)()
	time.Sleep(f.freezeDelay)
	if f.freezeEntered != nil {
		f.freezeEntered <- id
		<-f.freezeRelease
	}
	return nil
}

func (f *fakeDriver) Unfreeze(_ context.Context, id string) error {
	defer f.enter(id)()
	time.Sleep(f.freezeDelay)
	return nil
}
func (f *fakeDriver) State(_ context.Context, id string) (driver.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if pid, ok := f.running[id]; ok {
		return driver.State{Status: driver.StatusRunning, Pid: pid}, nil
	}
	return driver.State{}, nil
}
func (f *fakeDriver) Exec(_ context.Context, id string, spec driver.ExecSpec) (driver.Process, error) {
	defer f.enter(id)()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[id]; !ok {
		return nil, driver.ErrNotRunning
	}
	f.execs = append(f.execs, spec)
	return fakeProcess{}, nil
}

// fakeProcess has already exited with code 0.
type fakeProcess struct{}

func (fakeProcess) Pid() int                    { return 1 }
func (fakeProcess) Wait() (int, error)          { return 0, nil }
func (fakeProcess) Signal(syscall.Signal) error { return nil }
func (fakeProcess) Resize(int, int) error       { return nil }
func (fakeProcess) TTY() *os.File               { return nil }

func (f *fakeDriver) ConsoleLog(context.Context, string) ([]byte, error) { return nil, nil }
func (f *fakeDriver) ClearConsoleLog(context.Context, string) error      { return nil }
func (f *fakeDriver) Delete(_ context.Context, id string) error          { defer f.enter(id)(); return nil }
func (f *fakeDriver) Recover(context.Context) (map[string]driver.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]driver.State{}
	for id, pid := range f.running {
		out[id] = driver.State{Status: driver.StatusRunning, Pid: pid}
	}
	return out, nil
}

// exit simulates PID 1 of id ending by itself.
func (f *fakeDriver) exit(id string, code int) {
	f.mu.Lock()
	pid := f.running[id]
	delete(f.running, id)
	f.mu.Unlock()
	f.onExit(driver.Exit{ID: id, Pid: pid, Code: code, Known: true})
}

type fakeEvents struct {
	mu      sync.Mutex
	actions []string
}

func (e *fakeEvents) Lifecycle(_ context.Context, action string, ent event.Entity, _ map[string]any) {
	e.mu.Lock()
	e.actions = append(e.actions, action+" "+ent.Kind+" "+ent.Name)
	e.mu.Unlock()
}

func newTestService(t testing.TB) (*Service, *fakeDriver, *fakeDB, *fakeEvents) {
	t.Helper()
	db, drv, ev := newFakeDB(), newFakeDriver(), &fakeEvents{}
	s := New(Config{DB: db, Images: fakeImages{}, Storage: &fakeStorage{}, Drivers: map[Type]driver.Driver{TypeContainer: drv}, Events: ev, Architecture: "x86_64", HostMemory: 8 << 30})
	s.onlineCPUs = fourCPUs
	drv.onExit = func(e driver.Exit) { s.HandleExit(context.Background(), e) }
	if err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, drv, db, ev
}

func launch(t testing.TB, s *Service, req CreateRequest) error {
	t.Helper()
	c, err := s.Create(context.Background(), req)
	if err != nil {
		return err
	}
	return c.Run(context.Background())
}

func imageReq(name string) CreateRequest {
	return CreateRequest{Name: name, Source: Source{Type: "image", Alias: "busybox"}, Start: true}
}

func TestCreateRejectsBadInput(t *testing.T) {
	s, _, db, _ := newTestService(t)
	if err := launch(t, s, imageReq("taken")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  CreateRequest
		kind error
	}{
		{"bad name", imageReq("1bad"), errdefs.ErrInvalidArgument},
		{"duplicate", imageReq("taken"), errdefs.ErrConflict},
		{"missing image", CreateRequest{Name: "x", Source: Source{Type: "image", Alias: "nope"}}, errdefs.ErrNotFound},
		{"unknown key", func() CreateRequest {
			r := imageReq("x")
			r.Config = map[string]string{"limits.cpus": "1"}
			return r
		}(), errdefs.ErrInvalidArgument},
		{"bad memory", func() CreateRequest {
			r := imageReq("x")
			r.Config = map[string]string{"limits.memory": "lots"}
			return r
		}(), errdefs.ErrInvalidArgument},
		{"volatile key", func() CreateRequest {
			r := imageReq("x")
			r.Config = map[string]string{"volatile.base_image": "x"}
			return r
		}(), errdefs.ErrInvalidArgument},
		{"missing profile", func() CreateRequest {
			r := imageReq("x")
			r.Profiles = []string{"default", "gpu"}
			return r
		}(), errdefs.ErrNotFound},
		{"vm", func() CreateRequest {
			r := imageReq("x")
			r.Type = TypeVM
			return r
		}(), errdefs.ErrInvalidArgument},
		{"bad source type", CreateRequest{Name: "x", Source: Source{Type: "teleport"}}, errdefs.ErrInvalidArgument},
		{"foreign architecture without image", CreateRequest{Name: "x", Architecture: "s390x", Source: Source{Type: "none"}}, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := launch(t, s, tt.req)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want kind %v", err, tt.kind)
			}
		})
	}
	if n := len(db.instances); n != 1 {
		t.Errorf("database holds %d instances, want 1: bad input left something behind", n)
	}
	if names := s.Names(context.Background()); len(names) != 1 {
		t.Errorf("instances %v, want only taken", names)
	}
}

func TestLaunchFailureLeavesNothing(t *testing.T) {
	s, drv, db, _ := newTestService(t)
	drv.failStart = errors.New("runc exploded")
	if err := launch(t, s, imageReq("c1")); err == nil {
		t.Fatal("launch succeeded, want failure")
	}
	if len(db.instances) != 0 || len(s.Names(context.Background())) != 0 {
		t.Fatalf("failed launch left db=%d mem=%v", len(db.instances), s.Names(context.Background()))
	}
	// The name is free again.
	drv.failStart = nil
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
}

func TestLifecycle(t *testing.T) {
	s, drv, db, ev := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	// msg is what lxc shows the user: it must say what is wrong in words,
	// as LXD's "The instance is already stopped" does.
	steps := []struct {
		name string
		do   func() error
		want Status
		kind error
		msg  string
	}{
		{"start running", func() error { return s.Start(ctx, "c1") }, StatusRunning, errdefs.ErrConflict, `instance "c1" is already running`},
		{"unfreeze running", func() error { return s.Unfreeze(ctx, "c1") }, StatusRunning, errdefs.ErrConflict, `instance "c1" is not frozen`},
		{"freeze", func() error { return s.Freeze(ctx, "c1") }, StatusFrozen, nil, ""},
		{"freeze frozen", func() error { return s.Freeze(ctx, "c1") }, StatusFrozen, errdefs.ErrConflict, `instance "c1" is already frozen`},
		{"unfreeze", func() error { return s.Unfreeze(ctx, "c1") }, StatusRunning, nil, ""},
		{"delete running", func() error { return s.Delete(ctx, "c1") }, StatusRunning, errdefs.ErrInvalidArgument, "Instance is running"},
		{"restart", func() error { return s.Restart(ctx, "c1", StopOptions{Timeout: -1}) }, StatusRunning, nil, ""},
		{"stop", func() error { return s.Stop(ctx, "c1", StopOptions{Force: true}) }, StatusStopped, nil, ""},
		{"stop stopped", func() error { return s.Stop(ctx, "c1", StopOptions{}) }, StatusStopped, errdefs.ErrConflict, `instance "c1" is already stopped`},
		{"restart stopped", func() error { return s.Restart(ctx, "c1", StopOptions{}) }, StatusStopped, errdefs.ErrConflict, `instance "c1" is already stopped`},
		{"freeze stopped", func() error { return s.Freeze(ctx, "c1") }, StatusStopped, errdefs.ErrConflict, `instance "c1" is not running`},
		{"unfreeze stopped", func() error { return s.Unfreeze(ctx, "c1") }, StatusStopped, errdefs.ErrConflict, ""},
	}
	for _, st := range steps {
		err := st.do()
		if st.kind == nil && err != nil || st.kind != nil && !errors.Is(err, st.kind) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.kind)
		}
		if err != nil && !strings.Contains(err.Error(), st.msg) {
			t.Errorf("%s: err %q, want it to say %q", st.name, err, st.msg)
		}
		got, _ := s.Get(context.Background(), "c1")
		if got.Status != st.want {
			t.Fatalf("%s: status %s, want %s", st.name, got.Status, st.want)
		}
	}
	rec := db.instances[1]
	if rec.Config[keyLastPower] != powerStopped {
		t.Errorf("last power %q, want STOPPED", rec.Config[keyLastPower])
	}
	if err := s.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if len(db.instances) != 0 || len(drv.running) != 0 {
		t.Fatal("delete left state behind")
	}
	want := []string{"instance-created", "instance-started", "instance-paused", "instance-resumed", "instance-stopped", "instance-started", "instance-restarted", "instance-stopped", "instance-deleted"}
	if len(ev.actions) != len(want) {
		t.Fatalf("events %v, want %v", ev.actions, want)
	}
	for i, w := range want {
		if ev.actions[i] != w+" instance c1" {
			t.Errorf("event %d = %q, want %q", i, ev.actions[i], w)
		}
	}
}

func TestExitRecordsCodeAndDeletesEphemeral(t *testing.T) {
	s, drv, db, _ := newTestService(t)
	if err := launch(t, s, imageReq("app")); err != nil {
		t.Fatal(err)
	}
	eph := imageReq("eph")
	eph.Ephemeral = true
	if err := launch(t, s, eph); err != nil {
		t.Fatal(err)
	}
	drv.exit("h1", 7)
	drv.exit("h2", 0)
	got, _ := s.Get(context.Background(), "app")
	if got.Status != StatusStopped || got.Config[keyLastExitCode] != "7" {
		t.Fatalf("after exit: %s exit=%q", got.Status, got.Config[keyLastExitCode])
	}
	if _, err := s.Get(context.Background(), "eph"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("ephemeral instance still there after exit: %v", err)
	}
	if len(db.instances) != 1 {
		t.Fatalf("db has %d instances", len(db.instances))
	}
	// A late report about an old run changes nothing.
	if err := s.Start(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	s.HandleExit(context.Background(), driver.Exit{ID: "h1", Pid: 1, Code: 9, Known: true})
	if got, _ := s.Get(context.Background(), "app"); got.Status != StatusRunning {
		t.Fatalf("stale exit stopped the instance: %s", got.Status)
	}
}

func TestRecoverReattachesAndAutostarts(t *testing.T) {
	s, drv, db, _ := newTestService(t)
	for _, n := range []string{"keep", "auto", "gone", "off"} {
		req := imageReq(n)
		switch n {
		case "auto":
			req.Config = map[string]string{"boot.autostart": "true"}
			req.Start = false
		case "off":
			req.Config = map[string]string{"boot.autostart": "false"}
		}
		if err := launch(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	// "gone" and "off" vanish while the daemon is down (e.g. host reboot).
	drv.mu.Lock()
	delete(drv.running, "h3")
	delete(drv.running, "h4")
	drv.mu.Unlock()

	s2 := New(Config{DB: db, Images: fakeImages{}, Storage: &fakeStorage{}, Drivers: map[Type]driver.Driver{TypeContainer: drv}, Events: &fakeEvents{}, Architecture: "x86_64"})
	if err := s2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	toStart, err := s2.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	status := func(n string) Status { got, _ := s2.Get(context.Background(), n); return got.Status }
	if status("keep") != StatusRunning || status("gone") != StatusStopped || status("off") != StatusStopped {
		t.Fatalf("after recover: keep=%s gone=%s off=%s", status("keep"), status("gone"), status("off"))
	}
	if fmt.Sprint(toStart) != "[auto gone]" && fmt.Sprint(toStart) != "[gone auto]" {
		t.Fatalf("to start %v, want auto and gone (last state running, autostart unset)", toStart)
	}
	// A reattached instance is stoppable.
	if err := s2.Stop(context.Background(), "keep", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentOperations(t *testing.T) {
	s, drv, _, _ := newTestService(t)
	drv.delay = 2 * time.Millisecond
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- launch(t, s, imageReq(fmt.Sprintf("c%d", i)))
		}()
	}
	wg.Wait()
	// Hammer one instance from many goroutines: operations must not overlap.
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.Freeze(ctx, "c0")
			_ = s.Unfreeze(ctx, "c0")
			_ = s.Restart(ctx, "c0", StopOptions{Force: true})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if len(s.Names(context.Background())) != 20 {
		t.Fatalf("%d instances, want 20", len(s.Names(context.Background())))
	}
	if drv.overlap {
		t.Fatal("two driver calls for one instance overlapped")
	}
}

func TestUpdateETagAndReadOnlyKeys(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "c1")
	put := Put{Architecture: got.Architecture, Config: got.Config, Devices: got.Devices, Profiles: got.Profiles, Description: got.Description}
	put.Config["limits.memory"] = "256MiB"
	// The precondition sees the instance as it is, under its lock, and
	// its error leaves the instance as it was.
	stale := errdefs.PreconditionFailed("changed")
	var seen Instance
	if err := s.Update(ctx, "c1", put, func(cur Instance) error { seen = cur; return stale }); !errors.Is(err, errdefs.ErrPreconditionFailed) {
		t.Fatalf("failed precondition: %v", err)
	}
	if seen.Name != "c1" || seen.Config["limits.memory"] != "" {
		t.Fatalf("precondition saw %+v", seen)
	}
	if err := s.Update(ctx, "c1", put, func(Instance) error { return nil }); err != nil {
		t.Fatal(err)
	}
	put.Config[keyBaseImage] = "other"
	if err := s.Update(ctx, "c1", put, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("changing volatile key: %v", err)
	}
	// A PUT that leaves out volatile keys keeps them.
	if err := s.Update(ctx, "c1", Put{Config: map[string]string{}, Profiles: []string{"default"}}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(context.Background(), "c1")
	if got.Config[keyBaseImage] != fakeFP || got.Config["limits.memory"] != "" {
		t.Fatalf("config after PUT: %v", got.Config)
	}
}

func TestProfiles(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	if err := s.CreateProfile(ctx, "small", ProfilePut{Config: map[string]string{"limits.memory": "128MiB"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateProfile(ctx, "bad", ProfilePut{Config: map[string]string{"limits.memory": "huge"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad profile config: %v", err)
	}
	req := imageReq("c1")
	req.Profiles = []string{"default", "small"}
	if err := launch(t, s, req); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(context.Background(), "c1")
	if got.ExpandedConfig["limits.memory"] != "128MiB" {
		t.Fatalf("expanded config %v", got.ExpandedConfig)
	}
	if err := s.DeleteProfile(ctx, "small"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("delete used profile: %v", err)
	}
	if err := s.RenameProfile(ctx, "small", "tiny"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get(context.Background(), "c1")
	if fmt.Sprint(got.Profiles) != "[default tiny]" {
		t.Fatalf("profiles after rename %v", got.Profiles)
	}
	// LXD's kind: 403, the default profile is not the client's to remove.
	if err := s.DeleteProfile(ctx, "default"); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("delete default: %v", err)
	}
	if err := s.RenameProfile(ctx, "default", "other"); !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("rename default: %v", err)
	}
}

func TestLimitsApplyLive(t *testing.T) {
	s, drv, _, _ := newTestService(t)
	ctx := context.Background()
	if err := s.CreateProfile(ctx, "small", ProfilePut{}); err != nil {
		t.Fatal(err)
	}
	req := imageReq("c1")
	req.Profiles = []string{"default", "small"}
	if err := launch(t, s, req); err != nil {
		t.Fatal(err)
	}
	// An instance change applies at once.
	if err := s.Patch(ctx, "c1", Patch{Config: map[string]string{"limits.memory": "256MiB"}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := drv.limits["h1"].MemoryBytes; got != 256<<20 {
		t.Fatalf("live memory limit %d, want %d", got, 256<<20)
	}
	// A profile change reaches the running instances that use it.
	if err := s.UpdateProfile(ctx, "small", ProfilePut{Config: map[string]string{"limits.processes": "40"}}, nil); err != nil {
		t.Fatal(err)
	}
	if got := drv.limits["h1"]; got.Processes != 40 || got.MemoryBytes != 256<<20 {
		t.Fatalf("live limits after profile change %+v", got)
	}
	// A change that leaves limits alone does not touch the runtime.
	delete(drv.limits, "h1")
	if err := s.Patch(ctx, "c1", Patch{Config: map[string]string{"user.note": "x"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, touched := drv.limits["h1"]; touched {
		t.Fatal("limits rewritten for a change without limits")
	}
}

// TestListFullMany: a list long enough to read states in parallel gives
// every instance its own state, in name order (run with -race).
func TestListFullMany(t *testing.T) {
	s, _, _, _ := newTestService(t)
	const n = 40
	for i := range n {
		req := imageReq(fmt.Sprintf("m%02d", i))
		req.Start = i%2 == 0
		if err := launch(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	full := s.ListFull(context.Background())
	if len(full) != n {
		t.Fatalf("%d instances listed, want %d", len(full), n)
	}
	for i, f := range full {
		if want := fmt.Sprintf("m%02d", i); f.Name != want {
			t.Fatalf("entry %d is %s, want %s", i, f.Name, want)
		}
		wantStatus := StatusStopped
		if i%2 == 0 {
			wantStatus = StatusRunning
		}
		if f.State.Status != wantStatus || (wantStatus == StatusRunning) != (f.State.Pid != 0) {
			t.Errorf("%s: state %+v, want status %v", f.Name, f.State, wantStatus)
		}
	}
}
