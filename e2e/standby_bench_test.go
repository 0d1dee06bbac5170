package e2e

import (
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestStandbyBench times standby (lxc stop --stateful) and restore (lxc
// start) of a 512 MiB OCI VM through the LXD API, for each
// snapshots.compression it is given. It is a measurement, not a test: it
// runs only with HANGAR_BENCH_STANDBY=N (N cycles per compression;
// HANGAR_BENCH_STANDBY_COMPRESSION="none,zstd,lz4" picks them) and
// reports medians and p90s in the log. bench/standby.sh runs it.
func TestStandbyBench(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("HANGAR_BENCH_STANDBY"))
	if n <= 0 {
		t.Skip("a benchmark: set HANGAR_BENCH_STANDBY=N (bench/standby.sh)")
	}
	requireVM(t)
	comps := strings.Split(os.Getenv("HANGAR_BENCH_STANDBY_COMPRESSION"), ",")
	if comps[0] == "" {
		comps = []string{"none", "zstd", "lz4"}
	}
	d := startDaemon(t, "")
	ref := ociVMImage(t, d.netns)
	d.must("launch", ref, "b1", "--vm", "--insecure", "-c", "limits.memory=512MiB", "-c", "limits.cpu=1")
	waitFor(t, "the entrypoint", 60*time.Second, func() bool {
		return strings.Contains(d.must("console", "b1", "--show-log"), "vm-entrypoint")
	})
	// Some memory in use, as a workload would have: 64 MiB of random
	// bytes in a tmpfs file.
	d.must("exec", "b1", "--", "sh", "-c", "head -c 67108864 /dev/urandom > /dev/shm/ballast")
	bg := strings.TrimSpace(d.must("exec", "b1", "--", "sh", "-c", "sleep 100000 </dev/null >/dev/null 2>&1 & echo $!"))
	for _, c := range comps {
		d.must("config", "set", "b1", "snapshots.compression="+c)
		var stops, starts []time.Duration
		for i := 0; i < n; i++ {
			t0 := time.Now()
			d.must("stop", "--stateful", "b1")
			t1 := time.Now()
			d.must("start", "b1")
			t2 := time.Now()
			stops, starts = append(stops, t1.Sub(t0)), append(starts, t2.Sub(t1))
			d.must("exec", "b1", "--", "kill", "-0", bg)
		}
		t.Logf("BENCH compression=%s cycles=%d standby median=%v p90=%v restore median=%v p90=%v",
			c, n, median(stops), p90(stops), median(starts), p90(starts))
	}
}

func sortedDurations(ds []time.Duration) []time.Duration {
	out := append([]time.Duration(nil), ds...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func median(ds []time.Duration) time.Duration {
	s := sortedDurations(ds)
	return s[len(s)/2].Round(time.Millisecond)
}

func p90(ds []time.Duration) time.Duration {
	s := sortedDurations(ds)
	return s[min(len(s)-1, len(s)*9/10)].Round(time.Millisecond)
}
