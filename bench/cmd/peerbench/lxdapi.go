package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// lxdAPI is what hangard and LXD share: the LXD REST API 1.0 on a unix
// socket, spoken by hangar's own Go SDK to both.
type lxdAPI struct {
	socket string
	c      *client.Client
	hc     *http.Client
	// evNames are the instances the events triggers work on.
	evNames []string
	// startInCreate: the daemon starts an instance created with
	// "start": true (hangard); LXD's POST ignores it (lxc launch starts
	// with a second request).
	startInCreate bool
}

func (a *lxdAPI) connect() error {
	c, err := client.Connect(a.socket)
	if err != nil {
		return err
	}
	c.UserAgent = "peerbench"
	a.c = c
	a.hc = unixHTTP(a.socket)
	return nil
}

// waitReady waits until GET /1.0 answers.
func (a *lxdAPI) waitReady(ctx context.Context, timeout time.Duration, d *daemon) error {
	var last error
	ok := waitFor(ctx, timeout, func() bool {
		if d != nil && d.exited() {
			return true
		}
		_, _, last = a.c.GetServer(ctx)
		return last == nil
	})
	if d != nil && d.exited() {
		return fmt.Errorf("%s exited during start-up", d.name)
	}
	if !ok {
		return fmt.Errorf("not ready after %s: %v", timeout, last)
	}
	return nil
}

func (a *lxdAPI) rest() (map[string]string, *http.Client) {
	return map[string]string{
		restRec1: "http://unix/1.0/instances?recursion=1",
		restRec2: "http://unix/1.0/instances?recursion=2",
	}, a.hc
}

func (a *lxdAPI) createMany(ctx context.Context, names []string, start bool) error {
	return parallel(ctx, 4, names, func(ctx context.Context, n string) error {
		op, err := a.c.CreateInstance(ctx, api.InstancesPost{
			Name:   n,
			Type:   "container",
			Source: api.InstanceSource{Type: "image", Alias: "busybox"},
			Start:  start && a.startInCreate,
		})
		if err != nil {
			return fmt.Errorf("create %s: %w", n, err)
		}
		if err := op.Wait(ctx); err != nil {
			return fmt.Errorf("create %s: %w", n, err)
		}
		if !start || a.startInCreate {
			return nil
		}
		op, err = a.c.UpdateInstanceState(ctx, n, api.InstanceStatePut{Action: "start", Timeout: -1})
		if err == nil {
			err = op.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("start %s: %w", n, err)
		}
		return nil
	})
}

func (a *lxdAPI) count(ctx context.Context) (int, int, error) {
	insts, err := a.c.GetInstances(ctx)
	if err != nil {
		return 0, 0, err
	}
	running := 0
	for _, inst := range insts {
		if inst.StatusCode == api.Running {
			running++
		}
	}
	return len(insts), running, nil
}

// deleteNames stops (forcibly) and deletes the named instances; nil names
// means all of them.
func (a *lxdAPI) deleteNames(ctx context.Context, names []string) error {
	insts, err := a.c.GetInstances(ctx)
	if err != nil {
		return err
	}
	var todo []api.Instance
	for _, inst := range insts {
		if names == nil || containsString(names, inst.Name) {
			todo = append(todo, inst)
		}
	}
	return parallel(ctx, 4, todo, func(ctx context.Context, inst api.Instance) error {
		if inst.StatusCode != api.Stopped {
			op, err := a.c.UpdateInstanceState(ctx, inst.Name, api.InstanceStatePut{Action: "stop", Force: true, Timeout: -1})
			if err == nil {
				err = op.Wait(ctx)
			}
			if err != nil && !strings.Contains(err.Error(), "already stopped") {
				return fmt.Errorf("stop %s: %w", inst.Name, err)
			}
		}
		op, err := a.c.DeleteInstance(ctx, inst.Name)
		if err == nil {
			err = op.Wait(ctx)
		}
		if err != nil {
			return fmt.Errorf("delete %s: %w", inst.Name, err)
		}
		return nil
	})
}

func (a *lxdAPI) deleteAll(ctx context.Context) error { return a.deleteNames(ctx, nil) }

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Events: PATCH triggers work on 4 stopped instances, freeze/unfreeze
// triggers on 2 running ones.
const (
	patchWorkers = 4
	pauseWorkers = 2
)

func (a *lxdAPI) eventsPrepare(ctx context.Context, kind string) error {
	switch kind {
	case eventsPatch:
		a.evNames = names("pb-evp", 0, patchWorkers)
		return a.createMany(ctx, a.evNames, false)
	case eventsPause:
		a.evNames = names("pb-evf", 0, pauseWorkers)
		return a.createMany(ctx, a.evNames, true)
	}
	return fmt.Errorf("unknown events kind %q", kind)
}

func (a *lxdAPI) eventsCleanup(ctx context.Context, kind string) {
	if len(a.evNames) == 0 {
		return
	}
	if err := a.deleteNames(ctx, a.evNames); err != nil {
		logf("events clean-up: %v", err)
	}
	a.evNames = nil
}

// events subscribes subs listeners to lifecycle events, has each worker
// trigger its events, and returns the delivered events per second: events
// received by all listeners together over the time from the first trigger
// to the last delivery.
func (a *lxdAPI) events(ctx context.Context, kind string, subs, triggers int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	actions := map[string]bool{"instance-updated": true}
	perWorker := triggers
	if kind == eventsPause {
		actions = map[string]bool{"instance-paused": true, "instance-resumed": true}
		perWorker = max(2, triggers/2&^1) // even: every instance ends unfrozen
	}
	expected := perWorker * len(a.evNames)

	listeners := make([]*client.EventListener, 0, subs)
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for range subs {
		l, err := a.c.GetEvents(ctx, []string{api.EventTypeLifecycle}, 0)
		if err != nil {
			return 0, fmt.Errorf("subscribe: %w", err)
		}
		listeners = append(listeners, l)
	}
	// The handshake is done; give the daemon a moment to register the
	// listeners before the clock starts.
	time.Sleep(300 * time.Millisecond)

	var (
		mu   sync.Mutex
		last time.Time
		wg   sync.WaitGroup
	)
	counts := make([]atomic.Int64, subs)
	for i, l := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ev := range l.Events() {
				var md api.EventLifecycle
				if json.Unmarshal(ev.Metadata, &md) != nil || !actions[md.Action] || !strings.HasPrefix(md.Source, "/1.0/instances/pb-ev") {
					continue
				}
				if counts[i].Add(1) == int64(expected) {
					mu.Lock()
					if t := time.Now(); t.After(last) {
						last = t
					}
					mu.Unlock()
					return
				}
			}
		}()
	}

	start := time.Now()
	err := parallel(ctx, len(a.evNames), a.evNames, func(ctx context.Context, name string) error {
		for j := range perWorker {
			if kind == eventsPatch {
				patch := map[string]any{"config": map[string]string{"user.peerbench": strconv.Itoa(j)}}
				if err := a.c.PatchInstance(ctx, name, patch, ""); err != nil {
					return fmt.Errorf("PATCH %s: %w", name, err)
				}
				continue
			}
			action := "freeze"
			if j%2 == 1 {
				action = "unfreeze"
			}
			op, err := a.c.UpdateInstanceState(ctx, name, api.InstanceStatePut{Action: action, Timeout: -1})
			if err == nil {
				err = op.Wait(ctx)
			}
			if err != nil {
				return fmt.Errorf("%s %s: %w", action, name, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		var total int64
		for i := range counts {
			total += counts[i].Load()
		}
		return 0, fmt.Errorf("only %d of %d events delivered within 30s of the last trigger", total, subs*expected)
	}
	secs := last.Sub(start).Seconds()
	if secs <= 0 {
		return 0, fmt.Errorf("no time elapsed")
	}
	return float64(subs*expected) / secs, nil
}
