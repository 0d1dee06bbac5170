package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// snapshotAPI takes a snapshot through the REST API, as lxc does.
func (d *daemon) snapshotAPI(name, snap string) {
	d.t.Helper()
	ctx := context.Background()
	r, _, err := d.client().Query(ctx, "POST", "/1.0/instances/"+name+"/snapshots", map[string]any{"name": snap}, "")
	if err != nil {
		d.t.Fatalf("snapshot %s/%s: %v", name, snap, err)
	}
	if r.Operation != "" {
		id := r.Operation[strings.LastIndex(r.Operation, "/")+1:]
		if _, _, err := d.client().Query(ctx, "GET", "/1.0/operations/"+id+"/wait", nil, ""); err != nil {
			d.t.Fatalf("snapshot %s/%s: %v", name, snap, err)
		}
	}
}

// TestCopy: hangar copy within a dir pool, within a btrfs pool (a
// snapshot), across pools both ways (streamed), from a snapshot, with and
// without snapshots; lxc copy; the copy has the content, its own identity,
// and is refused for a missing source or a taken name.
func TestCopy(t *testing.T) {
	requireBtrfs(t)
	requireLXC(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("storage", "create", "b1", "btrfs", "size=2GiB")
	d.deletePoolAtEnd(t, "b1")
	d.must("launch", "busybox", "c1")
	d.must("exec", "c1", "--", "sh", "-c", "echo one > /root/f && chown 7:8 /root/f")
	d.snapshotAPI("c1", "s0")
	d.must("exec", "c1", "--", "sh", "-c", "echo two > /root/f")

	check := func(name, want string) {
		t.Helper()
		if st := d.instance(name).Status; st != "Running" {
			d.must("start", name)
		}
		if out := d.must("exec", name, "--", "sh", "-c", "cat /root/f; stat -c %u:%g /root/f"); out != want+"\n7:8\n" {
			t.Errorf("%s: /root/f is %q, want %q owned 7:8", name, out, want)
		}
	}
	d.must("copy", "c1", "c2")
	check("c2", "two")
	if a, b := d.instanceConfig("c1", false).Config["volatile.uuid"], d.instanceConfig("c2", false).Config["volatile.uuid"]; a == b || b == "" {
		t.Errorf("copy uuid %q, source's %q: want its own", b, a)
	}
	// The copy took the source's snapshot along.
	r, _, err := d.client().Query(context.Background(), "GET", "/1.0/instances/c2/snapshots", nil, "")
	if err != nil || !strings.Contains(string(r.Metadata), "/1.0/instances/c2/snapshots/s0") {
		t.Errorf("c2's snapshots: %v %v", r, err)
	}

	d.must("copy", "c1/s0", "c3", "-s", "b1")
	check("c3", "one")
	if got := d.volumesOf("b1", "container"); !slices.Equal(got, []string{"c3"}) {
		t.Errorf("container volumes on b1: %v, want [c3]", got)
	}
	d.must("copy", "c3", "c4")
	check("c4", "one")
	d.must("copy", "c4", "c5", "-s", "default", "--instance-only")
	check("c5", "one")
	// A file written in a copy is its own.
	d.must("exec", "c5", "--", "sh", "-c", "echo five > /root/f")
	check("c4", "one")

	d.mustLXC("copy", "c1", "c6")
	check("c6", "two")

	d.mustFail([]string{"copy", "nope", "c7"}, "nope")
	d.mustFail([]string{"copy", "c1", "c2"}, "c2")
	d.mustFail([]string{"copy", "c1/nope", "c7"}, "nope")
	d.mustFail([]string{"copy", "c1", "c7", "-s", "nopool"}, "nopool")
	if slices.Contains(d.instanceNames(), "c7") {
		t.Fatal("a refused copy left an instance")
	}
}

// TestForkContainer: a running container's fork is a clone of its root,
// started afresh; the answer says processes did not carry over.
func TestForkContainer(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "c1")
	d.must("exec", "c1", "--", "sh", "-c", "echo kept > /root/f")
	out := d.must("fork", "c1", "c2")
	if !strings.Contains(out, "do not carry over") {
		t.Errorf("fork said %q", out)
	}
	if in := d.instance("c2"); in.Status != "Running" {
		t.Fatalf("fork status %q", in.Status)
	}
	if got := d.must("exec", "c2", "--", "cat", "/root/f"); got != "kept\n" {
		t.Errorf("fork's /root/f %q", got)
	}
	if in := d.instance("c1"); in.Status != "Running" {
		t.Errorf("source after the fork: %q", in.Status)
	}
	d.mustFail([]string{"fork", "c1", "c2"}, "c2")
	d.mustFail([]string{"fork", "nope", "c3"}, "nope")
	ctx := context.Background()
	op, err := d.client().ForkInstance(ctx, "c1", "")
	if err == nil {
		err = op.Wait(ctx)
	}
	if err == nil || !strings.Contains(err.Error(), "name") {
		t.Errorf("fork without a name: %v", err)
	}
}

// TestForkVM: a running VM's live fork runs a process started before the
// fork, as does the source; the fork has its own MAC (the agent set the
// one hangard allocated) and name; both answer exec. Then a stateful
// snapshot restored brings back a process killed after it. One TCG boot.
func TestForkVM(t *testing.T) {
	requireVM(t)
	d := startNetDaemon(t)
	d.importImages()
	d.must("launch", "busybox", "v1", "--vm", "-c", "limits.memory=512MiB", "-c", "limits.cpu=1")
	// A process of the guest's own, outliving the exec that started it.
	d.must("exec", "v1", "--", "sh", "-c", "setsid sleep 4242 </dev/null >/dev/null 2>&1 & echo $! > /run/sleeper")
	pid := strings.TrimSpace(d.must("exec", "v1", "--", "cat", "/run/sleeper"))
	out := d.must("fork", "v1", "v2")
	if !strings.Contains(out, "runs the source's processes") {
		t.Errorf("fork said %q", out)
	}
	for _, name := range []string{"v1", "v2"} {
		if got := d.must("exec", name, "--", "cat", "/proc/"+pid+"/cmdline"); !strings.Contains(got, "4242") {
			t.Errorf("%s: pid %s runs %q, want the sleep started before the fork", name, pid, got)
		}
		if got := strings.TrimSpace(d.must("exec", name, "--", "hostname")); got != name {
			t.Errorf("%s: hostname %q", name, got)
		}
	}
	mac1 := strings.TrimSpace(d.must("config", "get", "v1", "volatile.eth0.hwaddr"))
	mac2 := strings.TrimSpace(d.must("config", "get", "v2", "volatile.eth0.hwaddr"))
	if mac1 == "" || mac1 == mac2 {
		t.Fatalf("MACs: source %q fork %q", mac1, mac2)
	}
	waitFor(t, "the fork's eth0 to take its MAC", 30*time.Second, func() bool {
		out, _, code := d.hangar("exec", "v2", "--", "cat", "/sys/class/net/eth0/address")
		return code == 0 && strings.TrimSpace(out) == mac2
	})
	if got := strings.TrimSpace(d.must("exec", "v1", "--", "cat", "/sys/class/net/eth0/address")); got != mac1 {
		t.Errorf("source's MAC is now %q, want %q", got, mac1)
	}

	// A stateful snapshot of the same VM: restored, the VM runs again with
	// the process that was killed after the snapshot.
	d.must("snapshot", "create", "v1", "st", "--stateful")
	d.must("exec", "v1", "--", "kill", pid)
	waitFor(t, "the sleep to end", 10*time.Second, func() bool {
		_, _, code := d.hangar("exec", "v1", "--", "test", "-e", "/proc/"+pid)
		return code != 0
	})
	d.must("snapshot", "restore", "v1", "st", "--stateful")
	if st := d.instance("v1").Status; st != "Running" {
		t.Fatalf("after a stateful restore v1 is %s", st)
	}
	if got := d.must("exec", "v1", "--", "cat", "/proc/"+pid+"/cmdline"); !strings.Contains(got, "4242") {
		t.Errorf("after the stateful restore pid %s runs %q, want the sleep", pid, got)
	}

	// A copy of the running VM (paused while its disk is copied) boots
	// on its own; its snapshot publishes as a VM image.
	d.must("exec", "v1", "--", "sh", "-c", "echo copied > /root/f && sync")
	d.must("copy", "v1", "v3", "--instance-only")
	d.must("start", "v3")
	if got := d.must("exec", "v3", "--", "cat", "/root/f"); got != "copied\n" {
		t.Errorf("the VM copy reads %q", got)
	}
	if mac3 := strings.TrimSpace(d.must("config", "get", "v3", "volatile.eth0.hwaddr")); mac3 == mac1 || mac3 == "" {
		t.Errorf("the copy's MAC %q, the source's %q", mac3, mac1)
	}
	d.must("publish", "v1/st", "--alias", "vmimg")
	if out := d.must("image", "list", "--format", "csv"); !strings.Contains(out, "vmimg") || !strings.Contains(strings.ToUpper(out), "VIRTUAL-MACHINE") {
		t.Errorf("the published VM snapshot:\n%s", out)
	}
}

// manyFiles is how many files TestCopyInterrupted's source holds: cp
// spends seconds on them whatever the disk's speed (a syscall or more per
// file), so the cancel and the kill always land while it copies.
const manyFiles = 30000

// TestCopyInterrupted: a copy on a dir pool (a real copy of many files)
// cancelled through its operation, and another killed with -9 mid-way,
// leave no instance, no volume record and no file behind; the source is
// untouched.
func TestCopyInterrupted(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "c1")
	d.must("stop", "c1")
	containers := filepath.Join(d.dir, "storage-pools", "default", "containers")
	// Written into the stopped root's upper layer from the host: faster
	// than a shell loop in the container.
	vols, err := os.ReadDir(containers)
	if err != nil || len(vols) != 1 {
		t.Fatalf("container volumes: %v %v", vols, err)
	}
	many := filepath.Join(containers, vols[0].Name(), "upper", "root", "many")
	if err := os.MkdirAll(many, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range manyFiles {
		if err := os.WriteFile(filepath.Join(many, strconv.Itoa(i)), []byte("data\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copying := func() bool {
		ents, _ := os.ReadDir(containers)
		return len(ents) > 1
	}
	ctx := context.Background()
	checkClean := func(when string) {
		t.Helper()
		if names := d.instanceNames(); !slices.Equal(names, []string{"c1"}) {
			t.Errorf("%s: instances %v, want [c1]", when, names)
		}
		if vols := d.volumesOf("default", "container"); !slices.Equal(vols, []string{"c1"}) {
			t.Errorf("%s: container volumes %v, want [c1]", when, vols)
		}
		ents, _ := os.ReadDir(containers)
		if len(ents) != 1 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%s: the pool's containers directory holds %v, want c1's volume alone", when, names)
		}
	}

	op, err := d.client().CopyInstance(ctx, "c1", true, api.InstancesPost{Name: "c2"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the copy to begin", 30*time.Second, copying)
	if err := op.Cancel(ctx); err != nil {
		t.Fatalf("cancel the copy: %v", err)
	}
	if err := op.Wait(ctx); err == nil {
		t.Fatal("a cancelled copy succeeded")
	}
	checkClean("after the cancel")

	if _, err := d.client().CopyInstance(ctx, "c1", true, api.InstancesPost{Name: "c3"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second copy to begin", 30*time.Second, copying)
	d.kill9()
	d.start()
	checkClean("after kill -9 and a restart")
	d.must("start", "c1")
	if out := d.must("exec", "c1", "--", "sh", "-c", "ls /root/many | wc -l"); strings.TrimSpace(out) != strconv.Itoa(manyFiles) {
		t.Errorf("the source holds %q files, want %d", out, manyFiles)
	}
}
