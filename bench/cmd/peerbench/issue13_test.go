package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/client"
)

func TestParseFlagsIssue13(t *testing.T) {
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
		{name: "defaults", args: []string{"--issue13"}, peers: []string{peerHangard, peerLXD}, runs: 5},
		{name: "runs given", args: []string{"--issue13", "--runs", "12"}, peers: []string{peerHangard, peerLXD}, runs: 12},
		{name: "runc and podman dropped", args: []string{"--issue13", "--peers", "runc,podman,lxd"}, peers: []string{peerHangard, peerLXD}, runs: 5},
		{name: "hangard alone", args: []string{"--issue13", "--peers", "hangard"}, peers: []string{peerHangard}, runs: 5},
		{name: "with issue12", args: []string{"--issue13", "--issue12"}, wantErr: "--issue12 goes with none of"},
		{name: "with issue11", args: []string{"--issue13", "--issue11"}, wantErr: "--issue11 goes with none of"},
		{name: "with issue10", args: []string{"--issue13", "--issue10"}, wantErr: "--issue13 goes with none of"},
		{name: "with only", args: []string{"--issue13", "--only", "exec"}, wantErr: "--issue13 goes with none of"},
		{name: "with exec-only", args: []string{"--issue13", "--exec-only"}, wantErr: "--issue13 goes with none of"},
		{name: "with quick", args: []string{"--issue13", "--quick"}, wantErr: "--issue13 goes with none of"},
		{name: "too few runs", args: []string{"--issue13", "--runs", "4"}, wantErr: "at least 5 runs"},
		{name: "unknown peer", args: []string{"--issue13", "--peers", "docker"}, wantErr: "unknown peer"},
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
			if !cfg.issue13 || cfg.issue12 || cfg.issue11 || cfg.only != nil || !slices.Equal(cfg.peers, tc.peers) || cfg.runs != tc.runs {
				t.Errorf("issue13 %v issue12 %v issue11 %v only %v peers %v runs %d, want peers %v runs %d", cfg.issue13, cfg.issue12, cfg.issue11, cfg.only, cfg.peers, cfg.runs, tc.peers, tc.runs)
			}
			if cfg.goBench || !strings.HasSuffix(cfg.out, "bench/ISSUE13.md") {
				t.Errorf("issue-13 defaults: goBench %v out %s", cfg.goBench, cfg.out)
			}
		})
	}
}

func TestCheckFilled(t *testing.T) {
	for _, tc := range []struct {
		name, du string
		wantErr  string
	}{
		{name: "exactly 1 GiB", du: "1048576\t/pbdata\n"},
		{name: "more (directory blocks)", du: "1048580\t/pbdata\n"},
		{name: "short", du: "1048572\t/pbdata\n", wantErr: "holds 1048572 KiB"},
		{name: "empty", du: "", wantErr: "du printed nothing"},
		{name: "not a number", du: "du: /pbdata: No such file or directory", wantErr: "du printed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkFilled(tc.du)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("checkFilled(%q) = %v, want %q", tc.du, err, tc.wantErr)
			}
		})
	}
}

func TestNotAvailable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{name: "501, wrapped", err: fmt.Errorf("POST /x: %w", &client.Error{StatusCode: 501, Message: "not implemented"}), want: true},
		{name: "404", err: &client.Error{StatusCode: 404, Message: "not found"}, want: true},
		{name: "400", err: fmt.Errorf("POST /x: %w", &client.Error{StatusCode: 400, Message: "bad"}), want: false},
		{name: "not an API error", err: errors.New("connection refused"), want: false},
		{name: "nil", err: nil, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := notAvailable(tc.err); got != tc.want {
				t.Errorf("notAvailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestWriteRandomFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := writeRandomFiles(dir, 3, 4096); err != nil {
		t.Fatal(err)
	}
	var contents []string
	for i := range 3 {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("f%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 4096 {
			t.Errorf("f%d: %d bytes, want 4096", i, len(b))
		}
		contents = append(contents, string(b))
	}
	if contents[0] == contents[1] || contents[1] == contents[2] {
		t.Error("two files hold the same bytes")
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/a b":   `'/tmp/a b'`,
		"it's":       `'it'\''s'`,
		"/plain/dir": `'/plain/dir'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRenderIssue13(t *testing.T) {
	cfg := &config{issue13: true, runs: 5}
	res := newResults(cfg)
	r := newIssue10Results()
	for _, v := range []float64{10, 20, 30, 40, 50} {
		record11(r, r13Snapshot, col12HBtrfs, v, nil)        // median 30: met
		record11(r, r13Copy, col12HBtrfs, 2*v, nil)          // median 60: 2.00×, missed
		record11(r, r13Snapshot, col12LBtrfs, 10*v, nil)     // median 300
		record11(r, r13Export, col12HDir, 100*v, nil)        // median 3000
		record11(r, r13Export, col13Hand, 100*v, nil)        // median 3000: 1.00×, met
		record11(r, r13ForkPause, col12HDir, v/10, nil)      // median 3
		record11(r, r13ForkOp, col12HDir, 50*v, nil)         // median 1500
		record11(r, r13ForkReady, col12HDir, 100*v+100, nil) // median 3100
	}
	record11(r, r13Import, col12HDir, 0, errors.New("POST /1.0/instances (backup): 404 Not Found"))
	record11(r, r13Fill, col12LDir, 9000, nil)
	r.note("export/import: hangard's backups are not available in this tree")
	md := renderIssue13(cfg, res, r)
	for _, want := range []string{
		"`bench/run --issue13 --runs 5` on ",
		"| snapshot of a stopped container holding 1 GiB, btrfs, hangard | 30.0 ms (p90 50.0) | ≤ 50.0 ms | **met** |",
		"| copy of a stopped container within a btrfs pool ÷ snapshot on btrfs, hangard | 2.00× (60.0 / 30.0 ms) | ≤ 1.50× | **missed** |",
		"| snapshot on btrfs, hangard ÷ LXD (for reference) | 0.10× (30.0 / 300 ms) | - |  |",
		"| export of a 1 GiB container ÷ `tar \\| zstd -T0` of the same tree | 1.00× (3000 / 3000 ms) | ≤ 1.20× | **met** |",
		"| import ÷ `zstd -dc \\| tar -x` of the same tarball's make | - | ≤ 1.20× | no figure |",
		"| measurement | unit | hangard, dir | hangard, btrfs | LXD, dir | LXD, btrfs | by hand (tar, zstd) |",
		"| ms | - | **30.0**, 50.0 (10.0–50.0) | - | **300**, 500 (100–500) | - |",
		"| ms | failed | - | - | - | - |",
		"- hangard, dir, import: POST /1.0/instances (backup): 404 Not Found",
		"- export/import: hangard's backups are not available in this tree",
		"## The fork with KVM",
		"Measured under TCG (no KVM here): the source paused 3.00 ms; the fork's operation ended after 1500 ms and the fork answered its first exec 3100 ms after the POST.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// Every table line has its header's cells: no bare pipe in a cell.
	want := 0
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "|") {
			want = 0
			continue
		}
		n := strings.Count(line, "|") - strings.Count(line, `\|`)
		switch {
		case want == 0 && strings.HasPrefix(line, "| target (issue 13) |"):
			want = 5
		case want == 0 && strings.HasPrefix(line, "| measurement |"):
			want = 3 + len(issue13Cols)
		case want == 0:
			t.Fatalf("a table with an unknown header: %s", line)
		}
		if n != want {
			t.Errorf("%d bare pipes, want %d: %s", n, want, line)
		}
	}
	for _, absent := range []string{"| its download alone", "| VM boot, once", "| export + import, per round"} {
		if strings.Contains(md, absent) {
			t.Errorf("report has a row %q with no figures:\n%s", absent, md)
		}
	}
}

func TestRenderIssue13NoFork(t *testing.T) {
	cfg := &config{issue13: true, runs: 5}
	r := newIssue10Results()
	r.note("fork of a running VM: not measured: qemu-system-x86_64 not installed")
	md := renderIssue13(cfg, newResults(cfg), r)
	if strings.Contains(md, "## The fork with KVM") {
		t.Errorf("a report with no fork figures has the KVM section:\n%s", md)
	}
	if !strings.Contains(md, "| fork to the fork's agent ready (no target: reported) | - | - |  |") {
		t.Errorf("the fork's target line is not empty:\n%s", md)
	}
}

func TestForkSteps(t *testing.T) {
	const log = `time=2026-12-02T02:09:50.1Z level=INFO msg="vm started" id=ab12 pid=10 agent=true restored=false forked=false agent_ready=12.5s total=12.6s
time=2026-12-02T02:09:55.2Z level=INFO msg="vm checkpointed" id=ab12 file=/x/state pause=11.4ms save=1.02s qemu_downtime_ms=9 passes=3 forced_stop=false callback=1ms
time=2026-12-02T02:09:55.9Z level=INFO msg="vm started" id=cd34 pid=11 agent=true restored=true forked=true agent_ready=250ms total=301.5ms
time=2026-12-02T02:09:56.0Z level=WARN msg="vm checkpointed" id=ab12 save=garbage
time=2026-12-02T02:09:57.0Z level=INFO msg="instance forked" instance=pb-vm fork=pb-fork0001 processes=true pause=11.4ms
time=2026-12-02T02:09:58.0Z level=INFO msg="vm started" id=ef56 forked=true total=
`
	got := forkSteps(log)
	if !slices.Equal(got.save, []float64{1020}) || !slices.Equal(got.start, []float64{301.5}) {
		t.Errorf("forkSteps = %+v, want save [1020] start [301.5]", got)
	}
	for _, tc := range []struct{ line, key, want string }{
		{line: `a=1 forked=true total=2s`, key: "forked", want: "true"},
		{line: `a=1 unforked=false forked=true`, key: "forked", want: "true"},
		{line: `a=1 b=2`, key: "forked", want: ""},
	} {
		if got := logField(tc.line, tc.key); got != tc.want {
			t.Errorf("logField(%q, %s) = %q, want %q", tc.line, tc.key, got, tc.want)
		}
	}
}
