package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProjectScope drives images, custom volumes and networks in projects
// with the real lxc over the unix socket (?project= on every request): an
// image stored once and held by two projects under one alias name, kept
// for one when the other deletes it; two projects' volumes called v1 side
// by side on one pool (LXD's PROJECT_NAME on disk); a network of a project
// with features.networks, invisible elsewhere, its name still host-wide.
func TestProjectScope(t *testing.T) {
	requireLXC(t)
	d := startDaemon(t, "")
	d.mustLXC("project", "create", "p1")
	d.mustLXC("project", "create", "p2")

	// Images: one stored copy, held by p1 and p2.
	d.mustLXC("image", "import", imageTarball, "--alias", "bb", "--project", "p1")
	d.mustLXC("image", "import", imageTarball, "--alias", "bb", "--project", "p2")
	blobs, err := os.ReadDir(filepath.Join(d.dir, "images", "blobs", "sha256"))
	if err != nil || len(blobs) != 1 {
		t.Errorf("image blobs after importing one image into two projects: %d, %v; want 1", len(blobs), err)
	}
	fp := strings.TrimSpace(d.mustLXC("image", "list", "--project", "p1", "--format", "csv", "-c", "F"))
	if len(fp) < 12 {
		t.Fatalf("p1's image list: %q", fp)
	}
	if out := d.mustLXC("image", "list", "--format", "csv", "-c", "l"); strings.Contains(out, "bb") {
		t.Errorf("the default project lists p1's alias:\n%s", out)
	}
	d.mustLXCFail([]string{"image", "show", fp}, "not found")
	d.mustLXCFail([]string{"image", "import", imageTarball, "--project", "p1"}, "already exists")
	d.mustLXC("image", "delete", "bb", "--project", "p1")
	if out := d.mustLXC("image", "list", "--project", "p1", "--format", "csv"); strings.TrimSpace(out) != "" {
		t.Errorf("p1 lists an image after deleting its only one:\n%s", out)
	}
	if out := d.mustLXC("image", "list", "--project", "p2", "--format", "csv", "-c", "lF"); !strings.Contains(out, "bb") || !strings.Contains(out, fp) {
		t.Errorf("p2 lost the image p1 deleted:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(d.dir, "images", "blobs", "sha256", blobs[0].Name())); err != nil {
		t.Errorf("the image's blob went while p2 holds it: %v", err)
	}
	// p2's own default profile (made with the project) has no root disk,
	// as in LXD: -s gives one.
	d.mustLXC("launch", "bb", "c1", "--project", "p2", "-s", "default")
	d.mustLXCFail([]string{"image", "delete", "bb", "--project", "p2"}, "used by instances", "c1")

	// Custom volumes: v1 in default and in p1.
	d.mustLXC("storage", "volume", "create", "default", "v1")
	d.mustLXC("storage", "volume", "create", "default", "v1", "--project", "p1")
	d.mustLXC("storage", "volume", "set", "default", "v1", "user.who", "p1", "--project", "p1")
	for _, dir := range []string{"v1", "p1_v1"} {
		if _, err := os.Stat(filepath.Join(d.dir, "storage-pools", "default", "custom", dir)); err != nil {
			t.Errorf("volume directory %s: %v", dir, err)
		}
	}
	if out := strings.TrimSpace(d.mustLXC("storage", "volume", "get", "default", "v1", "user.who")); out != "" {
		t.Errorf("default's v1 got p1's key: %q", out)
	}
	d.mustLXCFail([]string{"storage", "volume", "show", "default", "v1", "--project", "p2"}, "not found")
	if out := d.mustLXC("storage", "volume", "list", "default", "--project", "p2", "--format", "csv"); !strings.Contains(out, "c1") || strings.Contains(out, "v1") {
		t.Errorf("p2's volumes:\n%s", out)
	}
	if out := d.mustLXC("storage", "volume", "show", "default", "container/c1", "--project", "p2"); !strings.Contains(out, "/1.0/instances/c1?project=p2") {
		t.Errorf("p2's root volume used_by lacks ?project=p2:\n%s", out)
	}
	d.mustLXC("storage", "volume", "delete", "default", "v1", "--project", "p1")
	d.mustLXC("storage", "volume", "show", "default", "v1")

	// Networks: p3 has its own; its bridge name is taken host-wide.
	d.mustLXC("project", "create", "p3", "-c", "features.networks=true")
	d.mustLXC("network", "create", "p3br", "ipv4.address=none", "ipv6.address=none", "--project", "p3")
	if out := d.mustLXC("network", "list", "--format", "csv"); strings.Contains(out, "p3br") {
		t.Errorf("the default project lists p3's network:\n%s", out)
	}
	d.mustLXCFail([]string{"network", "show", "p3br"}, "not found")
	d.mustLXCFail([]string{"network", "create", "p3br", "ipv4.address=none", "ipv6.address=none"}, "another project")
	if out := d.mustLXC("network", "list", "--project", "p3", "--format", "csv"); !strings.Contains(out, "p3br") {
		t.Errorf("p3's network list:\n%s", out)
	}
	d.mustLXC("network", "delete", "p3br", "--project", "p3")
	d.mustLXC("delete", "-f", "c1", "--project", "p2")
}
