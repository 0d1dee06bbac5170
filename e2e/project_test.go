package e2e

import (
	"context"
	"regexp"
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

// TestProjectLimitsLXC launches into projects with limits through the
// real lxc: a launch over a limit is refused with the limit's name and the
// excess, and creates nothing; a child's instances count against its
// parent's limits. It needs the instance core to call
// project.Service.CheckAdd on create.
func TestProjectLimitsLXC(t *testing.T) {
	requireLXC(t)
	t.Setenv("HANGAR_CONF", t.TempDir())
	d := startDaemon(t, "")
	d.importImages()
	// Whatever got created goes before the daemon stops, refused or not.
	t.Cleanup(func() {
		for _, p := range []string{"one", "noct", "novm", "team", "dev"} {
			for _, n := range []string{"c1", "c2", "n1", "n2", "v1", "d1", "t2", "d3"} {
				d.lxc("delete", "-f", n, "--project", p)
			}
		}
	})
	// Projects that share the default project's images and profiles, so
	// that busybox and the default profile's root disk are there.
	shared := []string{"-c", "features.images=false", "-c", "features.profiles=false"}
	create := func(name string, extra ...string) {
		t.Helper()
		d.mustLXC(append(append([]string{"project", "create", name}, shared...), extra...)...)
	}
	names := func(project string) []string {
		t.Helper()
		var out []string
		for _, line := range strings.Split(strings.TrimSpace(d.mustLXC("list", "--project", project, "-f", "csv", "-c", "n")), "\n") {
			if line != "" {
				out = append(out, line)
			}
		}
		return out
	}

	create("one", "-c", "limits.instances=1")
	d.mustLXC("launch", "busybox", "c1", "--project", "one")
	d.mustLXCFail([]string{"launch", "busybox", "c2", "--project", "one"}, `project "one"`, "limits.instances=1", "exceeded by 1")
	if got := names("one"); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("project one holds %q after the refused launch, want only c1", got)
	}
	d.mustLXCFail([]string{"project", "set", "one", "limits.instances=0"}, "1 instances in use by c1")
	d.mustLXCFail([]string{"project", "delete", "one"}, "not empty", "instances c1")

	create("noct", "-c", "limits.containers=0")
	// Instance names differ across projects here: the storage layer
	// still names instance volumes without their project.
	d.mustLXCFail([]string{"init", "busybox", "n1", "--project", "noct"}, "limits.containers=0", "exceeded by 1")
	create("novm", "-c", "limits.virtual-machines=0")
	// lxc refuses a container image as a VM itself; hangar converts it.
	d.mustFail([]string{"init", "busybox", "v1", "--vm", "--project", "novm"}, "limits.virtual-machines=0", "exceeded by 1")
	d.mustLXC("init", "busybox", "n2", "--project", "novm") // containers are not capped there
	if got := names("noct"); len(got) != 0 {
		t.Errorf("project noct holds %q after refused creates", got)
	}

	// Nested: team allows 1 instance in all; dev, its child, has none of
	// its own limits.
	create("team", "-c", "limits.instances=1")
	d.must("project", "create", "dev", "--parent", "team", "features.images=false", "features.profiles=false")
	d.mustLXC("launch", "busybox", "d1", "--project", "dev")
	d.mustLXCFail([]string{"launch", "busybox", "t2", "--project", "team"}, `project "team"`, "limits.instances=1", "exceeded by 1")
	d.mustLXCFail([]string{"launch", "busybox", "d3", "--project", "dev"}, `project "team" (an ancestor of "dev")`, "limits.instances=1")
	if got := names("team"); len(got) != 0 {
		t.Errorf("project team holds %q after the refused launch", got)
	}
	if got := names("dev"); !slices.Equal(got, []string{"d1"}) {
		t.Errorf("project dev holds %q, want only d1", got)
	}
	info := d.mustLXC("project", "info", "team")
	if !regexp.MustCompile(`\|\s*INSTANCES\s*\|\s*1\s*\|\s*1\s*\|`).MatchString(info) {
		t.Errorf("lxc project info team does not count dev's instance:\n%s", info)
	}
}
