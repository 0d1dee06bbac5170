package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/driver/logtail"
)

// BenchmarkVMAppLog measures the app log end to end: a VM (TCG here)
// whose entrypoint prints numbered 100-byte lines as fast as it can
// (testdata/printlines), and a reader following the console log with
// logtail.Stream, as the instances API's log stream does, checking that
// every line comes, in order. MB/s is counted from the reader's first
// line to its last; guest-MB/s is what the guest says it took to write.
// Run (root, QEMU and a kernel needed; one VM per iteration):
//
//	HANGAR_BENCH_APPLOG_MB=256 go test -run '^$' -bench VMAppLog -benchtime 1x ./internal/driver/qemu/
//
// HANGAR_BENCH_APPLOG_SINK=/dev/null has the guest write its lines there
// instead: the guest's own speed under emulation, the bound of the rest.
func BenchmarkVMAppLog(b *testing.B) {
	needQEMU(b)
	mb := 256
	if v := os.Getenv("HANGAR_BENCH_APPLOG_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("HANGAR_BENCH_APPLOG_MB=%q: want a number of MiB", v)
		}
		mb = n
	}
	tmp := b.TempDir()
	agent := buildAgent(b, tmp)
	tree := busyboxTree(b, tmp)
	build := exec.Command("go", "build", "-o", filepath.Join(tree, "bin", "printlines"), "./testdata/printlines")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build printlines: %v\n%s", err, out)
	}
	d, err := New(Config{Dir: filepath.Join(tmp, "vms"), Agent: agent, CgroupParent: "/hangar-vm-bench", OnExit: func(driver.Exit) {}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("applog%d", i)
		root := rawRoot(b, b.TempDir(), tree)
		spec := driver.Spec{
			ID: id, Hostname: id, Root: driver.Root{Disk: root},
			Args: append([]string{"/bin/printlines", strconv.Itoa(mb)}, sinkArgs()...), Env: []string{"PATH=/bin"},
			StopSignal: syscall.SIGTERM,
			Limits:     driver.Limits{CPUCount: 1, MemoryBytes: MinMemory},
		}
		// Follow from before the start: the reader is waiting when the
		// first line comes, as a client of a following stream is.
		dir := filepath.Join(tmp, "vms", id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		res := make(chan appLogResult, 1)
		go func() { res <- readAppLog(rctx, filepath.Join(dir, fileConsole), cancel) }()
		if _, err := d.Start(ctx, spec); err != nil {
			cancel()
			b.Fatalf("start: %v", err)
		}
		var r appLogResult
		select {
		case r = <-res:
		case <-time.After(time.Duration(mb)*time.Second + 5*time.Minute):
			cancel()
			b.Fatalf("no END line; %+v", <-res)
		}
		_ = d.Stop(ctx, id, syscall.SIGKILL, 0, true)
		_ = d.Delete(ctx, id)
		if r.err != nil {
			b.Fatal(r.err)
		}
		if len(sinkArgs()) > 0 {
			b.ReportMetric(float64(r.want)*100/r.guest.Seconds()/1e6, "guest-MB/s")
			b.Logf("the guest wrote %d lines to %s in %v", r.want, sinkArgs()[0], r.guest)
			continue
		}
		if r.lines != r.want {
			b.Fatalf("read %d lines, the guest wrote %d", r.lines, r.want)
		}
		secs := r.last.Sub(r.first).Seconds()
		b.ReportMetric(float64(r.bytes)/secs/1e6, "MB/s")
		b.ReportMetric(float64(r.bytes)/r.guest.Seconds()/1e6, "guest-MB/s")
		b.ReportMetric(float64(r.lines)/secs, "lines/s")
		b.Logf("%d lines, %d bytes in %.2fs (guest: %v)", r.lines, r.bytes, secs, r.guest)
	}
}

func sinkArgs() []string {
	if s := os.Getenv("HANGAR_BENCH_APPLOG_SINK"); s != "" {
		return []string{s}
	}
	return nil
}

type appLogResult struct {
	lines, want int
	bytes       int64
	first, last time.Time
	guest       time.Duration
	err         error
}

// readAppLog follows the console log until the END line, checking the
// numbers of the lines before it.
func readAppLog(ctx context.Context, path string, done context.CancelFunc) appLogResult {
	var r appLogResult
	errEnd := errors.New("end")
	err := logtail.Stream(ctx, path, -1, true, func(lines [][]byte) error {
		for _, l := range lines {
			switch {
			case len(l) == 99 && l[0] == 'L':
				n, err := strconv.Atoi(string(l[1:11]))
				if err != nil || n != r.lines {
					return fmt.Errorf("line %d is %q", r.lines, l[:min(len(l), 20)])
				}
				if r.lines == 0 {
					r.first = time.Now()
				}
				r.lines++
				r.bytes += int64(len(l)) + 1
			case bytes.HasPrefix(l, []byte("END ")):
				r.last = time.Now()
				var ns int64
				if _, err := fmt.Sscanf(string(l), "END %d %d", &r.want, &ns); err != nil {
					return fmt.Errorf("END line %q: %w", l, err)
				}
				r.guest = time.Duration(ns)
				return errEnd
			case bytes.Contains(l, []byte("L0")) || r.lines > 0 && len(l) > 0 && l[0] == 'L':
				return fmt.Errorf("mangled line after %d: %q", r.lines, l[:min(len(l), 120)])
			}
		}
		return nil
	})
	done()
	if !errors.Is(err, errEnd) {
		r.err = fmt.Errorf("stream ended before END (%d lines): %v", r.lines, err)
	}
	return r
}
