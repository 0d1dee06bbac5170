package image

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchRootfs is a ~20 MB tarball: 400 files of 50 KB, half of each random
// (incompressible) and half text, in 20 directories.
func benchRootfs(b *testing.B) []byte {
	rng := rand.NewChaCha8([32]byte{42})
	var entries []tarEntry
	for d := range 20 {
		entries = append(entries, dirEntry(fmt.Sprintf("usr/lib/d%02d/", d), 0o755))
		for f := range 20 {
			body := make([]byte, 25<<10)
			rng.Read(body)
			body = append(body, bytes.Repeat([]byte("text line of a config file\n"), 25<<10/27)...)
			entries = append(entries, reg(fmt.Sprintf("usr/lib/d%02d/f%02d", d, f), string(body), 0o644))
		}
	}
	return buildTar(b, entries...)
}

func BenchmarkImport(b *testing.B) {
	tarball := benchRootfs(b)
	for _, kind := range []string{"none", "gzip", "zstd"} {
		data := compress(b, kind, tarball)
		b.Run(kind, func(b *testing.B) {
			s, _, _, _ := newTestService(b)
			ctx := context.Background()
			b.SetBytes(int64(len(tarball)))
			b.ReportMetric(float64(len(data))/(1<<20), "upload-MB")
			for b.Loop() {
				img, err := s.Import(ctx, bytes.NewReader(data), ImportMeta{})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Delete(ctx, img.Fingerprint, nil); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
