package image

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// benchTree copies real files from the host's /usr/lib (binaries,
// libraries, data: the mix an instance's root holds) into a new tree
// until it holds mb MiB (HANGAR_BENCH_PUBLISH_MB, default 256).
func benchTree(b *testing.B) (string, int64) {
	mb := int64(256)
	if v := os.Getenv("HANGAR_BENCH_PUBLISH_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		mb = n
	}
	root := filepath.Join(b.TempDir(), "root")
	var total int64
	errFull := fs.SkipAll
	err := filepath.WalkDir("/usr/lib", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if total >= mb<<20 {
			return errFull
		}
		rel, _ := filepath.Rel("/usr/lib", p)
		dst := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		in, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer in.Close()
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		n, err := io.Copy(out, io.LimitReader(in, mb<<20-total))
		out.Close()
		total += n
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return root, total
}

// BenchmarkPublish publishes a tree of real files at each compression:
// pack, compress, and (through Import) hash, store, decompress and unpack
// the image's tree. MB/s is of the tree's bytes.
func BenchmarkPublish(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("needs root (the unpacked tree's ownership)")
	}
	root, total := benchTree(b)
	for _, comp := range []string{"none", "gzip", "zstd", "xz"} {
		b.Run(comp, func(b *testing.B) {
			s, _, _, _ := newTestService(b)
			ctx := context.Background()
			b.SetBytes(total)
			for b.Loop() {
				img, err := s.Publish(ctx, PublishSource{Dir: root}, PublishOptions{Compression: comp})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				b.ReportMetric(float64(img.Size)/(1<<20), "image-MiB")
				if err := s.Delete(ctx, img.Fingerprint, nil); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
