package instance

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkStreamLogFollow measures StreamLog's follow on the host alone:
// a writer appends 100-byte lines to an instance's console log as fast as
// it can while a follower turns each into a Server-Sent Event
// ("data: LINE\n\n", as the instances API sends them) and checks it got
// them all. The VM end to end figure is the qemu package's
// BenchmarkVMAppLog.
//
//	go test -run '^$' -bench StreamLogFollow -benchtime 1x ./internal/instance/
func BenchmarkStreamLogFollow(b *testing.B) {
	const lines = 2 << 20 // 200 MiB
	s, drv := newLogTestService(b)
	b.SetBytes(lines * 100)
	ctx := context.Background()
	if err := launch(b, s, imageReq("c1")); err != nil {
		b.Fatal(err)
	}
	rec, _, _ := s.snapshot(mustLookup(b, s, "c1"))
	for b.Loop() {
		console := filepath.Join(drv.dir, runtimeID(rec.ID), "console.log")
		if err := os.MkdirAll(filepath.Dir(console), 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.Truncate(console, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		sse := bufio.NewWriterSize(io.Discard, 64<<10)
		got := 0
		errDone := errors.New("done")
		done := make(chan error, 1)
		go func() {
			done <- s.StreamLog(rctx, "c1", LogApp, -1, true, func(ls [][]byte) error {
				for _, l := range ls {
					sse.WriteString("data: ")
					sse.Write(l)
					sse.WriteString("\n\n")
				}
				got += len(ls)
				if got >= lines {
					return errDone
				}
				return sse.Flush()
			})
		}()
		f, err := os.OpenFile(console, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 64<<10)
		line := make([]byte, 100)
		for i := range line {
			line[i] = 'x'
		}
		line[99] = '\n'
		for i := range lines {
			copy(line, fmt.Sprintf("L%010d ", i))
			w.Write(line)
		}
		w.Flush()
		f.Close()
		if err := <-done; !errors.Is(err, errDone) {
			b.Fatalf("stream: %v after %d lines", err, got)
		}
		cancel()
	}
}
