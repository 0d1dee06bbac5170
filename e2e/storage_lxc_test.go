package e2e

import (
	"strings"
	"testing"
)

// TestStorageLXCFlows: the real lxc 5.0 drives pools and volumes: list,
// create, show, set, get, unset, info, volume create/list/show/attach/
// detach/rename/delete, launch on a pool; refusals come back as LXD's.
func TestStorageLXCFlows(t *testing.T) {
	requireLXC(t)
	requireBtrfs(t)
	d := startDaemon(t, "")
	d.importImages()
	if out := d.mustLXC("storage", "list"); !strings.Contains(out, "default") || !strings.Contains(out, "dir") {
		t.Fatalf("lxc storage list:\n%s", out)
	}
	d.mustLXC("storage", "create", "lb", "btrfs", "size=1GiB")
	d.deletePoolAtEnd(t, "lb")
	if out := d.mustLXC("storage", "show", "lb"); !strings.Contains(out, "driver: btrfs") || !strings.Contains(out, "size: 1GiB") {
		t.Fatalf("lxc storage show:\n%s", out)
	}
	d.mustLXC("storage", "set", "lb", "user.team", "blue")
	if out := strings.TrimSpace(d.mustLXC("storage", "get", "lb", "user.team")); out != "blue" {
		t.Fatalf("lxc storage get: %q", out)
	}
	d.mustLXC("storage", "unset", "lb", "user.team")
	if out := d.mustLXC("storage", "info", "lb"); !strings.Contains(out, "space used") && !strings.Contains(out, "Space used") {
		t.Fatalf("lxc storage info:\n%s", out)
	}
	d.mustLXCFail([]string{"storage", "create", "lv", "lvm"}, "device-mapper")

	d.mustLXC("launch", "busybox", "c1", "-s", "lb")
	if out := d.mustLXC("config", "show", "c1", "--expanded"); !strings.Contains(out, "pool: lb") {
		t.Fatalf("expanded devices lack the root on lb:\n%s", out)
	}
	d.mustLXC("storage", "volume", "create", "lb", "data", "size=16MiB")
	if out := d.mustLXC("storage", "volume", "list", "lb"); !strings.Contains(out, "data") || !strings.Contains(out, "c1") {
		t.Fatalf("lxc storage volume list:\n%s", out)
	}
	d.mustLXC("storage", "volume", "attach", "lb", "data", "c1", "/data")
	d.mustLXC("exec", "c1", "--", "sh", "-c", "echo hi > /data/f")
	if out := d.mustLXC("storage", "volume", "show", "lb", "data"); !strings.Contains(out, "/1.0/instances/c1") {
		t.Fatalf("volume used_by lacks c1:\n%s", out)
	}
	d.mustLXCFail([]string{"storage", "volume", "delete", "lb", "data"}, "in use")
	d.mustLXCFail([]string{"storage", "delete", "lb"}, "in use")
	d.mustLXC("storage", "volume", "detach", "lb", "data", "c1")
	d.mustLXC("storage", "volume", "rename", "lb", "data", "data2")
	if out := d.mustLXC("storage", "volume", "info", "lb", "data2"); !strings.Contains(strings.ToLower(out), "usage") {
		t.Fatalf("lxc storage volume info:\n%s", out)
	}
	d.mustLXC("storage", "volume", "delete", "lb", "data2")
	d.mustLXC("delete", "-f", "c1")
	d.mustLXC("storage", "delete", "lb")
	if out := d.mustLXC("storage", "list"); strings.Contains(out, "lb") {
		t.Fatalf("pool still listed:\n%s", out)
	}
}
