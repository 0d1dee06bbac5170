// Command execapi times the LXD exec API call step by step, against
// hangard or LXD (the same API): POST /1.0/instances/NAME/exec with
// wait-for-websocket until the operation comes back with its websocket
// secrets; the four websockets (control, 0, 1, 2) dialled at once until
// all are connected; from then until stdout and stderr end (the command
// ran and exited); GET /1.0/operations/ID/wait until the return code. It
// speaks the protocol itself rather than through the SDK, so that each
// step has its own clock; peerbench times the SDK call as a whole.
//
//	go run ./bench/cmd/execapi -socket /path/unix.socket -n 200 NAME [COMMAND...]
//
// It prints the median, p90, min and max of every step and of the whole,
// in ms, and is meant to run beside strace or perf on the daemon.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

var steps = []string{"POST exec", "websockets", "run", "wait", "total"}

func main() {
	socket := flag.String("socket", "", "the daemon's unix socket (hangard's, or LXD's $LXD_DIR/unix.socket)")
	n := flag.Int("n", 100, "execs to time, after 3 untimed")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: execapi -socket SOCKET [-n N] INSTANCE [COMMAND...]   (COMMAND defaults to true)")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *socket == "" || flag.NArg() < 1 || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	name, command := flag.Arg(0), flag.Args()[1:]
	if len(command) == 0 {
		command = []string{"true"}
	}
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", *socket)
		},
		MaxIdleConnsPerHost: 8,
	}}
	ctx := context.Background()
	times := map[string][]float64{}
	for i := range *n + 3 {
		t, err := execOnce(ctx, hc, name, command)
		if err != nil {
			fmt.Fprintln(os.Stderr, "execapi:", err)
			os.Exit(1)
		}
		if i >= 3 {
			for k, v := range t {
				times[k] = append(times[k], v)
			}
		}
	}
	fmt.Printf("%d execs of %v in %s (ms)\n%-12s %8s %8s %8s %8s\n", *n, command, name, "step", "median", "p90", "min", "max")
	for _, s := range steps {
		v := times[s]
		slices.Sort(v)
		med := v[len(v)/2]
		if len(v)%2 == 0 {
			med = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		p90 := v[int(math.Ceil(0.9*float64(len(v))))-1]
		fmt.Printf("%-12s %8.2f %8.2f %8.2f %8.2f\n", s, med, p90, v[0], v[len(v)-1])
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// execOnce runs the command once and returns the time of each step.
func execOnce(ctx context.Context, hc *http.Client, name string, command []string) (map[string]float64, error) {
	t0 := time.Now()
	body, _ := json.Marshal(map[string]any{"command": command, "wait-for-websocket": true, "interactive": false})
	var op struct {
		Operation string `json:"operation"`
		Metadata  struct {
			ID       string `json:"id"`
			Metadata struct {
				FDs map[string]string `json:"fds"`
			} `json:"metadata"`
		} `json:"metadata"`
	}
	if err := call(ctx, hc, http.MethodPost, "/1.0/instances/"+url.PathEscape(name)+"/exec", body, &op); err != nil {
		return nil, err
	}
	t1 := time.Now()
	fds := op.Metadata.Metadata.FDs
	keys := []string{"control", "0", "1", "2"}
	conns := make([]*websocket.Conn, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := "ws://d/1.0/operations/" + url.PathEscape(op.Metadata.ID) + "/websocket?secret=" + url.QueryEscape(fds[k])
			conns[i], _, errs[i] = websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: hc})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("websockets: %w", err)
	}
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
	}()
	t2 := time.Now()
	go func() { // the control stream: read to process the daemon's close
		for {
			if _, _, err := conns[0].Read(ctx); err != nil {
				return
			}
		}
	}()
	// No input: LXD's end of stream is an empty text message.
	if err := conns[1].Write(ctx, websocket.MessageText, nil); err != nil {
		return nil, fmt.Errorf("stdin: %w", err)
	}
	for _, c := range conns[2:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				typ, _, err := c.Read(ctx)
				if err != nil || typ == websocket.MessageText {
					return
				}
			}
		}()
	}
	wg.Wait()
	t3 := time.Now()
	var done struct {
		Metadata struct {
			Status   string         `json:"status"`
			Err      string         `json:"err"`
			Metadata map[string]any `json:"metadata"`
		} `json:"metadata"`
	}
	if err := call(ctx, hc, http.MethodGet, "/1.0/operations/"+url.PathEscape(op.Metadata.ID)+"/wait?timeout=-1", nil, &done); err != nil {
		return nil, err
	}
	t4 := time.Now()
	if done.Metadata.Err != "" {
		return nil, fmt.Errorf("exec: %s", done.Metadata.Err)
	}
	if rc, _ := done.Metadata.Metadata["return"].(float64); rc != 0 {
		return nil, fmt.Errorf("exec: %v exited %v", command, rc)
	}
	return map[string]float64{"POST exec": ms(t1.Sub(t0)), "websockets": ms(t2.Sub(t1)), "run": ms(t3.Sub(t2)), "wait": ms(t4.Sub(t3)), "total": ms(t4.Sub(t0))}, nil
}

// call sends one request and decodes its JSON response into out.
func call(ctx context.Context, hc *http.Client, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://d"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}
