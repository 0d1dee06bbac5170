package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
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

// BenchmarkListDaemon is the whole of `hangar list` but the process start
// (request, JSON decode of every instance with its state, filtering,
// rendering) against a running hangard: set HANGAR_BENCH_SOCKET to its
// socket, with as many instances as the figure is for (bench/cli.sh tells
// how to make 1000 cheaply).
func BenchmarkListDaemon(b *testing.B) {
	socket := os.Getenv("HANGAR_BENCH_SOCKET")
	if socket == "" {
		b.Skip("HANGAR_BENCH_SOCKET is not set")
	}
	for _, format := range listFormats {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var errOut strings.Builder
				if code := run(b.Context(), []string{"--socket", socket, "list", "--format", format}, nil, io.Discard, &errOut); code != 0 {
					b.Fatalf("list: exit %d: %s", code, errOut.String())
				}
			}
		})
	}
}

// BenchmarkWriteYAMLListJSON is the rendering half of `hangar list
// --format yaml` at 1000 instances as the command does it: from the
// daemon's JSON, undecoded (BenchmarkRenderInstances/yaml renders decoded
// instances, as with filters).
func BenchmarkWriteYAMLListJSON(b *testing.B) {
	insts := make([]api.InstanceFull, 1000)
	for i := range insts {
		inst := stoppedInst
		if i%2 == 0 {
			inst = runningInst
		}
		inst.Name = fmt.Sprintf("c%04d", i) // sorted, as hangard answers
		insts[i] = inst
	}
	raw, err := json.Marshal(insts)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := writeYAMLListJSON(io.Discard, raw, "name"); err != nil {
			b.Fatal(err)
		}
	}
}
