package vmdisk

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func need(t *testing.T, tools ...string) []string {
	t.Helper()
	var paths []string
	for _, name := range tools {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("%s not installed (scripts/deps.sh installs qemu-utils and e2fsprogs)", name)
		}
		paths = append(paths, p)
	}
	return paths
}

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		used, inodes, minSize int64
		want                  int64
	}{
		{"empty tree gets 1 GiB free", 0, 0, 0, 1<<30 + 64<<20},
		{"free space as large as the tree", 2 << 30, 1000, 0, 4<<30 + 65<<20},
		{"minimum wins", 0, 0, 5 << 30, 5 << 30},
		{"minimum below the need is ignored", 0, 0, 1 << 20, 1<<30 + 64<<20},
		{"rounded up to a MiB", 0, 0, 5<<30 + 1, 5<<30 + 1<<20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Size(tc.used, tc.inodes, tc.minSize)
			if got != tc.want || got%mib != 0 {
				t.Fatalf("Size(%d, %d, %d) = %d, want %d", tc.used, tc.inodes, tc.minSize, got, tc.want)
			}
		})
	}
}

// TestBuildExt4 builds an ext4 image of a tree with mkfs.ext4 -d and
// reads it back with debugfs: no mount is involved either way.
func TestBuildExt4(t *testing.T) {
	p := need(t, "mkfs.ext4", "debugfs", "dumpe2fs")
	mkfs, debugfs, dumpe2fs := p[0], p[1], p[2]
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
	ctx := context.Background()
	dst := filepath.Join(dir, "base.ext4")
	if err := BuildExt4(ctx, mkfs, root, dst, 3<<30); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dst + ".tmp"); !os.IsNotExist(err) {
		t.Fatal("the temporary image was left behind")
	}
	st, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 3<<30 {
		t.Fatalf("image size %d, want the 3 GiB minimum", st.Size())
	}
	out, err := exec.Command(debugfs, "-R", "cat /etc/hostname", dst).Output()
	if err != nil || string(out) != "from-the-image\n" {
		t.Fatalf("debugfs cat: %q %v", out, err)
	}
	out, _ = exec.Command(debugfs, "-R", "stat /etc/hostname", dst).Output()
	if !strings.Contains(string(out), "User:  1234") || !strings.Contains(string(out), "Group:  5678") {
		t.Fatalf("owner not kept:\n%s", out)
	}
	out, _ = exec.Command(dumpe2fs, "-h", dst).Output()
	if !strings.Contains(string(out), "Filesystem volume name:   "+Label) {
		t.Fatalf("label not %s:\n%s", Label, out)
	}

	for _, tc := range []struct{ name, tree string }{
		{"missing tree", filepath.Join(dir, "missing")},
		{"tree is a file", filepath.Join(root, "etc/hostname")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := filepath.Join(dir, "bad.ext4")
			if err := BuildExt4(ctx, mkfs, tc.tree, bad, 0); err == nil {
				t.Fatal("built a disk")
			}
			for _, p := range []string{bad, bad + ".tmp"} {
				if _, err := os.Stat(p); !os.IsNotExist(err) {
					t.Fatalf("a failed build left %s", p)
				}
			}
		})
	}
}

func TestOverlayResizeInfoConvert(t *testing.T) {
	qemuImg := need(t, "qemu-img")[0]
	ctx := context.Background()
	dir := t.TempDir()
	base := filepath.Join(dir, "base.raw")
	data := []byte("hangar was here")
	f, err := os.Create(base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(data, 5<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()

	size, format, err := Info(ctx, qemuImg, base, "raw")
	if err != nil || size != 64<<20 || format != "raw" {
		t.Fatalf("info of the base: %d %q %v", size, format, err)
	}

	overlay := filepath.Join(dir, "root.qcow2")
	if err := CreateOverlay(ctx, qemuImg, base, "raw", overlay, 0); err != nil {
		t.Fatal(err)
	}
	if size, format, err := Info(ctx, qemuImg, overlay, ""); err != nil || size != 64<<20 || format != "qcow2" {
		t.Fatalf("info of the overlay (probed): %d %q %v", size, format, err)
	}
	sized := filepath.Join(dir, "sized.qcow2")
	if err := CreateOverlay(ctx, qemuImg, base, "raw", sized, 128<<20); err != nil {
		t.Fatal(err)
	}
	if size, _, err := Info(ctx, qemuImg, sized, "qcow2"); err != nil || size != 128<<20 {
		t.Fatalf("info of the sized overlay: %d %v", size, err)
	}

	if err := Resize(ctx, qemuImg, overlay, 64<<20); err != nil {
		t.Fatalf("resize to the same size: %v", err)
	}
	if err := Resize(ctx, qemuImg, overlay, 256<<20); err != nil {
		t.Fatal(err)
	}
	if size, _, err := Info(ctx, qemuImg, overlay, "qcow2"); err != nil || size != 256<<20 {
		t.Fatalf("grown overlay: %d %v", size, err)
	}
	raw := filepath.Join(dir, "copy.raw")
	if err := Convert(ctx, qemuImg, overlay, "qcow2", raw); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(raw)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 256<<20 {
		t.Fatalf("converted size %d, want the overlay's 256 MiB", st.Size())
	}
	if used := st.Sys().(*syscall.Stat_t).Blocks * 512; used >= 16<<20 {
		t.Errorf("converted image uses %d bytes: not sparse", used)
	}
	got := make([]byte, len(data))
	rf, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rf.ReadAt(got, 5<<20); err != nil || string(got) != string(data) {
		t.Fatalf("converted content %q %v: the backing file's data is lost", got, err)
	}
	rf.Close()

	for _, tc := range []struct {
		name string
		run  func() error
		want error
		dst  string // must not exist afterwards
	}{
		{"shrink", func() error { return Resize(ctx, qemuImg, overlay, 1<<20) }, errdefs.ErrInvalidArgument, ""},
		{"resize a missing file", func() error { return Resize(ctx, qemuImg, filepath.Join(dir, "nope"), 1<<30) }, errdefs.ErrNotFound, ""},
		// Never probed: a raw file is not taken for an image to grow.
		{"resize a raw file", func() error { return Resize(ctx, qemuImg, raw, 1<<30) }, nil, ""},
		{"info with an unknown format", func() error { _, _, err := Info(ctx, qemuImg, raw, "vmdk"); return err }, errdefs.ErrInvalidArgument, ""},
		{"overlay below its base", func() error {
			return CreateOverlay(ctx, qemuImg, base, "raw", filepath.Join(dir, "small.qcow2"), 1<<20)
		}, errdefs.ErrInvalidArgument, filepath.Join(dir, "small.qcow2")},
		{"overlay of a missing base", func() error {
			return CreateOverlay(ctx, qemuImg, filepath.Join(dir, "nope"), "raw", filepath.Join(dir, "orphan.qcow2"), 0)
		}, nil, filepath.Join(dir, "orphan.qcow2")},
		{"overlay with a bad format", func() error {
			return CreateOverlay(ctx, qemuImg, base, "iso", filepath.Join(dir, "iso.qcow2"), 0)
		}, errdefs.ErrInvalidArgument, filepath.Join(dir, "iso.qcow2")},
		{"convert a missing file", func() error {
			return Convert(ctx, qemuImg, filepath.Join(dir, "nope"), "qcow2", filepath.Join(dir, "conv.raw"))
		}, nil, filepath.Join(dir, "conv.raw")},
		// A raw file named raw is read as raw, whatever its bytes say.
		{"info of a qcow2 read as raw", func() error {
			size, format, err := Info(ctx, qemuImg, overlay, "raw")
			if err == nil && (format != "raw" || size == 256<<20) {
				return errors.New("probed the format it was told")
			}
			return err
		}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			switch {
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			case tc.want == nil && strings.HasPrefix(tc.name, "info"):
				if err != nil {
					t.Fatal(err)
				}
			case tc.want == nil && err == nil:
				t.Fatal("no error")
			}
			if tc.dst != "" {
				for _, p := range []string{tc.dst, tc.dst + ".tmp"} {
					if _, err := os.Stat(p); !os.IsNotExist(err) {
						t.Fatalf("left %s behind", p)
					}
				}
			}
		})
	}
}
