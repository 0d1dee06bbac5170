package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// snapshotNames lists an instance's snapshots through the SDK.
func (d *daemon) snapshotNames(name string) []string {
	d.t.Helper()
	names, err := d.client().GetInstanceSnapshotNames(context.Background(), name)
	if err != nil {
		d.t.Fatalf("snapshots of %s: %v", name, err)
	}
	return names
}

// TestSnapshots: on a dir pool and a btrfs pool, hangar snapshot create,
// a file changed, restore gives the old content back (a running container
// is stopped and started again); rename, show, list, delete; a custom
// volume's snapshot restored through hangar storage volume snapshot.
func TestSnapshots(t *testing.T) {
	requireBtrfs(t)
	requireE2E(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("storage", "create", "b1", "btrfs", "size=1GiB")
	d.deletePoolAtEnd(t, "b1")
	for _, pool := range []string{"default", "b1"} {
		t.Run(pool, func(t *testing.T) {
			d := d.on(t)
			c := "c-" + pool
			d.must("launch", "busybox", c, "-s", pool)
			d.must("exec", c, "--", "sh", "-c", "echo one > /root/f")
			d.must("snapshot", "create", c, "s0")
			d.must("exec", c, "--", "sh", "-c", "echo two > /root/f && touch /root/new")
			if out := d.must("snapshot", "list", c, "--format", "csv"); !strings.HasPrefix(out, "s0,") || !strings.HasSuffix(out, ",NO\n") {
				t.Errorf("snapshot list: %q", out)
			}
			pid := d.pid(c)
			d.must("snapshot", "restore", c, "s0")
			if in := d.instance(c); in.Status != "Running" || in.State.Pid == int64(pid) {
				t.Errorf("after restore: %s, pid %d (was %d): want running again, restarted", in.Status, in.State.Pid, pid)
			}
			if out := d.must("exec", c, "--", "sh", "-c", "cat /root/f; ls /root"); out != "one\nf\n" {
				t.Errorf("after restore /root holds %q, want f with one", out)
			}
			// A snapshot of a stopped instance, restored stopped.
			d.must("stop", c, "--force")
			d.must("snapshot", "create", c)
			d.must("start", c)
			d.must("exec", c, "--", "sh", "-c", "echo three > /root/f")
			d.must("stop", c, "--force")
			d.must("snapshot", "restore", c, "snap0")
			if st := d.instance(c).Status; st != "Stopped" {
				t.Errorf("a stopped instance restored is %s", st)
			}
			d.must("start", c)
			if out := d.must("exec", c, "--", "cat", "/root/f"); out != "one\n" {
				t.Errorf("after restoring snap0: %q", out)
			}

			d.must("snapshot", "rename", c, "s0", "first")
			if out := d.must("snapshot", "show", c, "first"); !strings.Contains(out, "name: first\n") || !strings.Contains(out, "stateful: false\n") {
				t.Errorf("snapshot show:\n%s", out)
			}
			if sn, _, err := d.client().GetInstanceSnapshot(context.Background(), c, "first"); err != nil || sn.CreatedAt.IsZero() || !sn.ExpiresAt.IsZero() {
				t.Errorf("snapshot first: %+v %v", sn, err)
			}
			if got := d.snapshotNames(c); !slices.Equal(got, []string{"first", "snap0"}) {
				t.Errorf("snapshots %v", got)
			}
			d.mustFail([]string{"snapshot", "create", c, "first"}, "already exists")
			d.mustFail([]string{"snapshot", "restore", c, "ghost"}, "ghost")
			d.must("snapshot", "delete", c, "first", "snap0")
			if got := d.snapshotNames(c); len(got) != 0 {
				t.Errorf("snapshots after delete %v", got)
			}
			if out := d.must("list", c, "--format", "csv"); !strings.HasSuffix(out, ",0\n") {
				t.Errorf("list after delete: %q", out)
			}

			// A custom volume: written, snapshotted, changed, restored.
			vol := "v-" + pool
			// A size on btrfs (a quota a restore must put back); a dir
			// pool here has no quotas.
			if pool == "b1" {
				d.must("storage", "volume", "create", pool, vol, "size=32MiB")
			} else {
				d.must("storage", "volume", "create", pool, vol)
			}
			write := func(s string) {
				t.Helper()
				d.must("storage", "volume", "attach", pool, vol, c, "/data")
				d.must("exec", c, "--", "sh", "-c", "echo "+s+" > /data/f")
				d.must("storage", "volume", "detach", pool, vol, c)
			}
			write("old")
			d.must("storage", "volume", "snapshot", "create", pool, vol, "vs0")
			write("new")
			d.must("storage", "volume", "attach", pool, vol, c, "/data")
			d.mustFail([]string{"storage", "volume", "snapshot", "restore", pool, vol, "vs0"}, "in use")
			d.must("storage", "volume", "detach", pool, vol, c)
			d.must("storage", "volume", "snapshot", "restore", pool, vol, "vs0")
			d.must("storage", "volume", "attach", pool, vol, c, "/data")
			if out := d.must("exec", c, "--", "cat", "/data/f"); out != "old\n" {
				t.Errorf("volume after restore: %q", out)
			}
			d.must("storage", "volume", "detach", pool, vol, c)
			d.must("storage", "volume", "snapshot", "rename", pool, vol, "vs0", "kept")
			if out := d.must("storage", "volume", "snapshot", "list", pool, vol, "--format", "csv"); !strings.HasPrefix(out, "kept,") {
				t.Errorf("volume snapshot list: %q", out)
			}
			d.must("storage", "volume", "snapshot", "delete", pool, vol, "kept")
			d.must("storage", "volume", "delete", pool, vol)
			d.must("delete", "-f", c)
		})
	}
}

// TestSnapshotsLXC: the real lxc 5.0 takes, lists, restores, renames and
// deletes snapshots; lxc info lists them and lxc list counts them.
func TestSnapshotsLXC(t *testing.T) {
	requireLXC(t)
	d := startDaemon(t, "")
	d.importImages()
	d.mustLXC("launch", "busybox", "c1")
	d.mustLXC("exec", "c1", "--", "sh", "-c", "echo one > /root/f")
	d.mustLXC("snapshot", "c1")
	if out := d.mustLXC("info", "c1"); !strings.Contains(out, "Snapshots:") || !strings.Contains(out, "snap0") {
		t.Errorf("lxc info lacks the snapshot:\n%s", out)
	}
	if out := strings.TrimSpace(d.mustLXC("list", "c1", "-c", "nS", "--format", "csv")); out != "c1,1" {
		t.Errorf("lxc list SNAPSHOTS column: %q, want c1,1", out)
	}
	d.mustLXC("exec", "c1", "--", "sh", "-c", "echo two > /root/f")
	d.mustLXC("restore", "c1", "snap0")
	if out := d.mustLXC("exec", "c1", "--", "cat", "/root/f"); out != "one\n" {
		t.Errorf("after lxc restore: %q", out)
	}
	d.mustLXC("snapshot", "c1", "keep", "--no-expiry")
	d.mustLXC("move", "c1/keep", "c1/kept")
	d.mustLXC("delete", "c1/snap0")
	if got := d.snapshotNames("c1"); !slices.Equal(got, []string{"kept"}) {
		t.Errorf("snapshots after lxc move and delete: %v", got)
	}
	d.mustLXCFail([]string{"restore", "c1", "ghost"}, "ghost")
	d.mustLXCFail([]string{"snapshot", "c1", "kept"}, "already exists")

	// A custom volume's snapshots through lxc storage volume.
	d.mustLXC("storage", "volume", "create", "default", "data")
	d.mustLXC("storage", "volume", "snapshot", "default", "data")
	d.mustLXC("storage", "volume", "snapshot", "default", "data", "named")
	if out := d.mustLXC("storage", "volume", "info", "default", "data"); !strings.Contains(out, "snap0") || !strings.Contains(out, "named") {
		t.Errorf("lxc storage volume info lacks the snapshots:\n%s", out)
	}
	d.mustLXC("storage", "volume", "restore", "default", "data", "snap0")
	d.mustLXC("storage", "volume", "rename", "default", "data/named", "data/renamed")
	d.mustLXC("storage", "volume", "delete", "default", "data/renamed")
	if out := d.must("storage", "volume", "snapshot", "list", "default", "data", "--format", "csv"); !strings.HasPrefix(out, "snap0,") || strings.Count(out, "\n") != 1 {
		t.Errorf("volume snapshots after lxc rename and delete: %q", out)
	}
}

// TestSnapshotScheduleAndExpiry: a schedule of every minute takes a
// snapshot at the next minute, and a snapshot whose expiry passed goes at
// the first minute tick after it expired: up to two ticks (a 2 s expiry
// that ends just after a tick waits for the next one), waited for
// together, with room for a loaded machine.
func TestSnapshotScheduleAndExpiry(t *testing.T) {
	requireE2E(t)
	t.Parallel()
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "c1", "-c", "snapshots.schedule=* * * * *")
	d.must("launch", "busybox", "c2")
	d.must("snapshot", "create", "c2", "brief", "--expiry", "2S")
	d.must("snapshot", "create", "c2", "lasting")
	waitFor(t, "a scheduled snapshot of c1 and the expiry of c2/brief", 150*time.Second, func() bool {
		return slices.Contains(d.snapshotNames("c1"), "snap0") && !slices.Contains(d.snapshotNames("c2"), "brief")
	})
	if got := d.snapshotNames("c2"); !slices.Equal(got, []string{"lasting"}) {
		t.Errorf("c2's snapshots %v: the one without expiry must stay", got)
	}
}
