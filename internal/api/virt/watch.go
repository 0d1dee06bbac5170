package virt

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
)

// resyncEvery is how often, while anyone is subscribed, the watcher
// compares every instance with its cache: some changes publish no
// event (a VM's guest reporting its address).
const resyncEvery = 5 * time.Second

type entryKey struct{ project, name string }

// watcher is the daemon-wide source of virt.instance.query and
// core.get_jobs events: it listens to the core's event hub, keeps the
// last entry of every instance (one cache for all subscribers), and on
// each change sends the difference, encoded once, to every session
// subscribed in that project that holds the role.
type watcher struct {
	s    *Server
	ctx  context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	entries map[entryKey]map[string]any
	ready   bool // entries filled once
	subs    map[*session]bool
	seen    map[string]bool // operations announced (added) already
}

func newWatcher(s *Server) *watcher {
	ctx, cancel := context.WithCancel(auth.AsDaemon(context.Background()))
	return &watcher{s: s, ctx: ctx, stop: cancel, entries: map[entryKey]map[string]any{},
		subs: map[*session]bool{}, seen: map[string]bool{}}
}

func (w *watcher) add(c *session) {
	w.mu.Lock()
	w.subs[c] = true
	w.mu.Unlock()
}

func (w *watcher) drop(c *session) {
	w.mu.Lock()
	delete(w.subs, c)
	w.mu.Unlock()
}

func (w *watcher) subscribers() []*session {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*session, 0, len(w.subs))
	for c := range w.subs {
		out = append(out, c)
	}
	return out
}

func (w *watcher) run() {
	for w.ctx.Err() == nil {
		sub, err := w.s.Events.Subscribe([]string{api.EventTypeLifecycle, api.EventTypeOperation}, 0)
		if err != nil {
			if errors.Is(err, event.ErrHubClosed) {
				return
			}
			w.s.log().Error("virt api: subscribe to events", "err", err)
			time.Sleep(time.Second)
			continue
		}
		// After subscribing: nothing that changes from here is missed.
		w.resync()
		w.loop(sub)
		sub.Close()
		if errors.Is(sub.Err(), event.ErrHubClosed) {
			return
		}
	}
}

func (w *watcher) loop(sub *event.Subscription) {
	tick := time.NewTicker(resyncEvery)
	defer tick.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-tick.C:
			if len(w.subscribers()) > 0 {
				w.resync()
			}
		case ev, ok := <-sub.C():
			if !ok {
				return
			}
			w.handle(ev)
		}
	}
}

func (w *watcher) handle(ev event.Event) {
	switch ev.Type {
	case api.EventTypeLifecycle:
		lc := ev.Lifecycle
		if lc == nil || lc.Entity.Kind != event.EntityInstance {
			return
		}
		if lc.Action == "instance-renamed" {
			w.resync()
			return
		}
		p := lc.Entity.Project
		if p == "" {
			p = project.Default
		}
		w.refresh(entryKey{p, lc.Entity.Name})
	case api.EventTypeOperation:
		op, err := opOfEvent(ev.Metadata)
		if err != nil {
			return
		}
		w.jobChanged(ev.Project, op)
	}
}

func (w *watcher) projectCtx(p string) context.Context {
	pr := project.Project{Name: p}
	if w.s.Projects != nil {
		if r, err := w.s.Projects.Resolve(w.ctx, p); err == nil {
			pr = r
		}
	}
	return project.WithProject(w.ctx, pr)
}

// refresh reads one instance and sends what changed.
func (w *watcher) refresh(k entryKey) {
	f, err := w.s.Core.GetFull(w.projectCtx(k.project), k.name)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			w.set(k, nil)
			return
		}
		w.s.log().Warn("virt api: read instance for events", "project", k.project, "name", k.name, "err", err)
		return
	}
	w.set(k, entryOf(f))
}

// resync compares every instance of every project with the cache.
func (w *watcher) resync() {
	list := w.s.Core.ListFull(project.WithAll(w.ctx))
	now := make(map[entryKey]map[string]any, len(list))
	for _, f := range list {
		now[entryKey{f.Project, f.Name}] = entryOf(f)
	}
	w.mu.Lock()
	var gone []entryKey
	for k := range w.entries {
		if _, ok := now[k]; !ok {
			gone = append(gone, k)
		}
	}
	w.mu.Unlock()
	for k, e := range now {
		w.set(k, e)
	}
	for _, k := range gone {
		w.set(k, nil)
	}
	w.mu.Lock()
	w.ready = true
	w.mu.Unlock()
}

// set records e (nil: gone) as k's entry and sends the difference.
func (w *watcher) set(k entryKey, e map[string]any) {
	w.mu.Lock()
	old, had := w.entries[k]
	var msg map[string]any
	switch {
	case e == nil && had:
		delete(w.entries, k)
		msg = map[string]any{"msg": "removed", "collection": "virt.instance.query", "id": k.name}
	case e == nil:
	case !had:
		w.entries[k] = e
		if w.ready {
			msg = map[string]any{"msg": "added", "collection": "virt.instance.query", "id": k.name, "fields": e}
		}
	default:
		w.entries[k] = e
		if changed := diff(old, e); len(changed) > 0 {
			msg = map[string]any{"msg": "changed", "collection": "virt.instance.query", "id": k.name, "fields": changed}
		}
	}
	w.mu.Unlock()
	if msg != nil {
		w.publish("virt.instance.query", k.project, roleRead, msg)
	}
}

// diff returns the fields of b that differ from a.
func diff(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range b {
		if ov, ok := a[k]; !ok || !reflect.DeepEqual(ov, v) {
			out[k] = v
		}
	}
	return out
}

// publish encodes msg once and queues it to every session subscribed to
// collection in project that holds r.
func (w *watcher) publish(collection, proj string, r role, msg map[string]any) {
	subs := w.subscribers()
	if len(subs) == 0 {
		return
	}
	b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "collection_update", "params": msg})
	if err != nil {
		w.s.log().Error("virt api: encode event", "err", err)
		return
	}
	for _, c := range subs {
		if !c.subscribed(collection) {
			continue
		}
		if !c.authenticated() {
			continue
		}
		ctx := c.callCtx()
		if project.Name(ctx) != proj || !c.s.holds(ctx, r) {
			continue
		}
		c.send(b)
	}
}

// jobChanged announces a job's change to core.get_jobs subscribers.
func (w *watcher) jobChanged(proj string, op api.Operation) {
	if proj == "" {
		proj = project.Default
	}
	j := w.s.jobs.of(op)
	e := w.s.jobEntry(j, op)
	w.mu.Lock()
	kind := "changed"
	if !w.seen[op.ID] {
		kind = "added"
		w.seen[op.ID] = true
	}
	if st := e["state"]; st == "SUCCESS" || st == "FAILED" || st == "ABORTED" {
		delete(w.seen, op.ID)
	}
	w.mu.Unlock()
	w.publish("core.get_jobs", proj, roleAuth, map[string]any{"msg": kind, "collection": "core.get_jobs", "id": e["id"], "fields": e})
}
