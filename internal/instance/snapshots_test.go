package instance

import (
	"context"
	"errors"
	"sort"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
	"github.com/hangar-dev/hangar/internal/storage"
	"github.com/hangar-dev/hangar/internal/store"
)

func (d *fakeDB) CreateInstanceSnapshot(_ context.Context, sn *store.InstanceSnapshot) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.snaps {
		if o.InstanceID == sn.InstanceID && o.Name == sn.Name {
			return errdefs.Conflict("snapshot %q already exists", sn.Name)
		}
	}
	d.next++
	sn.ID = d.next
	d.snaps[sn.ID] = *sn
	return nil
}

func (d *fakeDB) ListInstanceSnapshots(_ context.Context, id int64) ([]store.InstanceSnapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []store.InstanceSnapshot{}
	for _, sn := range d.snaps {
		if id == 0 || sn.InstanceID == id {
			out = append(out, sn)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (d *fakeDB) GetInstanceSnapshot(_ context.Context, id int64, name string) (store.InstanceSnapshot, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sn := range d.snaps {
		if sn.InstanceID == id && sn.Name == name {
			return sn, nil
		}
	}
	return store.InstanceSnapshot{}, errdefs.NotFound("snapshot %q not found", name)
}

func (d *fakeDB) UpdateInstanceSnapshot(_ context.Context, sn store.InstanceSnapshot) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.snaps {
		if o.ID != sn.ID && o.InstanceID == sn.InstanceID && o.Name == sn.Name {
			return errdefs.Conflict("snapshot %q already exists", sn.Name)
		}
	}
	d.snaps[sn.ID] = sn
	return nil
}

func (d *fakeDB) DeleteInstanceSnapshot(_ context.Context, id int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.snaps, id)
	return nil
}

// The fake storage keeps root snapshots as names per instance; a restore
// records which snapshot each root came back from.
func (f *fakeStorage) SnapshotRoot(_ context.Context, id int64, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.snaps == nil {
		f.snaps = map[int64][]string{}
	}
	for _, n := range f.snaps[id] {
		if n == name {
			return errdefs.Conflict("snapshot %q exists", name)
		}
	}
	f.snaps[id] = append(f.snaps[id], name)
	return nil
}

func (f *fakeStorage) RootSnapshots(_ context.Context, id int64) ([]storage.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.roots[id]; !ok {
		return nil, errdefs.NotFound("no root")
	}
	out := []storage.Snapshot{}
	for _, n := range f.snaps[id] {
		out = append(out, storage.Snapshot{Name: n})
	}
	return out, nil
}

func (f *fakeStorage) DeleteRootSnapshot(_ context.Context, id int64, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kept := f.snaps[id][:0]
	for _, n := range f.snaps[id] {
		if n != name {
			kept = append(kept, n)
		}
	}
	f.snaps[id] = kept
	return nil
}

func (f *fakeStorage) RenameRootSnapshot(_ context.Context, id int64, name, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, n := range f.snaps[id] {
		if n == name {
			f.snaps[id][i] = newName
			return nil
		}
	}
	return errdefs.NotFound("snapshot %q not found", name)
}

func (f *fakeStorage) RestoreRoot(_ context.Context, id int64, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.snaps[id] {
		if n == name {
			if f.restored == nil {
				f.restored = map[int64]string{}
			}
			f.restored[id] = name
			return nil
		}
	}
	return errdefs.NotFound("snapshot %q not found", name)
}

func (f *fakeStorage) CopyRoot(ctx context.Context, req storage.RootRequest, srcID int64, srcSnap string) error {
	f.mu.Lock()
	_, ok := f.roots[srcID]
	before := f.beforeCopy
	f.mu.Unlock()
	if before != nil {
		before()
	}
	if !ok {
		return errdefs.NotFound("no root")
	}
	return f.CreateRoot(ctx, req)
}

func (f *fakeStorage) ReadRoot(_ context.Context, id int64, snap string, fn func(storage.RootView) error) error {
	return fn(storage.RootView{Dir: "/roots"})
}

func TestSnapshotLifecycle(t *testing.T) {
	s, drv, db, ev := newTestService(t)
	ctx := context.Background()
	st := s.cfg.Storage.(*fakeStorage)
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	rec, _ := db.instanceByName("c1")
	// Names from the default pattern: the lowest free number.
	for _, want := range []string{"snap0", "snap1"} {
		sn, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{})
		if err != nil || sn.Name != want || sn.Instance != "c1" || sn.ExpandedConfig == nil {
			t.Fatalf("snapshot = %+v, %v; want %s", sn, err, want)
		}
	}
	bad := []struct {
		name string
		req  SnapshotRequest
		kind error
	}{
		{"taken", SnapshotRequest{Name: "snap0"}, errdefs.ErrConflict},
		{"slash", SnapshotRequest{Name: "a/b"}, errdefs.ErrInvalidArgument},
		{"space", SnapshotRequest{Name: "a b"}, errdefs.ErrInvalidArgument},
		{"stateful container", SnapshotRequest{Name: "st", Stateful: true}, errdefs.ErrInvalidArgument},
	}
	for _, tc := range bad {
		if _, err := s.CreateSnapshot(ctx, "c1", tc.req); !errors.Is(err, tc.kind) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.kind)
		}
	}
	if _, err := s.CreateSnapshot(ctx, "nope", SnapshotRequest{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("snapshot of a missing instance: %v", err)
	}
	// snapshots.expiry applies unless the request says otherwise.
	if err := s.Patch(ctx, "c1", Patch{Config: map[string]string{"snapshots.expiry": "2d"}}, nil); err != nil {
		t.Fatal(err)
	}
	sn, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{Name: "exp"})
	if err != nil || sn.ExpiresAt.Sub(sn.CreatedAt) != 48*time.Hour {
		t.Fatalf("expiry: %+v %v", sn, err)
	}
	never := time.Time{}
	if sn, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{Name: "keep", ExpiresAt: &never}); err != nil || !sn.ExpiresAt.IsZero() {
		t.Fatalf("explicit no expiry: %+v %v", sn, err)
	}
	if err := s.RenameSnapshot(ctx, "c1", "snap1", "snap0"); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("rename onto a taken name: %v", err)
	}
	if err := s.RenameSnapshot(ctx, "c1", "snap1", "before"); err != nil {
		t.Fatal(err)
	}
	if got := st.snaps[rec.ID]; len(got) != 4 || got[1] != "before" {
		t.Fatalf("root snapshots after rename: %v", got)
	}
	// A restore of a running instance stops it, restores the root and
	// the config, and starts it again.
	if err := s.Patch(ctx, "c1", Patch{Config: map[string]string{"user.later": "x"}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, "c1", Put{Restore: "before"}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "c1")
	if got.Status != StatusRunning || got.Config["user.later"] != "" || got.Config["snapshots.expiry"] != "" || st.restored[rec.ID] != "before" {
		t.Fatalf("after restore: status %s config %v restored %q", got.Status, got.Config, st.restored[rec.ID])
	}
	if got.Config[keyUUID] != rec.Config[keyUUID] {
		t.Errorf("restore changed the instance's identity")
	}
	drv.mu.Lock()
	starts := drv.nextPid
	drv.mu.Unlock()
	if starts != 102 {
		t.Errorf("last pid %d, want 102 (launch, restart after restore)", starts)
	}
	if err := s.DeleteSnapshot(ctx, "c1", "before"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSnapshot(ctx, "c1", "before"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	list, err := s.Snapshots(ctx, "c1")
	if err != nil || len(list) != 3 {
		t.Fatalf("snapshots: %+v %v", list, err)
	}
	ev.mu.Lock()
	seen := map[string]bool{}
	for _, a := range ev.actions {
		seen[a] = true
	}
	ev.mu.Unlock()
	if !seen["instance-snapshot-created instance-snapshot c1/snap0"] || !seen["instance-snapshot-renamed instance-snapshot c1/before"] || !seen["instance-restored instance c1"] {
		t.Errorf("events: %v", ev.actions)
	}
}

// TestSnapshotReconcile: a record without its root snapshot (a kill
// between the two writes) and a root snapshot without its record are
// both removed at load.
func TestSnapshotReconcile(t *testing.T) {
	s, _, db, _ := newTestService(t)
	ctx := context.Background()
	st := s.cfg.Storage.(*fakeStorage)
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{Name: "whole"}); err != nil {
		t.Fatal(err)
	}
	rec, _ := db.instanceByName("c1")
	orphanRow := store.InstanceSnapshot{InstanceID: rec.ID, Name: "row-only", CreatedAt: nowUTC()}
	if err := db.CreateInstanceSnapshot(ctx, &orphanRow); err != nil {
		t.Fatal(err)
	}
	if err := st.SnapshotRoot(ctx, rec.ID, "volume-only"); err != nil {
		t.Fatal(err)
	}
	s.reconcileSnapshots(ctx)
	list, err := s.Snapshots(ctx, "c1")
	if err != nil || len(list) != 1 || list[0].Name != "whole" {
		t.Fatalf("snapshots after reconcile: %+v %v", list, err)
	}
	if got := st.snaps[rec.ID]; len(got) != 1 || got[0] != "whole" {
		t.Fatalf("root snapshots after reconcile: %v", got)
	}
}

func (d *fakeDB) instanceByName(name string) (store.Instance, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.instances {
		if r.Name == name {
			return cloneRecord(r), true
		}
	}
	return store.Instance{}, false
}

func (f *fakeStorage) CopyRootSnapshot(ctx context.Context, dstID, srcID int64, name string) error {
	return f.SnapshotRoot(ctx, dstID, name)
}

// TestSnapshotTick: a due schedule snapshots running instances (stopped
// ones only with snapshots.schedule.stopped), and snapshots whose expiry
// passed go.
func TestSnapshotTick(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	every := map[string]string{keySnapshotsSchedule: "* * * * *"}
	for _, tc := range []struct {
		name   string
		start  bool
		config map[string]string
	}{
		{"running", true, every},
		{"stopped", false, every},
		{"stopped-too", false, map[string]string{keySnapshotsSchedule: "* * * * *", keySnapshotsScheduleStopped: "true"}},
		{"unscheduled", true, nil},
	} {
		req := imageReq(tc.name)
		req.Start, req.Config = tc.start, tc.config
		if err := launch(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	past := nowUTC().Add(-time.Minute)
	if _, err := s.CreateSnapshot(ctx, "unscheduled", SnapshotRequest{Name: "old", ExpiresAt: &past}); err != nil {
		t.Fatal(err)
	}
	minute := nowUTC().Truncate(time.Minute)
	s.SnapshotTick(ctx, snapshotpolicy.Tick{Minute: minute, Since: minute.Add(-time.Minute)})
	want := map[string]int{"running": 1, "stopped": 0, "stopped-too": 1, "unscheduled": 0}
	for name, n := range want {
		list, err := s.Snapshots(ctx, name)
		if err != nil || len(list) != n {
			t.Errorf("%s: snapshots %+v, %v; want %d", name, list, err, n)
		}
	}
}
