package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hangar-dev/hangar/internal/store"
)

func TestServerConfig(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	steps := []map[string]string{
		nil,
		{"core.https_address": ":8443", "images.auto_update_interval": "6"},
		{"core.https_address": "[::]:8443"}, // a PUT: the other key goes
		{},
	}
	for i, cfg := range steps {
		if err := s.SetServerConfig(ctx, cfg); err != nil {
			t.Fatalf("step %d: SetServerConfig: %v", i, err)
		}
		got, err := s.GetServerConfig(ctx)
		if err != nil {
			t.Fatalf("step %d: GetServerConfig: %v", i, err)
		}
		if got == nil {
			t.Fatalf("step %d: nil config", i)
		}
		diff(t, fmt.Sprintf("step %d", i), got, cfg)
	}
}

func TestReopenPersists(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hangar.db")
	s, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	p := store.Profile{Name: "web", Config: map[string]string{"a": "b"}}
	c := newInstance("c1")
	c.Profiles = []string{"web"}
	img := newImage(fp("ab"))
	al := store.Alias{Project: "default", Name: "alpine", Target: img.Fingerprint}
	cfg := map[string]string{"k": "v"}
	err = errors.Join(
		s.CreateProfile(ctx, &p),
		s.CreateInstance(ctx, &c),
		s.CreateImage(ctx, img, "default"),
		s.CreateAlias(ctx, al),
		s.SetServerConfig(ctx, cfg),
		s.Close(),
	)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}

	s, err = store.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	gotC, err1 := s.GetInstance(ctx, "c1")
	gotP, err2 := s.GetProfile(ctx, "default", "web")
	gotI, err3 := s.GetImage(ctx, "default", img.Fingerprint)
	gotA, err4 := s.GetAlias(ctx, "default", "alpine")
	gotCfg, err5 := s.GetServerConfig(ctx)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		t.Fatal(err)
	}
	diff(t, "instance", gotC, c)
	diff(t, "profile", gotP, p)
	diff(t, "image", gotI, img)
	diff(t, "alias", gotA, al)
	diff(t, "config", gotCfg, cfg)
}

func TestOpenRejectsBadPath(t *testing.T) {
	for _, p := range []string{"", "file:x.db", filepath.Join(t.TempDir(), "a?b.db"), filepath.Join(t.TempDir(), "missing", "x.db")} {
		if s, err := store.Open(context.Background(), p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestAtomic(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	boom := errors.New("boom")

	// All or nothing: the failure after two writes undoes both.
	err := s.Atomic(ctx, func(q *store.Queries) error {
		if err := q.CreateProfile(ctx, &store.Profile{Name: "p"}); err != nil {
			return err
		}
		c := newInstance("c1")
		c.Profiles = []string{"p"}
		if err := q.CreateInstance(ctx, &c); err != nil {
			return err
		}
		// Reads inside see the transaction's own writes.
		if _, err := q.GetInstance(ctx, "c1"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Atomic = %v, want boom", err)
	}
	if _, err := s.GetProfile(ctx, "default", "p"); !errors.Is(err, errNotFound) {
		t.Errorf("profile survived rollback: %v", err)
	}
	if list, _ := s.ListInstances(ctx); len(list) != 0 {
		t.Errorf("instances survived rollback: %+v", list)
	}

	// A method that fails inside Atomic undoes only its own writes, so a
	// caller that handles the error and goes on commits no half-instance.
	err = s.Atomic(ctx, func(q *store.Queries) error {
		bad := newInstance("half")
		bad.Profiles = []string{"default", "ghost"}
		if err := q.CreateInstance(ctx, &bad); !errors.Is(err, errNotFound) {
			return fmt.Errorf("CreateInstance = %v, want not found", err)
		}
		good := newInstance("whole")
		return q.CreateInstance(ctx, &good)
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "whole" {
		t.Errorf("instances = %+v, want only whole", list)
	}

	// Nested Atomic is a savepoint: its failure leaves the outer work.
	err = s.Atomic(ctx, func(q *store.Queries) error {
		if err := q.SetServerConfig(ctx, map[string]string{"outer": "1"}); err != nil {
			return err
		}
		if err := q.Atomic(ctx, func(q *store.Queries) error {
			if err := q.SetServerConfig(ctx, map[string]string{"inner": "1"}); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			return fmt.Errorf("nested Atomic = %v, want boom", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.GetServerConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "config after nested rollback", cfg, map[string]string{"outer": "1"})
}

// Writers in one process queue for the one writer connection; writers in
// two (two Stores on one file stand in for two processes) wait on
// busy_timeout with IMMEDIATE transactions. Neither may surface SQLITE_BUSY.
func TestConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	s1, path := openStore(t)
	s2, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	const goroutines, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each*2)
	for g := range goroutines {
		s := s1
		if g%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			for i := range each {
				c := newInstance(fmt.Sprintf("g%d-%d", g, i))
				if err := s.CreateInstance(ctx, &c); err != nil {
					errs <- err
					continue
				}
				c.Description = "updated"
				if err := s.UpdateInstance(ctx, c); err != nil {
					errs <- err
				}
				if i%5 == 0 { // reads meanwhile, on the reader pool
					if _, err := s.ListInstances(ctx); err != nil {
						errs <- err
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	list, err := s1.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != goroutines*each {
		t.Errorf("%d instances, want %d", len(list), goroutines*each)
	}
	seen := map[int64]bool{}
	for _, c := range list {
		if seen[c.ID] {
			t.Errorf("duplicate ID %d", c.ID)
		}
		seen[c.ID] = true
		if c.Description != "updated" {
			t.Errorf("%s: description %q", c.Name, c.Description)
		}
	}
}
