package operation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
)

// DefaultRetention is how long finished operations stay queryable when New
// is given no retention.
const DefaultRetention = 10 * time.Minute

// Location is the location of every operation: hangard is never clustered,
// and LXD says "none" then.
const Location = "none"

// Publisher receives an "operation" event for every change. The event hub
// satisfies it. Publish is called with the operation's lock held, so it must
// not call back into the registry.
type Publisher interface {
	PublishIn(project, eventType string, metadata any) event.Event
}

// Spec describes an operation to Start.
type Spec struct {
	// Class is api.OperationClassTask (the default when empty),
	// OperationClassWebsocket or OperationClassToken.
	Class       string
	Description string
	// Resources lists the API paths the operation concerns, by kind:
	// {"instances": {"/1.0/instances/c1"}}.
	Resources map[string][]string
	// Run does the work. Its context is cancelled by Cancel; it is not tied
	// to the request that started the operation, which has usually been
	// answered long before Run returns. Must not be nil.
	Run func(ctx context.Context, op *Op) error
	// Cancelable says whether Cancel may stop the operation: Run must then
	// return promptly once ctx is done.
	Cancelable bool
	// Metadata is the initial metadata (copied).
	Metadata map[string]any
	// Context is the request's: Run's context keeps its values (who asked,
	// in which project) but not its cancellation or deadline. nil:
	// context.Background.
	Context context.Context
}

// Registry runs operations and keeps them queryable until their retention
// expires. It is safe for concurrent use.
type Registry struct {
	hub       Publisher
	retention time.Duration
	now       func() time.Time

	mu      sync.RWMutex
	ops     map[string]*Op
	created uint64 // creation counter: List's order, immune to clock ties
	// createdBy counts the operations started, by class (Stats).
	createdBy map[string]uint64

	stop      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

// New returns a registry that announces changes to hub (nil: to nobody) and
// keeps finished operations for retention (DefaultRetention if ≤ 0). Close
// stops its janitor.
func New(hub Publisher, retention time.Duration) *Registry {
	return newRegistry(hub, retention, time.Now)
}

// newRegistry is New with a clock, which must be safe for concurrent use.
func newRegistry(hub Publisher, retention time.Duration, now func() time.Time) *Registry {
	if retention <= 0 {
		retention = DefaultRetention
	}
	r := &Registry{
		hub:       hub,
		retention: retention,
		now:       now,
		ops:       make(map[string]*Op),
		stop:      make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	go r.janitor(janitorInterval(retention))
	return r
}

// janitorInterval sweeps often enough that expired operations do not pile
// up (a quarter of the retention), but never busy-loops nor sleeps for long.
func janitorInterval(retention time.Duration) time.Duration {
	return min(max(retention/4, 10*time.Millisecond), time.Minute)
}

func (r *Registry) janitor(every time.Duration) {
	defer close(r.stopped)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.prune()
		}
	}
}

// prune forgets operations whose retention has expired.
func (r *Registry) prune() {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, op := range r.ops {
		if op.expired(now, r.retention) {
			delete(r.ops, id)
		}
	}
}

// Close stops the janitor. Running operations are not affected: stopping
// them is their owners' business (Cancel).
func (r *Registry) Close() {
	r.closeOnce.Do(func() { close(r.stop) })
	<-r.stopped
}

// Start registers an operation, moves it to Running and runs spec.Run in a
// new goroutine. The returned Op is already Running, so an async response
// built from its snapshot shows what LXD shows.
func (r *Registry) Start(spec Spec) *Op {
	if spec.Run == nil {
		panic("operation: Start with a nil Run")
	}
	class := cmp.Or(spec.Class, api.OperationClassTask)
	parent := spec.Context
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	now := r.now()
	op := &Op{
		reg:        r,
		project:    project.Name(parent),
		requestor:  auth.From(parent),
		cancelable: spec.Cancelable,
		cancel:     cancel,
		done:       make(chan struct{}),
		state: api.Operation{
			ID:          uuid.NewString(),
			Class:       class,
			Description: spec.Description,
			CreatedAt:   now.UTC(),
			Resources:   copyResources(spec.Resources),
			Metadata:    copyMetadata(spec.Metadata),
			Location:    Location,
		},
	}
	op.setStatusLocked(api.Pending, now) // not yet shared: no lock needed

	r.mu.Lock()
	r.created++
	op.order = r.created
	if r.createdBy == nil {
		r.createdBy = map[string]uint64{}
	}
	r.createdBy[class]++
	r.ops[op.state.ID] = op
	r.mu.Unlock()

	op.mu.Lock()
	op.publishLocked()
	op.setStatusLocked(api.Running, r.now())
	op.publishLocked()
	op.mu.Unlock()

	go op.run(ctx, spec.Run)
	return op
}

// lookup returns the live (unexpired) operation with the given id.
func (r *Registry) lookup(id string) (*Op, error) {
	r.mu.RLock()
	op := r.ops[id]
	r.mu.RUnlock()
	// An expired operation is hidden at once, whenever the janitor gets to
	// it, so retention is exact as seen from the API.
	if op == nil || op.expired(r.now(), r.retention) {
		return nil, errdefs.NotFound("operation %q not found", id)
	}
	return op, nil
}

// Get returns a snapshot of the operation.
func (r *Registry) Get(id string) (api.Operation, error) {
	op, err := r.lookup(id)
	if err != nil {
		return api.Operation{}, err
	}
	return op.Snapshot(), nil
}

// Project is the project the operation acts in.
func (op *Op) Project() string { return op.project }

// Requestor is who started the operation.
func (op *Op) Requestor() auth.Identity { return op.requestor }

// Lookup returns the live operation with the given id, for callers that
// check its project or requestor before acting on it.
func (r *Registry) Lookup(id string) (*Op, error) { return r.lookup(id) }

// ListOps returns the live operations, oldest first.
func (r *Registry) ListOps() []*Op {
	r.mu.RLock()
	ops := slices.Collect(maps.Values(r.ops))
	r.mu.RUnlock()
	slices.SortFunc(ops, func(a, b *Op) int { return cmp.Compare(a.order, b.order) })
	now := r.now()
	out := ops[:0]
	for _, op := range ops {
		if !op.expired(now, r.retention) {
			out = append(out, op)
		}
	}
	return out
}

// List returns snapshots of all operations, oldest first. It is never nil.
func (r *Registry) List() []api.Operation {
	r.mu.RLock()
	ops := slices.Collect(maps.Values(r.ops))
	r.mu.RUnlock()
	slices.SortFunc(ops, func(a, b *Op) int { return cmp.Compare(a.order, b.order) })

	now := r.now()
	out := make([]api.Operation, 0, len(ops))
	for _, op := range ops {
		if !op.expired(now, r.retention) {
			out = append(out, op.Snapshot())
		}
	}
	return out
}

// Wait returns the operation once it is final, or its current state when
// timeout passes (not an error, as in LXD: the client looks at the status).
// timeout < 0 waits without limit; 0 returns at once. If ctx ends first, Wait
// returns the current state and ctx's error.
func (r *Registry) Wait(ctx context.Context, id string, timeout time.Duration) (api.Operation, error) {
	op, err := r.lookup(id)
	if err != nil {
		return api.Operation{}, err
	}
	if timeout == 0 {
		return op.Snapshot(), nil
	}
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-op.done:
	case <-expired:
	case <-ctx.Done():
		return op.Snapshot(), ctx.Err()
	}
	return op.Snapshot(), nil
}

// Cancel asks a running operation to stop; see Op.Cancel.
func (r *Registry) Cancel(id string) error {
	op, err := r.lookup(id)
	if err != nil {
		return err
	}
	return op.Cancel()
}

// Op is one operation. Run receives it to report progress with SetMetadata.
type Op struct {
	reg        *Registry
	order      uint64
	project    string        // the project it acts in
	requestor  auth.Identity // who started it
	cancelable bool
	cancel     context.CancelFunc
	done       chan struct{} // closed once the status is final

	mu       sync.Mutex
	state    api.Operation
	finished time.Time // when it became final, with the monotonic clock; zero before
}

// ID returns the operation's UUID.
func (op *Op) ID() string { return op.state.ID } // immutable after Start

// Done is closed when the operation reaches a final status.
func (op *Op) Done() <-chan struct{} { return op.done }

// Snapshot returns a deep copy of the operation's current state.
func (op *Op) Snapshot() api.Operation {
	op.mu.Lock()
	defer op.mu.Unlock()
	return op.snapshotLocked()
}

func (op *Op) snapshotLocked() api.Operation {
	s := op.state
	s.Resources = copyResources(s.Resources)
	s.Metadata = copyMetadata(s.Metadata)
	return s
}

// SetMetadata merges md into the operation's metadata (progress, an exec's
// return code, ...) and publishes the update. The values are copied (maps and
// slices of the JSON kinds deeply), so the caller may reuse md. A finished
// operation's metadata is frozen: SetMetadata then returns a Conflict-kind
// error.
func (op *Op) SetMetadata(md map[string]any) error {
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.state.StatusCode.IsFinal() {
		return errdefs.Conflict("operation %q has already finished", op.state.ID)
	}
	if op.state.Metadata == nil {
		op.state.Metadata = make(map[string]any, len(md))
	}
	for k, v := range md {
		op.state.Metadata[k] = copyValue(v)
	}
	op.state.UpdatedAt = op.reg.now().UTC()
	op.publishLocked()
	return nil
}

// Cancel cancels Run's context and moves the operation to Cancelling until
// Run returns. It returns a Conflict-kind error if the operation is not
// cancelable or has already finished; cancelling twice is not an error.
func (op *Op) Cancel() error {
	op.mu.Lock()
	defer op.mu.Unlock()
	switch {
	case op.state.StatusCode.IsFinal():
		return errdefs.Conflict("operation %q has already finished", op.state.ID)
	case !op.cancelable:
		return errdefs.Conflict("operation cannot be cancelled")
	case op.state.StatusCode == api.Cancelling:
		return nil
	}
	op.setStatusLocked(api.Cancelling, op.reg.now())
	op.publishLocked()
	op.cancel()
	return nil
}

func (op *Op) run(ctx context.Context, run func(context.Context, *Op) error) {
	err := op.call(ctx, run)

	op.mu.Lock()
	var status api.StatusCode
	switch {
	case err == nil:
		// A Run that completed despite a cancel request did its work.
		status = api.Success
	case op.state.StatusCode == api.Cancelling,
		errors.Is(err, context.Canceled),
		errors.Is(err, errdefs.ErrCancelled):
		status = api.Cancelled
	default:
		status = api.Failure
	}
	if err != nil {
		op.state.Err = err.Error()
	}
	now := op.reg.now()
	op.finished = now
	op.setStatusLocked(status, now)
	op.publishLocked()
	// Closed after the final event is published and under the lock, so a
	// waiter that wakes sees the final state, and the event precedes it.
	close(op.done)
	op.mu.Unlock()

	op.cancel() // release the context's resources
}

// call runs Run, turning a panic into a failure: one buggy operation must
// not take down the daemon and every instance's management with it.
func (op *Op) call(ctx context.Context, run func(context.Context, *Op) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			slog.Error("operation panicked", "id", op.state.ID, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error: operation panicked: %v", p)
		}
	}()
	return run(ctx, op)
}

// setStatusLocked records a status change. op.mu must be held (or op not yet
// shared).
func (op *Op) setStatusLocked(status api.StatusCode, now time.Time) {
	op.state.Status = status.String()
	op.state.StatusCode = status
	op.state.UpdatedAt = now.UTC()
	op.state.MayCancel = op.cancelable && (status == api.Pending || status == api.Running)
}

// publishLocked announces the current state. It runs under op.mu so that one
// operation's events are published in the order of its changes.
func (op *Op) publishLocked() {
	if op.reg.hub != nil {
		op.reg.hub.PublishIn(op.project, api.EventTypeOperation, op.snapshotLocked())
	}
}

// expired reports whether op finished at least retention before now.
func (op *Op) expired(now time.Time, retention time.Duration) bool {
	op.mu.Lock()
	defer op.mu.Unlock()
	return !op.finished.IsZero() && now.Sub(op.finished) >= retention
}

func copyResources(r map[string][]string) map[string][]string {
	if r == nil {
		return nil
	}
	c := make(map[string][]string, len(r))
	for k, v := range r {
		c[k] = slices.Clone(v)
	}
	return c
}

func copyMetadata(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = copyValue(v)
	}
	return c
}

// copyValue deep-copies the container types metadata is built from (what
// encoding/json produces, plus string maps and slices). Other values are
// copied shallowly: callers must not modify pointers they put in metadata.
func copyValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		return copyMetadata(v)
	case []any:
		if v == nil {
			return v
		}
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = copyValue(e)
		}
		return c
	case map[string]string:
		return maps.Clone(v)
	case []string:
		return slices.Clone(v)
	default:
		return v
	}
}
