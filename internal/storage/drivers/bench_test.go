package drivers

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
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
