package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParseFlagsIssue11(t *testing.T) {
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
		{name: "defaults", args: []string{"--issue11"}, peers: []string{peerHangard, peerPodman, peerLXD}, runs: 20},
		{name: "runs given", args: []string{"--issue11", "--runs", "5"}, peers: []string{peerHangard, peerPodman, peerLXD}, runs: 5},
		{name: "runc dropped", args: []string{"--issue11", "--peers", "runc,podman"}, peers: []string{peerHangard, peerPodman}, runs: 20},
		{name: "with issue10", args: []string{"--issue11", "--issue10"}, wantErr: "--issue11 goes with none of"},
		{name: "with only", args: []string{"--issue11", "--only", "exec"}, wantErr: "--issue11 goes with none of"},
		{name: "with quick", args: []string{"--issue11", "--quick"}, wantErr: "--issue11 goes with none of"},
		{name: "too few runs", args: []string{"--issue11", "--runs", "3"}, wantErr: "at least 5 runs"},
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
			if !cfg.issue11 || !slices.Equal(cfg.peers, tc.peers) || cfg.runs != tc.runs {
				t.Errorf("issue11 %v peers %v runs %d, want %v %d", cfg.issue11, cfg.peers, cfg.runs, tc.peers, tc.runs)
			}
			if cfg.goBench || cfg.listRuns != 50 || cfg.running != 100 || !strings.HasSuffix(cfg.out, "bench/ISSUE11.md") {
				t.Errorf("issue-11 defaults: goBench %v listRuns %d running %d out %s", cfg.goBench, cfg.listRuns, cfg.running, cfg.out)
			}
		})
	}
}

// tarball builds a gzipped tarball of regular files (name -> content),
// in order.
func tarball(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// untar reads a gzipped tarball into name -> (content, mode).
func untar(t *testing.T, data []byte) map[string][2]any {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string][2]any{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = [2]any{string(b), hdr.Mode}
	}
}

func TestAddNetsink(t *testing.T) {
	sink := []byte("\x7fELF netsink")
	for _, tc := range []struct {
		name      string
		in        []byte
		inittab   string // the inittab path in the output
		wantInit  string
		wantSink  string // the netsink path in the output
		wantErr   string
		wantOther map[string]string
	}{
		{
			name:     "dot-slash names, as tar -C dir . makes them",
			in:       tarball(t, [2]string{"./etc/inittab", "::respawn:/bin/sleep 1\n"}, [2]string{"./etc/passwd", "root:x:0:0::/root:/bin/sh\n"}),
			inittab:  "./etc/inittab",
			wantInit: "::respawn:/bin/sleep 1\n::respawn:/bin/netsink\n",
			wantSink: "./bin/netsink", wantOther: map[string]string{"./etc/passwd": "root:x:0:0::/root:/bin/sh\n"},
		},
		{
			name:     "plain names, inittab without a final newline",
			in:       tarball(t, [2]string{"etc/inittab", "::sysinit:/bin/true"}),
			inittab:  "etc/inittab",
			wantInit: "::sysinit:/bin/true\n::respawn:/bin/netsink\n",
			wantSink: "bin/netsink",
		},
		{name: "no inittab", in: tarball(t, [2]string{"./etc/passwd", "x"}), wantErr: "no etc/inittab"},
		{name: "netsink already there", in: tarball(t, [2]string{"./etc/inittab", ""}, [2]string{"./bin/netsink", "old"}), wantErr: "already there"},
		{name: "not gzip", in: []byte("plain text"), wantErr: "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := addNetsink(bytes.NewReader(tc.in), &out, sink)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			files := untar(t, out.Bytes())
			if got := files[tc.inittab][0]; got != tc.wantInit {
				t.Errorf("inittab %q, want %q", got, tc.wantInit)
			}
			if got := files[tc.wantSink]; got[0] != string(sink) || got[1] != int64(0o755) {
				t.Errorf("netsink %v, want the binary with mode 0755 (files: %v)", got, files)
			}
			for name, want := range tc.wantOther {
				if got := files[name][0]; got != want {
					t.Errorf("%s = %q, want %q unchanged", name, got, want)
				}
			}
		})
	}
}

func TestPodmanAddress(t *testing.T) {
	for _, tc := range []struct {
		name, body, want, wantErr string
	}{
		{name: "default network", body: `{"NetworkSettings":{"IPAddress":"","Networks":{"podman":{"IPAddress":"10.88.0.5"}}}}`, want: "10.88.0.5"},
		{name: "first network by name", body: `{"NetworkSettings":{"Networks":{"zz":{"IPAddress":"10.1.0.2"},"aa":{"IPAddress":"10.2.0.2"}}}}`, want: "10.2.0.2"},
		{name: "skips a network with none", body: `{"NetworkSettings":{"Networks":{"aa":{"IPAddress":""},"bb":{"IPAddress":"10.3.0.2"}}}}`, want: "10.3.0.2"},
		{name: "top-level only", body: `{"NetworkSettings":{"IPAddress":"10.88.0.9"}}`, want: "10.88.0.9"},
		{name: "none", body: `{"NetworkSettings":{"Networks":{}}}`, wantErr: "no IPv4 address"},
		{name: "not JSON", body: `<html>`, wantErr: "inspect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := podmanAddress([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestRenderIssue11(t *testing.T) {
	cfg := &config{issue11: true, runs: 5, listRuns: 5, running: 100}
	res := newResults(cfg)
	r := newIssue10Results()
	for _, v := range []float64{100, 110, 120, 130, 140} {
		r.add(r11Launch, peerHangard, v, nil)
		r.add(r11LaunchReach, peerHangard, v+20, nil) // median 140
		r.add(r11Launch, col11NoNIC, v, nil)          // median 120: 1.17×, met
		r.add(r11Launch, peerPodman, 2*v, nil)        // median 240: 0.58×, missed
		r.add(r11StartReach, peerHangard, v, nil)
		r.add(r11ListN, peerHangard, v/10, nil) // median 12: missed
		r.add(r11TputDirect, peerHangard, 10*v, nil)
	}
	r.add(r11Launch, peerLXD, 0, errors.New("lxc launch: boom"))
	for i, err := range []error{nil, nil, errors.New("no TCP connect"), nil} {
		record11(r, r11LaunchReach, peerPodman, float64(300+i), err)
	}
	md := renderIssue11(cfg, res, r)
	for _, want := range []string{
		"| launch with a NIC, until reachable ÷ hangard's launch without a NIC | 1.17× (140 / 120 ms) | ≤ 1.25× | **met** |",
		"| launch with a NIC, until the command returns ÷ without a NIC (for reference) | 1.00× (120 / 120 ms) | ≤ 1.25× |  |",
		"| launch with a NIC, until reachable ÷ `podman run -d` on its default bridge (until it returns) | 0.58× (140 / 240 ms) | ≤ 0.500× | **missed** |",
		"| launch until reachable, hangard ÷ podman (for reference) | 0.47× (140 / 301 ms) | ≤ 0.500× |  |",
		"| **301**, 303 (300–303); 1 of 4 failed | - |",
		"- podman, launch-reach: no TCP connect",
		"`bench/run --issue11 --runs 5 --list-runs 5 --running 100` on ",
		"| start until the first TCP connect, hangard at the container's address ÷ podman through its published port (no target) | - | - |  |",
		"| start, until the first successful TCP connect from the host side to the container's port at its address, connecting from the same instant (podman: its address changes at every start) | ms | **120**, 140 (100–140) | - | - | - |",
		"| `GET /1.0/instances?recursion=2` at 100 running with NICs, median | 12.0 ms (p90 14.0) | ≤ 10.0 ms | **missed** |",
		"| ms | **120**, 140 (100–140) | **120**, 140 (100–140) | **240**, 280 (200–280) | failed |",
		"| `GET /1.0/instances?recursion=2`, 100 running containers with NICs | ms |",
		"| MB/s | **1200**, 1400 (1000–1400) | - | - | - |",
		"- LXD, launch: lxc launch: boom",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, absent := range []string{"| start of a stopped container", "| throughput through a proxy device, nat=true"} {
		if strings.Contains(md, absent) {
			t.Errorf("report has a row %q with no figures:\n%s", absent, md)
		}
	}
}
