package cli

import (
	"fmt"
	"io"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// BenchmarkRenderInstances is the rendering half of `hangar list` at 1000
// instances (the request is measured end to end by bench/run): sorting,
// rows and each output format.
func BenchmarkRenderInstances(b *testing.B) {
	insts := make([]api.InstanceFull, 1000)
	for i := range insts {
		// Every other one running with addresses, in reverse name order so
		// that the sort has work to do.
		inst := stoppedInst
		if i%2 == 0 {
			inst = runningInst
		}
		inst.Name = fmt.Sprintf("c%04d", len(insts)-i)
		insts[i] = inst
	}
	for _, format := range listFormats {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := instanceListing.render(io.Discard, format, insts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
