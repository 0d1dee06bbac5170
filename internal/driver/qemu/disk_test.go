package qemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

func vmagentConfigForTest() vmagent.Config {
	return vmagent.Config{Args: []string{"/bin/sh"}, RootDevice: "/dev/vda", RootFSType: "ext4"}
}

// TestBuildBaseDisk builds an ext4 image of a tree with mkfs.ext4 -d and
// reads it back with debugfs: no mount is involved either way.
func TestBuildBaseDisk(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not installed (e2fsprogs)")
	}
	debugfs, err := exec.LookPath("debugfs")
	if err != nil {
		t.Skip("debugfs not installed (e2fsprogs)")
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("from-the-image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(root, "etc/hostname"), 1234, 5678); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "base.ext4")
	if err := buildBaseDisk(context.Background(), mkfs, root, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dst + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("the temporary image was left behind")
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o444 {
		t.Fatalf("base disk mode %v: want read-only", st.Mode())
	}
	out, err := exec.Command(debugfs, "-R", "cat /etc/hostname", dst).Output()
	if err != nil || string(out) != "from-the-image\n" {
		t.Fatalf("debugfs cat: %q %v", out, err)
	}
	out, _ = exec.Command(debugfs, "-R", "stat /etc/hostname", dst).Output()
	if !strings.Contains(string(out), "User:  1234") || !strings.Contains(string(out), "Group:  5678") {
		t.Fatalf("owner not kept:\n%s", out)
	}
	if err := buildBaseDisk(context.Background(), mkfs, filepath.Join(dir, "missing"), filepath.Join(dir, "bad.ext4")); err == nil {
		t.Fatal("a missing tree built a disk")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.ext4.tmp")); !os.IsNotExist(err) {
		t.Fatal("a failed build left a file")
	}
}
