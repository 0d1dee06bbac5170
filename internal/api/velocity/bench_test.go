package velocity

import (
	"context"
	"fmt"
	"testing"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/project"
)

// BenchmarkVMList1000 is POST /v/vm/list of a group holding 1000 VMs,
// asked by a user whose view permission is held two groups up: the whole
// handler (session, decode, audit, group resolution, a check per VM
// inherited up the tree, rendering). The VMs are stopped records in a
// real SQLite store loaded by the real core, as a daemon holds them. The
// target is 10 ms.
func BenchmarkVMList1000(b *testing.B) {
	e := newEnv(b)
	e.tree(b, nil)
	e.grant(b, "alice", auth.Permission{Object: auth.Project("top"), Entitlement: auth.CanViewInstances})
	e.addVMs(b, "leaf", 1000, map[string]string{"limits.cpu": "2", "limits.memory": "1GiB"})
	key := e.login(b, "alice")
	body := fmt.Sprintf(`{"authkey":%q,"gid":"leaf"}`, key)
	b.ReportAllocs()
	for b.Loop() {
		if rec := e.call("POST", "/v/vm/list", body); rec.Code != 200 || rec.Body.Len() < 1000*60 {
			b.Fatalf("%d %.200s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkQuotaCheck5Levels is the quota check of a VM create in the
// leaf of a five-level group tree, each level with limits on CPUs,
// memory, instances and disk, the tree holding 1000 VMs spread over its
// levels: project.Service.CheckAdd, with the instance core as the usage
// source, as the core's create calls it. The target is 1 ms.
func BenchmarkQuotaCheck5Levels(b *testing.B) {
	e := newEnv(b)
	limits := map[string]string{"limits.cpu": "100000", "limits.memory": "100TiB", "limits.instances": "100000",
		"limits.virtual-machines": "100000", "limits.disk": "1000TiB"}
	parent := ""
	for i := range 5 {
		name := fmt.Sprintf("l%d", i)
		if err := e.projects.Create(e.ctx, project.Project{Name: name, Parent: parent, Config: limits}); err != nil {
			b.Fatal(err)
		}
		parent = name
	}
	if err := e.core.ReloadProfiles(e.ctx); err != nil {
		b.Fatal(err)
	}
	for i := range 5 {
		e.addVMs(b, fmt.Sprintf("l%d", i), 200, map[string]string{"limits.cpu": "2", "limits.memory": "1GiB"})
	}
	delta := project.Usage{Instances: 1, VMs: 1, CPU: 2, Memory: 1 << 30, Disk: 8 << 30}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.projects.CheckAdd(ctx, "l4", delta); err != nil {
			b.Fatal(err)
		}
	}
}
