package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/api"
)

// TestProjectsLXC manages projects with the real lxc (LXD 5.0) and the
// hangar CLI: create, list, show, set, switch, info, rename, delete,
// nesting, and the bad input of issue 14.
func TestProjectsLXC(t *testing.T) {
	requireLXC(t)
	t.Setenv("HANGAR_CONF", t.TempDir()) // hangar project switch writes here
	d := startDaemon(t, "")

	if out := d.mustLXC("project", "create", "p1", "-c", "limits.instances=3"); out != "Project p1 created\n" {
		t.Errorf("lxc project create printed %q", out)
	}
	var shown api.Project
	if err := yaml.Unmarshal([]byte(d.mustLXC("project", "show", "p1")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Config["limits.instances"] != "3" || shown.Config["features.profiles"] != "true" || shown.Config["features.images"] != "true" ||
		shown.Config["features.storage.volumes"] != "true" || !slices.Equal(shown.UsedBy, []string{"/1.0/profiles/default?project=p1"}) {
		t.Errorf("lxc project show p1: %+v", shown)
	}

	d.mustLXC("project", "set", "p1", "limits.containers=2", "limits.memory=1GiB")
	if got := d.mustLXC("project", "get", "p1", "limits.containers"); got != "2\n" {
		t.Errorf("lxc project get = %q", got)
	}
	d.mustLXC("project", "unset", "p1", "limits.memory")

	// switch: lxc's config remembers it, and every request carries it.
	d.mustLXC("project", "switch", "p1")
	rows := tableRows(d.mustLXC("project", "list"))
	if !slices.ContainsFunc(rows, func(r []string) bool { return len(r) > 0 && r[0] == "p1 (current)" }) {
		t.Errorf("lxc project list after switch: %q", rows)
	}
	d.mustLXC("list")
	d.mustLXC("project", "switch", "default")

	// lxc project info: every resource, with its limit.
	info := d.mustLXC("project", "info", "p1")
	for _, want := range []string{"INSTANCES", "| 3 ", "CONTAINERS", "VIRTUAL-MACHINES", "UNLIMITED", "MEMORY", "DISK", "CPU", "PROCESSES", "NETWORKS"} {
		if !strings.Contains(info, want) {
			t.Errorf("lxc project info lacks %q:\n%s", want, info)
		}
	}

	// Nesting through hangar's CLI; lxc sees the child as any project.
	d.must("project", "create", "kid", "--parent", "p1", "limits.cpu=2")
	if out := d.must("project", "show", "kid"); !strings.Contains(out, "parent: p1") {
		t.Errorf("hangar project show kid:\n%s", out)
	}
	d.mustLXC("project", "set", "kid", "limits.instances=5") // lxc's PUT keeps the parent
	if p, _, err := d.client().GetProject(context.Background(), "kid"); err != nil || p.Parent == nil || *p.Parent != "p1" {
		t.Errorf("kid after lxc project set: %+v, %v", p, err)
	}

	// Bad input.
	d.mustLXCFail([]string{"project", "create", "a/b"}, "slashes")
	d.mustLXCFail([]string{"project", "create", "x", "-c", "bogus.key=1"}, `"bogus.key"`)
	d.mustLXCFail([]string{"project", "set", "p1", "limits.instances=-1"}, "limits.instances")
	d.mustLXCFail([]string{"project", "set", "p1", "limits.memory=lots"}, "limits.memory")
	d.mustLXCFail([]string{"project", "delete", "p1"}, "not empty", "child projects kid")
	d.mustLXCFail([]string{"project", "delete", "default"}, "default project cannot be deleted")
	d.mustLXCFail([]string{"project", "switch", "nope"}, "not found")
	d.mustLXCFail([]string{"list", "--project", "nope"}, `project "nope" not found`)
	if _, errOut, code := d.hangar("project", "set", "p1", "parent=x"); code == 0 || !strings.Contains(errOut, `"parent"`) {
		t.Errorf("hangar project set parent=x: exit %d, %q", code, errOut)
	}
	if _, errOut, code := d.hangar("project", "create", "loop", "--parent", "nope"); code == 0 || !strings.Contains(errOut, "nope") {
		t.Errorf("hangar project create under a missing parent: exit %d, %q", code, errOut)
	}

	// A limit below what is in use names the users (the default project
	// holds an instance).
	d.importImages()
	d.must("init", "busybox", "c1")
	d.mustLXCFail([]string{"project", "set", "default", "limits.instances=0"}, "limits.instances=0", "1 instances in use by c1")

	// Rename an empty project (its child follows), then delete both.
	d.mustLXC("project", "rename", "kid", "kid2")
	d.mustLXC("project", "rename", "p1", "p2")
	if p, _, err := d.client().GetProject(context.Background(), "kid2"); err != nil || p.Parent == nil || *p.Parent != "p2" {
		t.Errorf("kid2 after its parent's rename: %+v, %v", p, err)
	}
	d.mustLXC("project", "delete", "kid2")
	d.mustLXC("project", "delete", "p2")
	rows = tableRows(d.mustLXC("project", "list"))
	if len(rows) != 2 || !strings.HasPrefix(rows[1][0], "default") {
		t.Errorf("projects left: %q", rows)
	}
}
