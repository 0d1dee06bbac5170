package instance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
)

// fakeQuota limits a project's instances and memory, counting usage as the
// project domain does: from the core's ProjectUsage.
type fakeQuota struct {
	s                *Service
	instances, memMB int64
}

func (q fakeQuota) CheckAdd(ctx context.Context, p string, delta project.Usage) error {
	u, err := q.s.ProjectUsage(ctx, p)
	if err != nil {
		return err
	}
	if delta.Instances > 0 && u.Instances+delta.Instances > q.instances {
		return errdefs.Forbidden("project %q: limits.instances=%d exceeded", p, q.instances)
	}
	if delta.Memory > 0 && u.Memory+delta.Memory > q.memMB<<20 {
		return errdefs.Forbidden("project %q: limits.memory exceeded", p)
	}
	return nil
}

// Concurrent creates at the last free slot: exactly the limit's worth
// succeed, the rest are refused before anything is made, and a refused
// or failed create leaves no reservation behind.
func TestQuotaConcurrentCreates(t *testing.T) {
	s, _, _, _ := newTestService(t)
	s.cfg.Quota = fakeQuota{s: s, instances: 3, memMB: 1 << 20}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.Create(ctx, imageReq(fmt.Sprintf("c%d", i)))
			if err == nil {
				err = c.Run(ctx)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, errdefs.ErrForbidden):
			refused++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 3 || refused != 7 {
		t.Errorf("%d created, %d refused; want 3 and 7", ok, refused)
	}
	if n := len(s.Names(ctx)); n != 3 {
		t.Errorf("%d instances exist, want 3", n)
	}
	u, _ := s.ProjectUsage(ctx, project.Default)
	if u.Instances != 3 || u.Containers != 3 {
		t.Errorf("usage %+v after the creates, want 3 instances (no reservation left)", u)
	}
	// A creation holds its reservation until it runs or is aborted.
	s.cfg.Quota = fakeQuota{s: s, instances: 4, memMB: 1 << 20}
	c, err := s.Create(ctx, imageReq("pending"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, imageReq("over")); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("a create past a pending one at the limit: %v, want refused", err)
	}
	c.Abort()
	if u, _ := s.ProjectUsage(ctx, project.Default); u.Instances != 3 {
		t.Errorf("usage %+v after an abort, want 3 instances", u)
	}
}

// What an instance takes from its project, and the keys a limited project
// requires of it.
func TestQuotaUsageAndRules(t *testing.T) {
	s, _, _, _ := newTestService(t)
	tests := []struct {
		name string
		typ  Type
		cfg  map[string]string
		devs map[string]map[string]string
		want project.Usage
	}{
		{"bare container", TypeContainer, nil, nil, project.Usage{Instances: 1, Containers: 1}},
		{"limited VM", TypeVM, map[string]string{"limits.cpu": "2", "limits.memory": "512MiB", "limits.processes": "100"},
			map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default", "size": "1GiB"}},
			project.Usage{Instances: 1, VMs: 1, CPU: 2, Memory: 512 << 20, Processes: 100, Disk: 1 << 30}},
		{"CPU list and memory share", TypeContainer, map[string]string{"limits.cpu": "0-1,3", "limits.memory": "50%"}, nil,
			project.Usage{Instances: 1, Containers: 1, CPU: 3, Memory: 4 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.usageOf(tt.typ, tt.cfg, tt.devs); got != tt.want {
				t.Errorf("usage %+v, want %+v", got, tt.want)
			}
		})
	}

	limited := project.WithProject(context.Background(), project.Project{Name: "p", Config: map[string]string{"limits.memory": "1GiB", "limits.disk": "10GiB"}})
	rules := []struct {
		name string
		cfg  map[string]string
		devs map[string]map[string]string
		want string
	}{
		{"memory unset", nil, nil, "limits.memory must be set"},
		{"disk without a size", map[string]string{"limits.memory": "1GiB"},
			map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}}, "root disk needs a size"},
		{"both set", map[string]string{"limits.memory": "1GiB"},
			map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default", "size": "1GiB"}}, ""},
	}
	for _, tt := range rules {
		t.Run(tt.name, func(t *testing.T) {
			err := s.checkProjectRules(limited, TypeContainer, tt.cfg, tt.devs)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.want != "" && (err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an invalid-argument error saying %q", err, tt.want)
			}
		})
	}
}

// A profile change is held to the limits of the projects of the instances
// using it: growing them all past a limit is refused and changes nothing;
// shrinking always works.
func TestQuotaProfileChange(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	if err := s.CreateProfile(ctx, "small", ProfilePut{Config: map[string]string{"limits.memory": "256MiB"}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b"} {
		req := imageReq(n)
		req.Profiles = []string{"default", "small"}
		if err := launch(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	s.cfg.Quota = fakeQuota{s: s, instances: 10, memMB: 600}
	err := s.UpdateProfile(ctx, "small", ProfilePut{Config: map[string]string{"limits.memory": "512MiB"}}, nil)
	if !errors.Is(err, errdefs.ErrForbidden) {
		t.Fatalf("growing two instances to 1 GiB under a 600 MiB limit: %v, want refused", err)
	}
	if p, _ := s.Profile(ctx, "small"); p.Config["limits.memory"] != "256MiB" {
		t.Errorf("profile after the refusal: %v", p.Config)
	}
	if err := s.UpdateProfile(ctx, "small", ProfilePut{Config: map[string]string{"limits.memory": "128MiB"}}, nil); err != nil {
		t.Errorf("shrinking: %v", err)
	}
}
