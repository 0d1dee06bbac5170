package main

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseFlagsIssue12(t *testing.T) {
	parse := func(args ...string) (*config, error) {
		t.Helper()
		old := os.Args
		defer func() { os.Args = old }()
		os.Args = append([]string{"peerbench", "--repo", t.TempDir()}, args...)
		return parseFlags()
	}
	for _, tc := range []struct {
		name    string
		args    []string
		peers   []string
		runs    int
		wantErr string
	}{
		{name: "defaults", args: []string{"--issue12"}, peers: []string{peerHangard, peerRunc, peerLXD}, runs: 30},
		{name: "runs given", args: []string{"--issue12", "--runs", "5"}, peers: []string{peerHangard, peerRunc, peerLXD}, runs: 5},
		{name: "podman dropped", args: []string{"--issue12", "--peers", "podman,lxd"}, peers: []string{peerHangard, peerLXD}, runs: 30},
		{name: "with issue11", args: []string{"--issue12", "--issue11"}, wantErr: "--issue11 goes with none of"},
		{name: "with issue10", args: []string{"--issue12", "--issue10"}, wantErr: "--issue12 goes with none of"},
		{name: "with only", args: []string{"--issue12", "--only", "exec"}, wantErr: "--issue12 goes with none of"},
		{name: "with exec-only", args: []string{"--issue12", "--exec-only"}, wantErr: "--issue12 goes with none of"},
		{name: "with quick", args: []string{"--issue12", "--quick"}, wantErr: "--issue12 goes with none of"},
		{name: "too few runs", args: []string{"--issue12", "--runs", "4"}, wantErr: "at least 5 runs"},
		{name: "unknown peer", args: []string{"--issue12", "--peers", "docker"}, wantErr: "unknown peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parse(tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !cfg.issue12 || cfg.issue11 || cfg.only != nil || !slices.Equal(cfg.peers, tc.peers) || cfg.runs != tc.runs {
				t.Errorf("issue12 %v issue11 %v only %v peers %v runs %d, want peers %v runs %d", cfg.issue12, cfg.issue11, cfg.only, cfg.peers, cfg.runs, tc.peers, tc.runs)
			}
			if cfg.goBench || !strings.HasSuffix(cfg.out, "bench/ISSUE12.md") || !strings.HasSuffix(cfg.chart, "bench/issue12.png") {
				t.Errorf("issue-12 defaults: goBench %v out %s chart %s", cfg.goBench, cfg.out, cfg.chart)
			}
		})
	}
}

func TestHasMountPoint(t *testing.T) {
	const table = `22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c
23 22 0:22 / /proc rw,nosuid - proc proc rw
24 22 0:44 /vol /data\040old rw - btrfs /dev/loop3 rw
25 22 0:44 /pbv0001 /srv/data rw - btrfs /dev/loop3 rw
`
	for _, tc := range []struct {
		name, table, mp string
		want            bool
	}{
		{name: "root", table: table, mp: "/", want: true},
		{name: "escaped space", table: table, mp: "/data old", want: true},
		{name: "not a prefix match", table: table, mp: "/data", want: false},
		{name: "a mount's source root is not its mount point", table: table, mp: "/pbv0001", want: false},
		{name: "nested", table: table, mp: "/srv/data", want: true},
		{name: "empty table", table: "", mp: "/data", want: false},
		{name: "short lines ignored", table: "1 2 3 4\n", mp: "4", want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hasMountPoint(strings.NewReader(tc.table), tc.mp)
			if err != nil || got != tc.want {
				t.Errorf("hasMountPoint(%q) = %v, %v; want %v", tc.mp, got, err, tc.want)
			}
		})
	}
}

func TestLoopsUnder(t *testing.T) {
	backing := map[string]string{
		"/dev/loop0": "/tmp/peerbench.1/issue12/baseline-btrfs.img\n",
		"/dev/loop1": "/tmp/peerbench.1/issue12/lxd/var/disks/pbbtrfs.img (deleted)\n",
		"/dev/loop2": "/tmp/peerbench.10/issue12/x.img\n",
		"/dev/loop3": "/var/lib/other.img\n",
		"/dev/loop4": "/tmp/peerbench.1\n",
	}
	for _, tc := range []struct {
		name, dir string
		want      []string
	}{
		{name: "files under the dir, deleted ones too", dir: "/tmp/peerbench.1", want: []string{"/dev/loop0", "/dev/loop1"}},
		{name: "trailing slash", dir: "/tmp/peerbench.1/issue12/", want: []string{"/dev/loop0", "/dev/loop1"}},
		{name: "none", dir: "/srv", want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := loopsUnder(backing, tc.dir); !slices.Equal(got, tc.want) {
				t.Errorf("loopsUnder(%s) = %v, want %v", tc.dir, got, tc.want)
			}
		})
	}
}

func TestRenderIssue12(t *testing.T) {
	cfg := &config{issue12: true, runs: 5}
	res := newResults(cfg)
	res.versions[peerRunc] = "runc version 1.1.5"
	r := newIssue10Results()
	for _, v := range []float64{100, 110, 120, 130, 140} {
		record11(r, r12Launch, col12HDir, v, nil)        // median 120
		record11(r, r12Launch, col12HBtrfs, v+30, nil)   // median 150: 1.25×, missed
		record11(r, r12Launch, col12LDir, 6*v, nil)      // median 720
		record11(r, r12Delete, col12HDir, v/2, nil)      // median 60
		record11(r, r12Delete, col12BDir, v/4, nil)      // median 30: 2.00×, met
		record11(r, r12DelRunc, col12BDir, v/5, nil)     // median 24
		record11(r, r12VolMounted, col12HDir, v/10, nil) // median 12
	}
	record11(r, r12First, col12HBtrfs, 900, nil)
	record11(r, r12Delete, col12HBtrfs, 0, errors.New("delete pb-lb0001: boom"))
	for i, err := range []error{nil, errors.New("no mount at /data"), nil} {
		record11(r, r12VolMounted, col12LDir, float64(40+i), err)
	}
	md := renderIssue12(cfg, res, r)
	for _, want := range []string{
		"`bench/run --issue12 --runs 5` on ",
		"| launch on btrfs ÷ launch on dir, hangard | 1.25× (150 / 120 ms) | ≤ 1.20× | **missed** |",
		"| launch on dir, hangard ÷ LXD (for reference) | 0.17× (120 / 720 ms) | - |  |",
		"| delete of a stopped instance on dir, hangard ÷ baseline (`runc delete` + `rm -rf` upper and work) | 2.00× (60.0 / 30.0 ms) | ≤ 2.00× | **met** |",
		"| delete of a stopped instance on btrfs, hangard ÷ baseline (`runc delete` + `btrfs subvolume delete`) | - | ≤ 2.00× | no figure |",
		"| custom volume create + attach until mounted, dir, hangard ÷ LXD (no target: reported beside LXD) | 0.29× (12.0 / 41.0 ms) | - |  |",
		"| measurement | unit | hangard, dir | hangard, btrfs | LXD, dir | LXD, btrfs | baseline, dir | baseline, btrfs |",
		"| ms | **120**, 140 (100–140) | **150**, 170 (130–170) | **720**, 840 (600–840) | - | - | - |",
		"| ms | - | **900** | - | - | - | - |",
		"| ms | **12.0**, 14.0 (10.0–14.0) | - | **41.0**, 42.0 (40.0–42.0); 1 of 3 failed | - | - | - |",
		"| ms | **60.0**, 70.0 (50.0–70.0) | failed | - | - | **30.0**, 35.0 (25.0–35.0) | - |",
		"- hangard, btrfs, delete: delete pb-lb0001: boom",
		"- LXD, dir, vol-mounted: no mount at /data",
		"(runc 1.1.5, the same busybox tree",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, absent := range []string{"| its attach to a running container", "| the same through the real lxc", "| baseline: the removal alone"} {
		if strings.Contains(md, absent) {
			t.Errorf("report has a row %q with no figures:\n%s", absent, md)
		}
	}
}
