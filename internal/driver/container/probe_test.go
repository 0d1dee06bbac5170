package container

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestProbeFiles(t *testing.T) {
	e := newTestEnv(t)
	s := e.spec(false, "sleep", "1000")
	e.start(s)
	in := e.d.lookup(s.ID)
	var buf [256]byte
	for _, f := range []string{in.cg.freeze, in.cg.pids, in.cg.memUsage, in.cg.memPeak, in.cg.cpu} {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for range 5000 {
			fh.ReadAt(buf[:], 0)
		}
		t1 := time.Since(start) / 5000
		fd := int(fh.Fd())
		start = time.Now()
		for range 5000 {
			unix.Pread(fd, buf[:], 0)
		}
		t2 := time.Since(start) / 5000
		start = time.Now()
		for range 5000 {
			readSmall(f, buf[:])
		}
		t3 := time.Since(start) / 5000
		start = time.Now()
		for range 5000 {
			unix.Getpid()
		}
		t4 := time.Since(start) / 5000
		t.Logf("%s: ReadAt %v pread %v open/read/close %v getpid %v", f, t1, t2, t3, t4)
	}
}
