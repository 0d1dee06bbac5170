package drivers

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkBtrfsCloneDelete: an instance's root on btrfs is a snapshot
// of its image's volume, and goes with the delete of that snapshot. The
// image here holds 2000 small files (a small rootfs).
func BenchmarkBtrfsCloneDelete(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	base := b.TempDir()
	b.Cleanup(func() { forceClean(base) })
	p := Pool{Name: "p", Config: map[string]string{"size": "512MiB"}, Dir: filepath.Join(base, "storage-pools", "p"), Log: slog.New(slog.DiscardHandler)}
	d, err := Load("btrfs", p)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.Create(ctx); err != nil {
		b.Skipf("btrfs pool: %v", err)
	}
	img := Volume{Type: TypeImage, Name: "img", Content: ContentFilesystem}
	if err := d.CreateVolume(ctx, img, 0, true, fillSmallTree); err != nil {
		b.Fatal(err)
	}
	var cloning time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		c := Volume{Type: TypeContainer, Name: fmt.Sprintf("c%d", i), Content: ContentFilesystem}
		start := time.Now()
		if err := d.CloneVolume(ctx, c, img); err != nil {
			b.Fatal(err)
		}
		cloning += time.Since(start)
		n++
		if err := d.DeleteVolume(ctx, c); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cloning.Nanoseconds())/float64(n), "clone-ns/op")
	_ = d.DeleteVolume(ctx, img)
	_ = d.Delete(ctx)
}

func fillSmallTree(dir string) error {
	for i := range 2000 {
		p := filepath.Join(dir, "rootfs", fmt.Sprintf("d%d", i%50), fmt.Sprintf("f%d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, make([]byte, 1024), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkSnapshotVolume: a snapshot of a volume holding 1GiB of real
// data (1024 files of 1MiB of random bytes, written and synced once),
// deleted after each (not timed). btrfs: a read-only snapshot; dir: a
// copy (reflink where the filesystem under the pool has it; the
// data directory's filesystem here).
func BenchmarkSnapshotVolume(b *testing.B) {
	benchCopies(b, func(ctx context.Context, d Driver, vol, from Volume) error {
		return d.SnapshotVolume(ctx, vol, from)
	}, "@snap")
}

// BenchmarkCloneVolume: a writable clone of the same volume, deleted
// after each (not timed).
func BenchmarkCloneVolume(b *testing.B) {
	benchCopies(b, func(ctx context.Context, d Driver, vol, from Volume) error {
		return d.CloneVolume(ctx, vol, from)
	}, "-clone")
}

func benchCopies(b *testing.B, op func(ctx context.Context, d Driver, vol, from Volume) error, suffix string) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	// dir-on-btrfs: a dir pool whose source is a directory on a btrfs
	// filesystem, where cp copies by reflink.
	for _, name := range []string{"dir", "dir-on-btrfs", "btrfs"} {
		b.Run(name, func(b *testing.B) {
			base := b.TempDir()
			b.Cleanup(func() { forceClean(base) })
			var cfg map[string]string
			driver := name
			switch name {
			case "btrfs":
				cfg = map[string]string{"size": "4GiB"}
			case "dir-on-btrfs":
				driver = "dir"
				cfg = map[string]string{"source": benchHostBtrfs(b, base)}
			}
			p := Pool{Name: "p", Config: cfg, Dir: filepath.Join(base, "data", "storage-pools", "p"), Log: slog.New(slog.DiscardHandler)}
			d, err := Load(driver, p)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			if _, err := d.Create(ctx); err != nil {
				b.Fatalf("%s pool: %v", name, err)
			}
			vol := Volume{Type: TypeContainer, Name: "c1", Content: ContentFilesystem}
			if err := d.CreateVolume(ctx, vol, 0, false, fillRandom(1024, 1<<20)); err != nil {
				b.Fatal(err)
			}
			unix.Sync()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := Volume{Type: vol.Type, Name: fmt.Sprintf("c1%s%d", suffix, i), Content: vol.Content}
				if err := op(ctx, d, c, vol); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := d.DeleteVolume(ctx, c); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.StopTimer()
			_ = d.DeleteVolume(ctx, vol)
			_ = d.Delete(ctx)
		})
	}
}

// fillRandom writes n files of size random bytes, synced.
func fillRandom(n int, size int) func(dir string) error {
	return func(dir string) error {
		buf := make([]byte, size)
		for i := range n {
			if _, err := rand.Read(buf); err != nil {
				return err
			}
			p := filepath.Join(dir, "rootfs", fmt.Sprintf("d%02d", i%32), fmt.Sprintf("f%04d", i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, buf, 0o644); err != nil {
				return err
			}
		}
		return nil
	}
}

// benchHostBtrfs mounts a 4GiB btrfs on a loop file under base and
// returns an empty directory on it.
func benchHostBtrfs(b *testing.B, base string) string {
	img := filepath.Join(base, "host.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(img, 4<<30); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		b.Skipf("mkfs.btrfs: %v: %s", err, out)
	}
	dev, err := attachLoop(img)
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close() // the mount holds it; autoclear frees it at unmount
	mnt := filepath.Join(base, "host")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := unix.Mount(dev.Name(), mnt, "btrfs", 0, ""); err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(mnt, "pool")
	if err := os.Mkdir(src, 0o755); err != nil {
		b.Fatal(err)
	}
	return src
}
