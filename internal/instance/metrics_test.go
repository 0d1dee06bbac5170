package instance

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/project"
)

// Running lists every project's running instances, by project and name,
// and nothing stopped; a driver that cannot read figures gives none.
func TestRunning(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	p2 := project.WithProject(ctx, project.Project{Name: "p2"})
	for _, c := range []struct {
		ctx  context.Context
		name string
		run  bool
	}{{ctx, "zeta", true}, {ctx, "alpha", true}, {ctx, "stopped", false}, {p2, "beta", true}} {
		req := imageReq(c.name)
		req.Start = c.run
		cr, err := s.Create(c.ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := cr.Run(c.ctx); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, r := range s.Running(ctx) {
		got = append(got, r.Project+"/"+r.Name+"/"+string(r.Type))
		if r.runtimeID == "" {
			t.Errorf("%s has no runtime id", r.Name)
		}
	}
	want := []string{"default/alpha/container", "default/zeta/container", "p2/beta/container"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Running (-want +got):\n%s", diff)
	}
	// The fake driver reads no figures: none, and no error.
	m, err := s.Metrics(ctx, s.Running(ctx)[0])
	if err != nil || m.Processes != -1 || m.Memory != nil {
		t.Errorf("Metrics = %+v, %v; want none", m, err)
	}
	if err := s.Stop(ctx, "zeta", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Running(ctx)); n != 2 {
		t.Errorf("%d running after a stop, want 2", n)
	}
}
