package qemu

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
)

// BenchmarkStateSink measures the compressing sink on a stream like a
// VM's: 64 MiB, a quarter random, the rest zero.
func BenchmarkStateSink(b *testing.B) {
	data := make([]byte, 64<<20)
	if _, err := rand.Read(data[:16<<20]); err != nil {
		b.Fatal(err)
	}
	for _, spec := range []string{"none", "zstd", "lz4"} {
		b.Run(spec, func(b *testing.B) {
			comp, _ := driver.ParseCompression(spec)
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				f, err := os.Create(filepath.Join(b.TempDir(), "s"))
				if err != nil {
					b.Fatal(err)
				}
				sink, err := newStateSink(f, comp)
				if err != nil {
					b.Fatal(err)
				}
				w := sink.qemuEnd
				// QEMU writes its stream 32 KiB at a time.
				for off := 0; off < len(data); off += 32 << 10 {
					if _, err := w.Write(data[off : off+32<<10]); err != nil {
						b.Fatal(err)
					}
				}
				if !comp.IsZero() {
					w.Close()
				}
				if err := sink.wait(true); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		})
	}
}
