package instance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/snapshotpolicy"
)

func TestSnapshotScheduleValidation(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	ok := SnapshotSchedule{Interval: time.Minute, MaxCount: 1}
	for _, tc := range []struct {
		name string
		edit func(*SnapshotSchedule)
		want string
	}{
		{"interval under a minute", func(s *SnapshotSchedule) { s.Interval = 59 * time.Second }, "interval"},
		{"no retention", func(s *SnapshotSchedule) { s.MaxCount = 0 }, "retention"},
		{"negative count", func(s *SnapshotSchedule) { s.MaxCount = -1 }, "max_count"},
		{"negative age", func(s *SnapshotSchedule) { s.MaxAge = -time.Hour }, "max_age"},
		{"age under a second", func(s *SnapshotSchedule) { s.MaxAge = time.Millisecond }, "max_age"},
		{"prefix too long", func(s *SnapshotSchedule) { s.NamePrefix = strings.Repeat("a", 48) }, "name_prefix"},
		{"prefix with a slash", func(s *SnapshotSchedule) { s.NamePrefix = "a/b" }, "name_prefix"},
		{"prefix with a template", func(s *SnapshotSchedule) { s.NamePrefix = "{{ x }}" }, "name_prefix"},
		{"prefix with %d", func(s *SnapshotSchedule) { s.NamePrefix = "a%d" }, "name_prefix"},
		{"empty metadata key", func(s *SnapshotSchedule) { s.Metadata = map[string]string{"": "x"} }, "metadata"},
	} {
		sch := ok
		tc.edit(&sch)
		if _, err := s.SetSnapshotSchedule(ctx, "c1", sch); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want invalid naming %q", tc.name, err, tc.want)
		}
	}
	if _, err := s.SnapshotSchedule(ctx, "c1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("refused schedules left one: %v", err)
	}
	if _, err := s.SetSnapshotSchedule(ctx, "nope", ok); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("missing instance: %v", err)
	}
	if err := s.DeleteSnapshotSchedule(ctx, "c1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("delete of no schedule: %v", err)
	}
	// Limits are inclusive.
	edge := SnapshotSchedule{Interval: time.Minute, MaxAge: time.Second, NamePrefix: strings.Repeat("a", MaxNamePrefix)}
	if _, err := s.SetSnapshotSchedule(ctx, "c1", edge); err != nil {
		t.Errorf("schedule at the limits: %v", err)
	}
}

// TestSnapshotScheduleRuns drives a schedule with the tick's clock: runs
// when due, names from the prefix, metadata on each snapshot, max_count
// deleting only the oldest scheduled snapshots, the cadence kept by a
// retention change and reset by an interval change, and delete.
func TestSnapshotScheduleRuns(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	manual, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{Name: "manual", Metadata: map[string]string{"who": "me"}})
	if err != nil {
		t.Fatal(err)
	}
	if manual.Kind != SnapshotKindStopped || manual.Metadata["who"] != "me" {
		t.Fatalf("manual snapshot: kind %q metadata %v", manual.Kind, manual.Metadata)
	}
	sch, err := s.SetSnapshotSchedule(ctx, "c1", SnapshotSchedule{Interval: 5 * time.Minute, MaxCount: 2,
		NamePrefix: "nightly", Metadata: map[string]string{"tier": "gold"}})
	if err != nil {
		t.Fatal(err)
	}
	if sch.Interval != 5*time.Minute || sch.MaxCount != 2 || sch.NamePrefix != "nightly" || sch.Metadata["tier"] != "gold" ||
		sch.CreatedAt.IsZero() || sch.NextRunAt.Sub(sch.CreatedAt) != 5*time.Minute || !sch.LastRunAt.IsZero() {
		t.Fatalf("set = %+v", sch)
	}
	if got, err := s.SnapshotSchedule(ctx, "c1"); err != nil || got.NextRunAt != sch.NextRunAt || got.NamePrefix != "nightly" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	tick := func(at time.Time) {
		m := at.Truncate(time.Minute)
		s.SnapshotTick(ctx, snapshotpolicy.Tick{Minute: m, Since: m.Add(-time.Minute)})
	}
	scheduled := func() []Snapshot {
		list, err := s.Snapshots(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		var out []Snapshot
		for _, sn := range list {
			if sn.Name != "manual" {
				out = append(out, sn)
			}
		}
		return out
	}
	// Not yet due.
	tick(sch.NextRunAt.Add(-time.Minute))
	if n := len(scheduled()); n != 0 {
		t.Fatalf("before next_run_at: %d snapshots", n)
	}
	at := sch.NextRunAt.Add(time.Minute)
	var names []string
	for i := 0; i < 3; i++ {
		tick(at)
		got, err := s.SnapshotSchedule(ctx, "c1")
		if err != nil || got.LastError != "" || got.LastSnapshot == "" || !got.NextRunAt.After(at) || got.NextRunAt.Sub(at) > 5*time.Minute {
			t.Fatalf("run %d: %+v, %v", i, got, err)
		}
		names = append(names, got.LastSnapshot)
		// The first tick at or after next_run_at runs it.
		at = got.NextRunAt.Add(time.Minute)
	}
	list := scheduled()
	if len(list) != 2 || list[0].Name != names[1] || list[1].Name != names[2] {
		t.Fatalf("after 3 runs with max_count 2: %+v (runs made %v)", list, names)
	}
	for _, sn := range list {
		if !strings.HasPrefix(sn.Name, "nightly-") || sn.Metadata["tier"] != "gold" || sn.Kind != SnapshotKindStopped {
			t.Errorf("scheduled snapshot %s: metadata %v kind %s", sn.Name, sn.Metadata, sn.Kind)
		}
	}
	if _, err := s.GetSnapshot(ctx, "c1", "manual"); err != nil {
		t.Errorf("max_count deleted the manual snapshot: %v", err)
	}

	// Retention, prefix and metadata changes keep the cadence...
	before, _ := s.SnapshotSchedule(ctx, "c1")
	upd, err := s.SetSnapshotSchedule(ctx, "c1", SnapshotSchedule{Interval: 5 * time.Minute, MaxCount: 1, MaxAge: time.Hour, NamePrefix: "n2"})
	if err != nil || !upd.NextRunAt.Equal(before.NextRunAt) || !upd.CreatedAt.Equal(before.CreatedAt) || upd.LastSnapshot != before.LastSnapshot ||
		upd.MaxAge != time.Hour || len(upd.Metadata) != 0 {
		t.Fatalf("retention change: %+v, %v; before %+v", upd, err, before)
	}
	// ...and an interval change starts it over.
	upd, err = s.SetSnapshotSchedule(ctx, "c1", SnapshotSchedule{Interval: 7 * time.Minute, MaxCount: 1})
	if err != nil || upd.NextRunAt.Equal(before.NextRunAt) || upd.NextRunAt.Sub(upd.UpdatedAt) != 7*time.Minute {
		t.Fatalf("interval change: %+v, %v", upd, err)
	}
	tick(upd.NextRunAt.Add(time.Minute))
	if list := scheduled(); len(list) != 1 {
		t.Fatalf("max_count 1: %+v", list)
	}
	// The LXD view: the same schedule, in LXD's keys.
	in, err := s.Get(ctx, "c1")
	if err != nil || in.Config["snapshots.schedule"] != "@every 7m0s" || in.Config["snapshots.schedule.max_count"] != "1" {
		t.Fatalf("config: %v, %v", in.Config, err)
	}
	if err := s.DeleteSnapshotSchedule(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SnapshotSchedule(ctx, "c1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	in, _ = s.Get(ctx, "c1")
	for k := range in.Config {
		if strings.Contains(k, "snapshots.") {
			t.Errorf("delete left %s", k)
		}
	}
	if list := scheduled(); len(list) != 1 {
		t.Errorf("delete removed the snapshots taken: %+v", list)
	}
}

// A stopped instance is snapshotted by a schedule set here, and a
// restore never carries a snapshot's metadata into the instance.
func TestSnapshotScheduleStoppedAndRestore(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	req := imageReq("c1")
	req.Start = false
	if err := launch(t, s, req); err != nil {
		t.Fatal(err)
	}
	sch, err := s.SetSnapshotSchedule(ctx, "c1", SnapshotSchedule{Interval: time.Minute, MaxAge: 24 * time.Hour, Metadata: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	m := sch.NextRunAt.Truncate(time.Minute).Add(time.Minute)
	s.SnapshotTick(ctx, snapshotpolicy.Tick{Minute: m, Since: m.Add(-time.Minute)})
	list, err := s.Snapshots(ctx, "c1")
	if err != nil || len(list) != 1 {
		t.Fatalf("snapshots %+v, %v", list, err)
	}
	sn := list[0]
	if sn.Kind != SnapshotKindStopped || sn.Metadata["k"] != "v" || sn.ExpiresAt.Sub(sn.CreatedAt) != 24*time.Hour {
		t.Fatalf("scheduled snapshot of a stopped instance: %+v", sn)
	}
	if err := s.RestoreSnapshot(ctx, "c1", sn.Name, false); err != nil {
		t.Fatal(err)
	}
	in, _ := s.Get(ctx, "c1")
	for k := range in.Config {
		if strings.HasPrefix(k, prefixSnapshotMeta) || k == keySnapshotScheduled {
			t.Errorf("restore put the snapshot's %s into the instance", k)
		}
	}
}

func TestSnapshotMetadataValidation(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	for name, meta := range map[string]map[string]string{
		"empty key":  {"": "v"},
		"long key":   {strings.Repeat("k", maxMetadataKey+1): "v"},
		"long value": {"k": strings.Repeat("v", maxMetadataValue+1)},
		"NUL":        {"k": "a\x00b"},
		"bad UTF-8":  {"k": "\xff"},
		"too many":   manyMeta(maxMetadata + 1),
	} {
		if _, err := s.CreateSnapshot(ctx, "c1", SnapshotRequest{Metadata: meta}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
	}
}

func manyMeta(n int) map[string]string {
	m := map[string]string{}
	for i := 0; i < n; i++ {
		m[strings.Repeat("k", i+1)] = "v"
	}
	return m
}
