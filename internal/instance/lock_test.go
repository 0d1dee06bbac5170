package instance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConfigChangeDoesNotWaitForFreeze: a config change that does not
// reach the runtime takes the record lock only, so it completes while a
// freeze holds the instance's op lock; one that does (new limits on a
// running instance) is ordered after the freeze, never beside it.
func TestConfigChangeDoesNotWaitForFreeze(t *testing.T) {
	s, drv, db, _ := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	drv.freezeEntered, drv.freezeRelease = make(chan string), make(chan struct{})
	frozen := make(chan error)
	go func() { frozen <- s.Freeze(ctx, "c1") }()
	<-drv.freezeEntered // the freeze holds the op lock, in the runtime

	done := make(chan error)
	go func() {
		done <- s.Patch(ctx, "c1", Patch{Config: map[string]string{"user.note": "x", "environment.A": "b"}}, nil)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a user.* and environment.* PATCH waited for a freeze in progress")
	}
	if db.instances[1].Config["user.note"] != "x" {
		t.Fatalf("PATCH not saved: %v", db.instances[1].Config)
	}

	limits := make(chan error)
	go func() {
		limits <- s.Patch(ctx, "c1", Patch{Config: map[string]string{"limits.memory": "256MiB"}}, nil)
	}()
	close(drv.freezeRelease)
	if err := <-frozen; err != nil {
		t.Fatal(err)
	}
	if err := <-limits; err != nil {
		t.Fatal(err)
	}
	if drv.overlap {
		t.Fatal("the live limits update ran beside the freeze")
	}
	if got := drv.limits["h1"].MemoryBytes; got != 256<<20 {
		t.Fatalf("live memory limit %d", got)
	}
	if got, _ := s.Get(ctx, "c1"); got.Status != StatusFrozen || got.Config["user.note"] != "x" || got.Config["limits.memory"] != "256MiB" {
		t.Fatalf("after both: %s %v", got.Status, got.Config)
	}
}

// TestConcurrentChangesAllLand hammers one instance with config changes of
// different keys (some limits, some not) while it is frozen, thawed,
// restarted and stopped: every change lands in memory and in the database
// (none is lost to another's read-modify-write), and no two driver calls
// overlap.
func TestConcurrentChangesAllLand(t *testing.T) {
	s, drv, db, _ := newTestService(t)
	drv.delay = time.Millisecond
	ctx := context.Background()
	if err := launch(t, s, imageReq("c1")); err != nil {
		t.Fatal(err)
	}
	const writers = 16
	var wg sync.WaitGroup
	errs := make(chan error, writers*10)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				cfg := map[string]string{fmt.Sprintf("user.w%d", w): fmt.Sprint(i)}
				if w%4 == 0 {
					cfg["limits.processes"] = fmt.Sprint(100 + w*10 + i)
				}
				if err := s.Patch(ctx, "c1", Patch{Config: cfg}, nil); err != nil {
					errs <- err
				}
			}
		}()
	}
	// The lifecycle runs until the writers are done, so that writes land
	// during every step of it.
	stop := make(chan struct{})
	lifecycle := make(chan struct{})
	go func() {
		defer close(lifecycle)
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = s.Freeze(ctx, "c1")
			_ = s.Unfreeze(ctx, "c1")
			_ = s.Restart(ctx, "c1", StopOptions{Force: true})
			_ = s.Stop(ctx, "c1", StopOptions{Force: true})
			_ = s.Start(ctx, "c1")
		}
	}()
	wg.Wait()
	close(stop)
	<-lifecycle
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, _ := s.Get(ctx, "c1")
	for w := range writers {
		k := fmt.Sprintf("user.w%d", w)
		if got.Config[k] != "9" || db.instances[1].Config[k] != "9" {
			t.Errorf("%s: memory %q, database %q; want the last write, 9", k, got.Config[k], db.instances[1].Config[k])
		}
	}
	if got.Config[keyLastPower] != powerRunning || db.instances[1].Config[keyLastPower] != powerRunning {
		t.Errorf("power state lost: %v", got.Config)
	}
	if drv.overlap {
		t.Fatal("two driver calls for one instance overlapped")
	}
}
