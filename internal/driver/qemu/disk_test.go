package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

func vmagentConfigForTest() vmagent.Config {
	return vmagent.Config{Args: []string{"/bin/sh"}, Root: &vmagent.Disk{Serial: "root", Bus: "virtio-blk"}, RootFSType: "ext4"}
}

// TestBaseDisk: the deprecated path's shared base disk is built once per
// tree, read-only, and found again.
func TestBaseDisk(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not installed (e2fsprogs)")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Dir: filepath.Join(dir, "vms")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base, err := d.baseDisk(ctx, mkfs, root)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o444 {
		t.Fatalf("base disk mode %v: want read-only", st.Mode())
	}
	again, err := d.baseDisk(ctx, mkfs, root)
	if err != nil || again != base {
		t.Fatalf("second base disk %q %v, want %q", again, err, base)
	}
	if st2, _ := os.Stat(again); !os.SameFile(st, st2) {
		t.Fatal("the base disk was built again")
	}
	if _, err := d.baseDisk(ctx, mkfs, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing tree built a base disk")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "vms", ".cache", "*.build*"))
	if len(left) != 0 {
		t.Fatalf("a failed build left %v", left)
	}
}
