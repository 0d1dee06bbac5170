// Command instbench measures issue 15's figures through a running hangard
// (bench/issue15.sh builds and starts one): standby and restore of a VM
// through the instances API beside the same through the LXD API, the time
// from a connection to an auto-standby'd VM until it is answered, and the
// throughput of a guest's output over the logs Server-Sent Events.
//
// It talks plain HTTP to both APIs (no SDK in between, so that the figures
// are the daemon's): the instances API on its own TCP listener with a
// bearer token, the LXD API on the unix socket.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	socket := flag.String("socket", "", "hangard's unix socket (LXD API)")
	base := flag.String("api", "", "the instances API's base URL (http://HOST:PORT/)")
	token := flag.String("token", "", "bearer token for the instances API")
	runs := flag.Int("runs", 5, "runs of each measurement")
	memory := flag.String("memory", "512MB", "memory of the standby VM")
	logMB := flag.Int("log-mb", 256, "MiB of numbered 100-byte lines the log VM prints")
	printlines := flag.String("printlines", "", "static printlines binary (internal/driver/qemu/testdata/printlines) for the log VM")
	only := flag.String("only", "standby,wake,logs", "measurements to run")
	flag.Parse()
	b := &bench{api: strings.TrimSuffix(*base, "/"), token: *token, lxd: unixClient(*socket), hc: &http.Client{}}
	b.printlines = *printlines
	if err := b.run(context.Background(), *runs, *memory, *logMB, *only); err != nil {
		fmt.Fprintln(os.Stderr, "instbench:", err)
		os.Exit(1)
	}
}

type bench struct {
	api, token string
	hc, lxd    *http.Client
	registry   string
	printlines string
}

func unixClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
}

type series []time.Duration

func (s series) quantile(q float64) time.Duration {
	c := append(series(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c[int(q*float64(len(c)-1)+0.5)]
}

func (s series) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = ms(d)
	}
	return fmt.Sprintf("median %s, p90 %s (runs: %s)", ms(s.quantile(0.5)), ms(s.quantile(0.9)), strings.Join(parts, ", "))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// call sends a request to the instances API and decodes a 2xx answer
// into out.
func (b *bench) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.api+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

// lxdState changes an instance's state through the LXD API and waits for
// the operation.
func (b *bench) lxdState(ctx context.Context, name string, body map[string]any) error {
	data, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, "http://hangar/1.0/instances/"+name+"/state", bytes.NewReader(data))
	resp, err := b.lxd.Do(req)
	if err != nil {
		return err
	}
	var op struct {
		Operation string `json:"operation"`
		Error     string `json:"error"`
	}
	err = json.NewDecoder(resp.Body).Decode(&op)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if op.Operation == "" {
		return fmt.Errorf("lxd state %s: %s", name, op.Error)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, "http://hangar"+op.Operation+"/wait", nil)
	if resp, err = b.lxd.Do(req); err != nil {
		return err
	}
	var w struct {
		Metadata struct {
			Status string `json:"status"`
			Err    string `json:"err"`
		} `json:"metadata"`
	}
	err = json.NewDecoder(resp.Body).Decode(&w)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if w.Metadata.Status != "Success" {
		return fmt.Errorf("lxd state %s: %s", name, w.Metadata.Err)
	}
	return nil
}

type instance struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	State   string `json:"state"`
	Network struct {
		IP *string `json:"ip"`
	} `json:"network"`
}

func (b *bench) create(ctx context.Context, body map[string]any) (instance, error) {
	var in instance
	if err := b.call(ctx, http.MethodPost, "/instances", body, &in); err != nil {
		return in, err
	}
	return in, b.wait(ctx, in.ID, "Running", 3*time.Minute)
}

func (b *bench) wait(ctx context.Context, id, state string, timeout time.Duration) error {
	var w struct {
		State    string `json:"state"`
		TimedOut bool   `json:"timed_out"`
	}
	if err := b.call(ctx, http.MethodGet, "/instances/"+id+"/wait?state="+state+"&timeout="+timeout.String(), nil, &w); err != nil {
		return err
	}
	if w.State != state {
		return fmt.Errorf("instance %s is %s, not %s (timed out: %v)", id, w.State, state, w.TimedOut)
	}
	return nil
}

func (b *bench) remove(ctx context.Context, id string) {
	if err := b.call(ctx, http.MethodDelete, "/instances/"+id, nil, nil); err != nil {
		fmt.Fprintln(os.Stderr, "instbench: delete:", err)
	}
}

func (b *bench) run(ctx context.Context, runs int, memory string, logMB int, only string) error {
	host, err := serveRegistry()
	if err != nil {
		return err
	}
	b.registry = host
	for _, m := range strings.Split(only, ",") {
		switch m {
		case "standby":
			err = b.standby(ctx, runs, memory)
		case "wake":
			err = b.wake(ctx, runs)
		case "logs":
			err = b.logs(ctx, logMB)
		default:
			err = fmt.Errorf("unknown measurement %q", m)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
	}
	return nil
}

// standby times standby and restore of one VM through both APIs,
// interleaved so that load from elsewhere hits both alike.
func (b *bench) standby(ctx context.Context, runs int, memory string) error {
	ref, err := pushAppImage(b.registry, "bench/sleeper:1", "#!/bin/sh\nexec sleep 2147483647\n", nil)
	if err != nil {
		return err
	}
	in, err := b.create(ctx, map[string]any{"name": "bench-standby", "image": ref, "size": memory, "vcpus": 1})
	if err != nil {
		return err
	}
	defer b.remove(ctx, in.ID)
	var apiStandby, apiRestore, lxdStandby, lxdRestore series
	timed := func(s *series, f func() error) error {
		start := time.Now()
		if err := f(); err != nil {
			return err
		}
		*s = append(*s, time.Since(start))
		return nil
	}
	api := func() error {
		if err := timed(&apiStandby, func() error {
			return b.call(ctx, http.MethodPost, "/instances/"+in.ID+"/standby", map[string]any{}, nil)
		}); err != nil {
			return err
		}
		return timed(&apiRestore, func() error { return b.call(ctx, http.MethodPost, "/instances/"+in.ID+"/restore", nil, nil) })
	}
	lxd := func() error {
		if err := timed(&lxdStandby, func() error {
			return b.lxdState(ctx, in.Name, map[string]any{"action": "stop", "stateful": true, "timeout": -1})
		}); err != nil {
			return err
		}
		return timed(&lxdRestore, func() error { return b.lxdState(ctx, in.Name, map[string]any{"action": "start", "timeout": -1}) })
	}
	for i := 0; i < runs; i++ {
		// Each API goes first every other run: what the one before
		// leaves (a guest busy after its restore) hits both alike.
		first, second := api, lxd
		if i%2 == 1 {
			first, second = lxd, api
		}
		if err := first(); err != nil {
			return err
		}
		if err := second(); err != nil {
			return err
		}
	}
	fmt.Printf("VM %s, 1 vCPU\n", memory)
	fmt.Printf("standby via instances API:  %s\n", apiStandby)
	fmt.Printf("standby via LXD API:        %s\n", lxdStandby)
	fmt.Printf("  ratio (target <= 1.1x):   %.2fx\n", float64(apiStandby.quantile(0.5))/float64(lxdStandby.quantile(0.5)))
	fmt.Printf("restore via instances API:  %s (target <= 1 s)\n", apiRestore)
	fmt.Printf("restore via LXD API:        %s\n", lxdRestore)
	fmt.Printf("  ratio (target <= 1.1x):   %.2fx\n", float64(apiRestore.quantile(0.5))/float64(lxdRestore.quantile(0.5)))
	return nil
}

// wake times a TCP connection and an HTTP answer from a VM that
// auto-standby put to sleep: from the connect until the first byte of the
// answer.
func (b *bench) wake(ctx context.Context, runs int) error {
	ref, err := pushAppImage(b.registry, "bench/web:1", "#!/bin/sh\nmkdir -p /tmp/www\necho awake >/tmp/www/index.html\nexec httpd -f -p 8080 -h /tmp/www\n", nil)
	if err != nil {
		return err
	}
	in, err := b.create(ctx, map[string]any{"name": "bench-wake", "image": ref, "size": "256MB", "vcpus": 1,
		"auto_standby": map[string]any{"enabled": true, "idle_timeout": "2s"}})
	if err != nil {
		return err
	}
	defer b.remove(ctx, in.ID)
	if err := b.call(ctx, http.MethodGet, "/instances/"+in.ID, nil, &in); err != nil {
		return err
	}
	if in.Network.IP == nil {
		var raw json.RawMessage
		_ = b.call(ctx, http.MethodGet, "/instances/"+in.ID, nil, &raw)
		return fmt.Errorf("instance %s has no IP: %s", in.Name, raw)
	}
	url := "http://" + net.JoinHostPort(*in.Network.IP, "8080") + "/"
	var wakes series
	for i := 0; i < runs; i++ {
		if err := b.wait(ctx, in.ID, "Standby", 2*time.Minute); err != nil {
			return err
		}
		start := time.Now()
		resp, err := (&http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}).Get(url)
		if err != nil {
			return fmt.Errorf("connect to the sleeping VM: %w", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wakes = append(wakes, time.Since(start))
		if strings.TrimSpace(string(body)) != "awake" {
			return fmt.Errorf("answer %q", body)
		}
	}
	fmt.Printf("connect to a standby VM until answered: %s\n", wakes)
	return nil
}

// logs reads a VM's output over SSE while printlines in it prints
// numbered 100-byte lines as fast as it can (buffered 256 KiB writes, no
// formatting cost: under TCG a shell loop or seq measures the emulated
// CPU, not the log path), checks that no line is lost and reports the
// throughput from the first line to the last.
func (b *bench) logs(ctx context.Context, mb int) error {
	if b.printlines == "" {
		return fmt.Errorf("--printlines is needed")
	}
	bin, err := os.ReadFile(b.printlines)
	if err != nil {
		return err
	}
	ref, err := pushAppImage(b.registry, "bench/printer:1", fmt.Sprintf("#!/bin/sh\nsleep 3\n/app/printlines %d\nexec sleep 2147483647\n", mb),
		map[string][]byte{"app/printlines": bin})
	if err != nil {
		return err
	}
	in, err := b.create(ctx, map[string]any{"name": "bench-logs", "image": ref, "size": "256MB", "vcpus": 1})
	if err != nil {
		return err
	}
	defer b.remove(ctx, in.ID)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.api+"/instances/"+in.ID+"/logs?follow=true&tail=100000000", nil)
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("logs: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	next, bytesRead := int64(0), 0
	var first time.Time
	for sc.Scan() {
		line, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		if end, ok := bytes.CutPrefix(line, []byte("END ")); ok {
			d := time.Since(first)
			var n, guestNS int64
			fmt.Sscan(string(end), &n, &guestNS)
			if n != next {
				return fmt.Errorf("END after %d lines, the guest printed %d", next, n)
			}
			fmt.Printf("logs over SSE: %d lines, %.1f MB in %s: %.1f MB/s end to end (the guest's writes: %.1f MB/s), no line lost (target >= 50 MB/s)\n",
				n, float64(bytesRead)/1e6, ms(d), float64(bytesRead)/1e6/d.Seconds(), float64(bytesRead)/1e6/(float64(guestNS)/1e9))
			return nil
		}
		if len(line) < 11 || line[0] != 'L' {
			continue // a line of the boot, not of printlines
		}
		n, err := strconv.ParseInt(string(line[1:11]), 10, 64)
		if err != nil {
			continue
		}
		if n == 0 && next == 0 {
			first = time.Now()
		}
		if n != next {
			return fmt.Errorf("line %d after line %d: %d lines lost", n, next-1, n-next)
		}
		bytesRead += len(line) + 1
		next++
	}
	return fmt.Errorf("stream ended after line %d: %v", next-1, sc.Err())
}
