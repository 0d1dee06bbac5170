// Command dialectbench measures issues 16 and 17's speed targets end to
// end through a running hangard (bench/dialects.sh builds and starts one
// on a scratch data directory): the virt JSON-RPC API's
// virt.instance.query over 1000 real containers and its change events to
// 10 subscribers driven by real changes through the LXD API, and the /v/
// API's VM list over 1000 VM records in a 5-level group tree and its
// create with the quota check over that tree.
//
// It uses the in-tree clients (client/virt, client/velocity and the LXD
// SDK in client/) on the unix socket, so every figure is a round trip:
// the server's time plus the socket and the client's encoding and
// decoding, an upper bound of the server's time.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hangar-dev/hangar/api"
	wire "github.com/hangar-dev/hangar/api/velocity"
	"github.com/hangar-dev/hangar/client"
	velocity "github.com/hangar-dev/hangar/client/velocity"
	virtclient "github.com/hangar-dev/hangar/client/virt"
)

type config struct {
	socket     string
	containers int
	vms        int
	changes    int
	writers    int
	subs       int
	runs       int
	creates    int
	user, pass string
	vmCreate   string
	only       string
}

func main() {
	var c config
	flag.StringVar(&c.socket, "socket", "", "hangard's unix socket")
	flag.IntVar(&c.containers, "containers", 1000, "containers to create from the busybox image (not started)")
	flag.IntVar(&c.vms, "vms", 1000, "VM records to create in the leaf group (not started)")
	flag.IntVar(&c.changes, "changes", 2000, "changes to drive for the event figure")
	flag.IntVar(&c.writers, "writers", 8, "concurrent writers of the changes")
	flag.IntVar(&c.subs, "subscribers", 10, "websocket sessions subscribed to virt.instance.query")
	flag.IntVar(&c.runs, "runs", 50, "runs of each list/query timing")
	flag.IntVar(&c.creates, "creates", 20, "timed creates in the limited leaf and in the unlimited project each")
	flag.StringVar(&c.user, "user", "bench", "the local user the /v/ part logs in as (made by the script)")
	flag.StringVar(&c.vmCreate, "vm-create", "velocity", "how the VM records are made: velocity (PUT /v/vm/efi) or lxd (POST /1.0/instances, type virtual-machine, source none)")
	flag.StringVar(&c.only, "only", "virt,velocity", "parts to run")
	flag.Parse()
	c.pass = os.Getenv("DIALECTBENCH_PASSWORD")
	if c.socket == "" {
		fmt.Fprintln(os.Stderr, "dialectbench: --socket is required")
		os.Exit(2)
	}
	if c.vmCreate != "velocity" && c.vmCreate != "lxd" {
		fmt.Fprintln(os.Stderr, "dialectbench: --vm-create: want velocity or lxd")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	lxd, err := client.Connect(c.socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dialectbench:", err)
		os.Exit(1)
	}
	defer lxd.Close()
	b := &bench{c: c, lxd: lxd, raw: unixClient(c.socket)}
	for _, part := range strings.Split(c.only, ",") {
		switch part {
		case "virt":
			err = b.virt(ctx)
		case "velocity":
			err = b.velocity(ctx)
		default:
			err = fmt.Errorf("--only: unknown part %q", part)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "dialectbench: %s: %v\n", part, err)
			os.Exit(1)
		}
	}
}

type bench struct {
	c   config
	lxd *client.Client
	raw *http.Client
}

func unixClient(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}}
}

type series []time.Duration

func (s series) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append(series(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c[int(q*float64(len(c)-1)+0.5)]
}

func (s series) String() string {
	return fmt.Sprintf("median %s, p90 %s, min %s, max %s (%d runs)", ms(s.quantile(0.5)), ms(s.quantile(0.9)), ms(s.quantile(0)), ms(s.quantile(1)), len(s))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// timed runs f n times and returns each run's time.
func timed(n int, f func() error) (series, error) {
	var s series
	for range n {
		t0 := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		s = append(s, time.Since(t0))
	}
	return s, nil
}

// parallel runs f(i) for i in [0, n) on workers goroutines; the first
// error stops the rest.
func parallel(n, workers int, f func(i int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	var failed atomic.Bool
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

func wait(ctx context.Context, op *client.Operation, err error) error {
	if err != nil {
		return err
	}
	return op.Wait(ctx)
}

func cname(i int) string { return fmt.Sprintf("c%03d", i) }

// virt is issue 16's part.
func (b *bench) virt(ctx context.Context) error {
	n := b.c.containers
	fmt.Printf("== issue 16: virt JSON-RPC API over %d containers\n", n)
	t0 := time.Now()
	err := parallel(n, 4, func(i int) error {
		op, err := b.lxd.CreateInstance(ctx, api.InstancesPost{Name: cname(i), Type: "container",
			Source: api.InstanceSource{Type: "image", Alias: "busybox"}})
		if err := wait(ctx, op, err); err != nil {
			return fmt.Errorf("create %s: %w", cname(i), err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	took := time.Since(t0)
	fmt.Printf("created %d containers (not started) from the busybox image through the LXD API, 4 at a time: %.1f s (%.1f/s)\n",
		n, took.Seconds(), float64(n)/took.Seconds())

	c, err := virtclient.Dial(ctx, "ws://unix/api/current", virtclient.Options{Socket: b.c.socket})
	if err != nil {
		return err
	}
	defer c.Close()
	queries := []struct {
		what   string
		params []any
	}{
		{`filter [["name","^","c1"],["status","=","STOPPED"]], select name,status,memory,image.os`,
			[]any{[]any{[]any{"name", "^", "c1"}, []any{"status", "=", "STOPPED"}}, map[string]any{"select": []any{"name", "status", "memory", "image.os"}}}},
		{`no filter, select name,status,memory,image.os`,
			[]any{[]any{}, map[string]any{"select": []any{"name", "status", "memory", "image.os"}}}},
		{`no filter, no options (full entries)`, nil},
	}
	for _, q := range queries {
		var out []json.RawMessage
		if err := c.Call(ctx, &out, "virt.instance.query", q.params...); err != nil {
			return fmt.Errorf("virt.instance.query (%s): %w", q.what, err)
		}
		entries := len(out)
		var size int
		s, err := timed(b.c.runs, func() error {
			var raw json.RawMessage
			if err := c.Call(ctx, &raw, "virt.instance.query", q.params...); err != nil {
				return err
			}
			size = len(raw)
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Printf("virt.instance.query, %s: %d entries, %d bytes: %s\n", q.what, entries, size, s)
	}
	if len(queries) > 0 {
		var sample []map[string]any
		if err := c.Call(ctx, &sample, "virt.instance.query", queries[0].params...); err == nil && len(sample) > 0 {
			e, _ := json.Marshal(sample[0])
			fmt.Printf("  first entry of the filtered query: %s\n", e)
		}
	}
	for _, rec := range []int{1, 2} {
		var size int
		s, err := timed(b.c.runs, func() error {
			resp, err := b.raw.Get("http://unix/1.0/instances?recursion=" + strconv.Itoa(rec))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET /1.0/instances?recursion=%d: %s", rec, resp.Status)
			}
			size = len(body)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Printf("LXD API GET /1.0/instances?recursion=%d (body read, not decoded), %d bytes: %s\n", rec, size, s)
	}
	return b.events(ctx)
}

// events drives real changes (environment.BENCH through PATCH on the LXD
// API) and counts what every subscriber receives.
func (b *bench) events(ctx context.Context) error {
	n, subs := b.c.changes, b.c.subs
	fmt.Printf("== change events: %d subscribers, %d changes (PATCH environment.BENCH over %d instances, %d writers)\n",
		subs, n, b.c.containers, b.c.writers)
	type key struct {
		id    string
		value string
	}
	type tally struct {
		got      map[key]int
		messages int
		last     time.Time
	}
	tallies := make([]*tally, subs)
	var clients []*virtclient.Client
	for i := range subs {
		c, err := virtclient.Dial(ctx, "ws://unix/api/current", virtclient.Options{Socket: b.c.socket})
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Subscribe(ctx, "virt.instance.query"); err != nil {
			return err
		}
		clients = append(clients, c)
		tallies[i] = &tally{got: map[key]int{}}
	}
	// Let the watcher's cache fill before the first change.
	time.Sleep(2 * time.Second)
	for _, c := range clients {
	drain:
		for {
			select {
			case <-c.Updates():
			default:
				break drain
			}
		}
	}
	want := map[key]bool{}
	for j := range n {
		want[key{cname(j % b.c.containers), strconv.Itoa(j / b.c.containers)}] = true
	}
	start := time.Now()
	var readers sync.WaitGroup
	stop := make(chan struct{})
	for i, c := range clients {
		readers.Add(1)
		go func(t *tally, c *virtclient.Client) {
			defer readers.Done()
			for {
				select {
				case u, ok := <-c.Updates():
					if !ok {
						return
					}
					t.messages++
					if u.Msg != "changed" {
						continue
					}
					env, _ := u.Fields["environment"].(map[string]any)
					v, ok := env["BENCH"].(string)
					if !ok {
						continue
					}
					id, _ := u.ID.(string)
					k := key{id, v}
					if want[k] {
						t.got[k]++
						t.last = time.Now()
						if len(t.got) == len(want) {
							return
						}
					}
				case <-stop:
					return
				}
			}
		}(tallies[i], c)
	}
	err := parallel(n, b.c.writers, func(j int) error {
		name := cname(j % b.c.containers)
		patch := map[string]any{"config": map[string]string{"environment.BENCH": strconv.Itoa(j / b.c.containers)}}
		if err := b.lxd.PatchInstance(ctx, name, patch, ""); err != nil {
			return fmt.Errorf("patch %s: %w", name, err)
		}
		return nil
	})
	accepted := time.Since(start)
	if err != nil {
		close(stop)
		return err
	}
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		// Whatever has not arrived 30 s after the last change is lost.
		close(stop)
		<-done
	case <-ctx.Done():
		close(stop)
		<-done
	}
	fmt.Printf("changes accepted by the core (PATCH answered): %d in %.2f s = %.0f changes/s\n", n, accepted.Seconds(), float64(n)/accepted.Seconds())
	var total int
	var lastAll time.Time
	lost := 0
	for i, t := range tallies {
		dup := 0
		for _, c := range t.got {
			dup += c - 1
		}
		missing := len(want) - len(t.got)
		lost += missing
		total += len(t.got)
		if t.last.After(lastAll) {
			lastAll = t.last
		}
		d := t.last.Sub(start)
		fmt.Printf("  subscriber %d: %d/%d changes received (%d missing, %d duplicates, %d messages in all), last at %.2f s: %.0f events/s\n",
			i, len(t.got), len(want), missing, dup, t.messages, d.Seconds(), float64(len(t.got))/d.Seconds())
	}
	all := lastAll.Sub(start)
	fmt.Printf("delivered: %d events to %d subscribers in %.2f s (from the first change to the last event received): %.0f events/s in total, %.0f per subscriber; lost: %d\n",
		total, subs, all.Seconds(), float64(total)/all.Seconds(), float64(total)/all.Seconds()/float64(subs), lost)
	fmt.Printf("  the last event arrived %s after the last change was accepted\n", ms(all-accepted))
	return nil
}

const (
	levels  = 5
	freePrj = "vfree"
)

func level(i int) string { return fmt.Sprintf("v%d", i+1) }

// velocity is issue 17's part.
func (b *bench) velocity(ctx context.Context) error {
	fmt.Printf("== issue 17: /v/ API, %d VM records in the leaf of a %d-level group tree\n", b.c.vms, levels)
	if b.c.pass == "" {
		return errors.New("DIALECTBENCH_PASSWORD is not set (the password of --user)")
	}
	limits := map[string]string{
		"limits.cpu": "100000", "limits.memory": "100TiB", "limits.instances": "100000",
		"limits.virtual-machines": "100000", "limits.disk": "100TiB",
	}
	parent := ""
	for i := range levels {
		par := parent
		if err := b.lxd.CreateProject(ctx, api.ProjectsPost{Name: level(i), ProjectPut: api.ProjectPut{Config: limits, Parent: &par}}); err != nil {
			return fmt.Errorf("project %s: %w", level(i), err)
		}
		parent = level(i)
	}
	if err := b.lxd.CreateProject(ctx, api.ProjectsPost{Name: freePrj}); err != nil {
		return err
	}
	perm := func(p, e string) api.Permission {
		return api.Permission{EntityType: "project", EntityReference: "/1.0/projects/" + p, Entitlement: e}
	}
	if err := b.lxd.CreateAuthGroup(ctx, api.AuthGroupsPost{AuthGroupPost: api.AuthGroupPost{Name: "bench"}, AuthGroupPut: api.AuthGroupPut{
		Permissions: []api.Permission{perm(level(0), "can_view_instances"), perm(level(0), "can_manage_instances"),
			perm(freePrj, "can_view_instances"), perm(freePrj, "can_manage_instances")},
		Identities: map[string][]string{"user": {b.c.user}}}}); err != nil {
		return fmt.Errorf("group: %w", err)
	}
	fmt.Printf("projects %s (limits on every level: %v) and %s (no limits); group bench grants can_view_instances and can_manage_instances on %s and %s to user %s\n",
		strings.Join([]string{level(0), level(1), level(2), level(3), level(4)}, " > "), limits, freePrj, level(0), freePrj, b.c.user)

	v := velocity.NewUnix(b.c.socket)
	if _, err := v.Login(ctx, b.c.user, b.c.pass); err != nil {
		return fmt.Errorf("login: %w", err)
	}
	leaf := level(levels - 1)
	efi := func(name, gid string) wire.EFIRequest {
		return wire.EFIRequest{Name: name, GID: gid, CPUs: 1, MemoryMiB: 256}
	}
	each := make(series, b.c.vms)
	t0 := time.Now()
	err := parallel(b.c.vms, 4, func(i int) error {
		name := fmt.Sprintf("vm%03d", i)
		start := time.Now()
		defer func() { each[i] = time.Since(start) }()
		if b.c.vmCreate == "velocity" {
			if _, err := v.CreateEFI(ctx, efi(name, leaf)); err != nil {
				return fmt.Errorf("PUT /v/vm/efi %s: %w", name, err)
			}
			return nil
		}
		op, err := b.lxd.UseProject(leaf).CreateInstance(ctx, api.InstancesPost{Name: name, Type: "virtual-machine", Source: api.InstanceSource{Type: "none"},
			InstancePut: api.InstancePut{Config: map[string]string{"limits.cpu": "1", "limits.memory": "256MiB"},
				Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default", "size": "32MiB"}}}})
		if err := wait(ctx, op, err); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	took := time.Since(t0)
	how := "PUT /velocity/v/vm/efi (8 GiB empty disk, 1 CPU, 256 MiB)"
	if b.c.vmCreate == "lxd" {
		how = "the LXD API (type virtual-machine, source none, 32 MiB root, 1 CPU, 256 MiB)"
	}
	fmt.Printf("created %d VM records (not started) in %s through %s, 4 at a time: %.1f s (%.1f/s)\n",
		b.c.vms, leaf, how, took.Seconds(), float64(b.c.vms)/took.Seconds())
	if k := b.c.vms / 10; k > 0 {
		fmt.Printf("  one create (4 at a time), the first %d: median %s; the last %d: median %s\n",
			k, ms(each[:k].quantile(0.5)), k, ms(each[len(each)-k:].quantile(0.5)))
	}

	list, err := v.ListVMs(ctx, leaf)
	if err != nil {
		return err
	}
	states := map[wire.State]int{}
	for _, e := range list {
		states[e.State]++
	}
	fmt.Printf("POST /v/vm/list of %s shows %d VMs (states %v)\n", leaf, len(list), states)
	if len(list) != b.c.vms {
		return fmt.Errorf("the list shows %d VMs, want %d", len(list), b.c.vms)
	}
	s, err := timed(b.c.runs, func() error {
		l, err := v.ListVMs(ctx, leaf)
		if err == nil && len(l) != b.c.vms {
			err = fmt.Errorf("list: %d VMs", len(l))
		}
		return err
	})
	if err != nil {
		return err
	}
	fmt.Printf("POST /v/vm/list of %s (%d VMs; view permission held 4 levels up): %s\n", leaf, b.c.vms, s)

	// Creates alternate between the leaf and the unlimited project, so
	// that the machine's load falls on both alike; then the same with the
	// limits taken off the five levels (the same 1000 VMs in the leaf),
	// which tells the limits' part from what grows with the project.
	var made [][2]string
	pair := func(prefix string) (series, series, error) {
		var inLeaf, free series
		for i := range b.c.creates {
			for _, g := range []string{leaf, freePrj} {
				name := fmt.Sprintf("%s%02d", prefix, i)
				t0 := time.Now()
				if _, err := v.CreateEFI(ctx, efi(name, g)); err != nil {
					return nil, nil, fmt.Errorf("create %s in %s: %w", name, g, err)
				}
				d := time.Since(t0)
				made = append(made, [2]string{g, name})
				if g == leaf {
					inLeaf = append(inLeaf, d)
				} else {
					free = append(free, d)
				}
			}
		}
		return inLeaf, free, nil
	}
	limited, free, err := pair("q")
	if err != nil {
		return err
	}
	fmt.Printf("PUT /v/vm/efi in %s (limits on all %d levels, %d VMs in the tree): %s\n", leaf, levels, b.c.vms, limited)
	fmt.Printf("PUT /v/vm/efi in %s (no limits, flat, near empty): %s\n", freePrj, free)
	fmt.Printf("  difference of the medians: %s\n", ms(limited.quantile(0.5)-free.quantile(0.5)))
	for i := range levels {
		p, etag, err := b.lxd.GetProject(ctx, level(i))
		if err != nil {
			return err
		}
		for k := range limits {
			delete(p.Config, k)
		}
		if err := b.lxd.UpdateProject(ctx, level(i), p.ProjectPut, etag); err != nil {
			return fmt.Errorf("unset the limits of %s: %w", level(i), err)
		}
	}
	unlimited, free2, err := pair("u")
	if err != nil {
		return err
	}
	fmt.Printf("PUT /v/vm/efi in %s (limits taken off all %d levels, same %d VMs): %s\n", leaf, levels, b.c.vms, unlimited)
	fmt.Printf("PUT /v/vm/efi in %s (no limits, flat, near empty): %s\n", freePrj, free2)
	fmt.Printf("  the limits' part (median with limits - median without, same tree): %s\n", ms(limited.quantile(0.5)-unlimited.quantile(0.5)))
	for _, m := range made {
		op, err := b.lxd.UseProject(m[0]).DeleteInstance(ctx, m[1])
		if err := wait(ctx, op, err); err != nil {
			return fmt.Errorf("delete %s/%s: %w", m[0], m[1], err)
		}
	}
	fmt.Printf("deleted the %d timed creates\n", len(made))
	return nil
}
