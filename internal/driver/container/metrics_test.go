package container

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/driver"
)

// The cgroup figures from files laid out as a v1 (hybrid) or v2 host has
// them; a file the host lacks leaves its figures out.
func TestCgroupMetrics(t *testing.T) {
	const v1MemStat = "cache 100\nrss 200\ntotal_cache 4096\ntotal_rss 8192\ntotal_shmem 16\ntotal_mapped_file 32\n" +
		"total_dirty 1\ntotal_writeback 2\ntotal_swap 64\ntotal_active_anon 1000\ntotal_inactive_anon 2000\n" +
		"total_active_file 300\ntotal_inactive_file 400\ntotal_unevictable 5\n"
	const v2MemStat = "anon 8192\nfile 4096\nshmem 16\nfile_mapped 32\nfile_dirty 1\nfile_writeback 2\n" +
		"active_anon 1000\ninactive_anon 2000\nactive_file 300\ninactive_file 400\nunevictable 5\n"
	full := func(swap bool) []driver.MemoryFigure {
		f := []driver.MemoryFigure{
			{Kind: driver.MemActiveAnon, Value: 1000}, {Kind: driver.MemActiveFile, Value: 300}, {Kind: driver.MemActive, Value: 1300},
			{Kind: driver.MemCached, Value: 4096}, {Kind: driver.MemDirty, Value: 1},
			{Kind: driver.MemInactiveAnon, Value: 2000}, {Kind: driver.MemInactiveFile, Value: 400}, {Kind: driver.MemInactive, Value: 2400},
			{Kind: driver.MemMapped, Value: 32}, {Kind: driver.MemRSS, Value: 8192}, {Kind: driver.MemShmem, Value: 16},
		}
		if swap {
			f = append(f, driver.MemoryFigure{Kind: driver.MemSwap, Value: 64})
		}
		return append(f, driver.MemoryFigure{Kind: driver.MemUnevictable, Value: 5}, driver.MemoryFigure{Kind: driver.MemWriteback, Value: 2})
	}
	limits := []driver.MemoryFigure{
		{Kind: driver.MemTotal, Value: 1 << 20}, {Kind: driver.MemFree, Value: 1<<20 - 10000},
		{Kind: driver.MemAvailable, Value: 1<<20 - 10000 + 400},
	}
	tests := []struct {
		name  string
		v2    bool
		files map[string]string // cgroupFiles field -> content; absent: missing
		want  driver.Metrics
	}{{
		name: "v1",
		files: map[string]string{
			"pids": "3\n", "memUsage": "10000\n", "memLimit": "1048576\n", "memStat": v1MemStat,
			"cpuAll":  "cpu user system\n0 1500000000 250000000\n1 2000000000 0\n",
			"cpuset":  "0-1\n",
			"ioBytes": "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
			"ioOps":   "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n",
			"oom":     "oom_kill_disable 0\nunder_oom 0\noom_kill 7\n",
		},
		want: driver.Metrics{
			Processes: 3, CPUs: 2,
			CPU:    []driver.CPUTime{{CPU: "0", User: 1.5, System: 0.25}, {CPU: "1", User: 2}},
			Memory: append(append(full(true), limits...), driver.MemoryFigure{Kind: driver.MemOOMKills, Value: 7}),
			Disk:   map[string]driver.DiskIO{blockDevName("8:0"): {ReadBytes: 4096, WrittenBytes: 8192, ReadsCompleted: 1, WritesCompleted: 2}},
		},
	}, {
		name: "v2",
		v2:   true,
		files: map[string]string{
			"pids": "3\n", "memUsage": "10000\n", "memLimit": "1048576\n", "memStat": v2MemStat, "swap": "64\n",
			"cpuAll":  "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\n",
			"cpuset":  "0,2-3\n",
			"ioBytes": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
			"oom":     "low 0\nhigh 0\nmax 0\noom 1\noom_kill 7\n",
		},
		want: driver.Metrics{
			Processes: 3, CPUs: 3,
			CPU:    []driver.CPUTime{{User: 2, System: 1}},
			Memory: append(append(append(full(false), driver.MemoryFigure{Kind: driver.MemSwap, Value: 64}), limits...), driver.MemoryFigure{Kind: driver.MemOOMKills, Value: 7}),
			Disk:   map[string]driver.DiskIO{blockDevName("8:0"): {ReadBytes: 4096, WrittenBytes: 8192, ReadsCompleted: 1, WritesCompleted: 2}},
		},
	}, {
		// No blkio or cpuset controller, an old kernel without
		// oom_kill, no memory limit (v2's "max"): those figures are left
		// out, MemTotal is the host's RAM.
		name: "files missing",
		v2:   true,
		files: map[string]string{
			"pids": "1\n", "memUsage": "1000\n", "memLimit": "max\n",
			"cpuAll": "usage_usec 10\n", // no user/system split: no CPU figure
		},
		want: driver.Metrics{
			Processes: 1,
			Memory: []driver.MemoryFigure{
				{Kind: driver.MemTotal, Value: 1 << 30}, {Kind: driver.MemFree, Value: 1<<30 - 1000}, {Kind: driver.MemAvailable, Value: 1<<30 - 1000},
			},
		},
	}, {
		name:  "malformed figures",
		files: map[string]string{"pids": "lots\n", "cpuAll": "cpu user system\n0 x y\n", "cpuset": "3-1\n", "memStat": "total_rss many\n"},
		// No usage and no limit: MemTotal (the host's RAM) only.
		want: driver.Metrics{Processes: 0, Memory: []driver.MemoryFigure{{Kind: driver.MemTotal, Value: 1 << 30}}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var f cgroupFiles
			f.v2 = tc.v2
			paths := map[string]*string{
				"pids": &f.pids, "memUsage": &f.memUsage, "memLimit": &f.memLimit, "memStat": &f.memStat,
				"cpuAll": &f.cpuAll, "cpuset": &f.cpuset, "ioBytes": &f.ioBytes, "ioOps": &f.ioOps,
				"oom": &f.oom, "swap": &f.swap,
			}
			for name, p := range paths {
				*p = filepath.Join(dir, name) // missing unless written below
				if content, ok := tc.files[name]; ok {
					if err := os.WriteFile(*p, []byte(content), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			c := openStats(f)
			defer c.close()
			got := c.metrics(1 << 30)
			if len(got.Disk) == 0 { // an empty blkio file and none compare equal
				got.Disk = nil
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
		})
	}
}

// A container whose stats were closed (its PID 1 was reaped) reads as
// gone, so the caller reports no series rather than zeros.
func TestCgroupMetricsClosed(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pids")
	if err := os.WriteFile(p, []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := openStats(cgroupFiles{pids: p})
	if got := c.metrics(0); got.Processes != 2 {
		t.Fatalf("open: processes %d, want 2", got.Processes)
	}
	c.close()
	if got := c.metrics(0); got.Processes != -1 {
		t.Fatalf("closed: processes %d, want -1 (gone)", got.Processes)
	}
}

func TestCountCPUs(t *testing.T) {
	for in, want := range map[string]int{"0": 1, "0-3": 4, "0,2-3": 3, "": 0, "3-1": 0, "a": 0, "0-": 0, "1,1": 2} {
		if got := countCPUs([]byte(in)); got != want {
			t.Errorf("countCPUs(%q) = %d, want %d", in, got, want)
		}
	}
}
