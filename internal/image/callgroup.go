package image

import (
	"context"
	"sync"
)

// callGroup runs one piece of work per key however many callers ask for it
// at once (a pull of one image, a download of one blob). The work runs on a
// context of its own, cancelled only when every caller waiting for it has
// given up: one impatient client cannot fail another's pull, and a pull
// nobody waits for any more stops and cleans up.
type callGroup struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done    chan struct{}
	err     error
	waiters int
	cancel  context.CancelFunc

	mu       sync.Mutex
	watchers map[int]func(Progress)
	next     int
}

// report passes progress to every caller still waiting.
func (c *call) report(p Progress) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.watchers {
		w(p)
	}
}

// do runs fn for key unless a run is in progress, then waits for it. shared
// reports whether the caller joined a run another started. onProgress (may
// be nil) receives the run's progress while this caller waits.
func (g *callGroup) do(ctx context.Context, key string, onProgress func(Progress), fn func(ctx context.Context, c *call) error) (shared bool, err error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*call{}
	}
	c, ok := g.calls[key]
	if !ok {
		runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &call{done: make(chan struct{}), cancel: cancel, watchers: map[int]func(Progress){}}
		g.calls[key] = c
		go func() {
			c.err = fn(runCtx, c)
			g.mu.Lock()
			delete(g.calls, key)
			g.mu.Unlock()
			cancel()
			close(c.done)
		}()
	}
	c.waiters++
	g.mu.Unlock()

	id := -1
	if onProgress != nil {
		c.mu.Lock()
		id = c.next
		c.next++
		c.watchers[id] = onProgress
		c.mu.Unlock()
	}
	defer func() {
		if id >= 0 {
			c.mu.Lock()
			delete(c.watchers, id)
			c.mu.Unlock()
		}
	}()

	select {
	case <-c.done:
		g.mu.Lock()
		c.waiters--
		g.mu.Unlock()
		return ok, c.err
	case <-ctx.Done():
		g.mu.Lock()
		c.waiters--
		last := c.waiters == 0
		if last {
			c.cancel()
		}
		g.mu.Unlock()
		// Wait for the run to notice when this caller was the last: its
		// clean-up (temporary files) is then done when we return, and work
		// that finished anyway is reported as done, so the caller can undo it.
		if last {
			<-c.done
			if c.err == nil {
				return ok, nil
			}
		}
		return ok, cancelled(ctx.Err())
	}
}

// Progress is how far a pull or an archive import has come.
type Progress struct {
	// Stage is "download" (fetching blobs) or "unpack" (applying layers).
	Stage string
	// Done and Total count bytes of the stage (compressed layer bytes for
	// both); Total is 0 when unknown.
	Done, Total int64
}
