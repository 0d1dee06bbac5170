package event

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Event is one published event as the hub sequences, keeps and delivers
// it. It is no dialect's wire shape: each edge renders it (the LXD edge as
// api.Event, a lifecycle's entity as an LXD URL).
type Event struct {
	Type      string // api.EventTypeLifecycle, ...Operation, ...Logging
	Timestamp time.Time
	Sequence  uint64
	Location  string
	// Project is the project the event is about, "" for none; a
	// lifecycle event's is its entity's.
	Project string `json:",omitempty"`
	// Metadata is the payload as JSON, for every type but lifecycle.
	Metadata json.RawMessage
	// Lifecycle says what happened to which entity, for lifecycle events.
	Lifecycle *Lifecycle
}

// Entity kinds that lifecycle events name.
const (
	EntityInstance   = "instance"
	EntityProfile    = "profile"
	EntityProject    = "project"
	EntityImage      = "image"
	EntityImageAlias = "image-alias"
	EntityNetwork    = "network"
	// EntityNetworkForward is a network forward: Name is "NETWORK/LISTEN".
	EntityNetworkForward = "network-forward"
	EntityStoragePool    = "storage-pool"
	// EntityStorageVolume is a storage volume: Name is "POOL/TYPE/NAME".
	EntityStorageVolume = "storage-volume"
	// EntityInstanceSnapshot is an instance snapshot: Name is
	// "INSTANCE/SNAP".
	EntityInstanceSnapshot = "instance-snapshot"
	// EntityStorageVolumeSnapshot is a volume snapshot: Name is
	// "POOL/TYPE/VOLUME/SNAP".
	EntityStorageVolumeSnapshot = "storage-volume-snapshot"
	// EntityInstanceBackup is an instance backup: Name is
	// "INSTANCE/BACKUP".
	EntityInstanceBackup = "instance-backup"
)

// Entity names what a lifecycle event is about, in no dialect's terms.
type Entity struct {
	Kind    string // EntityInstance, ...
	Name    string // an instance or profile name, an image fingerprint
	Project string // "" until projects exist
}

// Lifecycle is the payload of a lifecycle event.
type Lifecycle struct {
	Action string // LXD's action names, e.g. "instance-started"
	Entity Entity
	// Context is extra detail as a JSON object, nil when there is none.
	// It is encoded once at publish and shared: never modify it.
	Context json.RawMessage
	// Requestor is who caused it; nil for the daemon's own doing.
	Requestor *Requestor `json:",omitempty"`
}

// Requestor is who caused a lifecycle event, as LXD reports it: a
// certificate's fingerprint over "tls", "root" over "unix".
type Requestor struct {
	Username string
	Protocol string
	Address  string
}

const (
	// DefaultRingSize is used when New is given a size < 1. It holds a few
	// minutes of a busy host's events, long enough for a client to reconnect.
	DefaultRingSize = 10000

	// SubscriberBuffer is how many live events a subscription may have
	// pending before it is dropped as too slow.
	SubscriberBuffer = 1024

	// DefaultLocation is what LXD reports as an event's location when the
	// server is not clustered.
	DefaultLocation = "none"
)

// Reasons a subscription ends, as returned by Subscription.Err.
var (
	// ErrTooSlow means the consumer let its buffer fill. Reconnect with
	// since set to the last sequence received.
	ErrTooSlow = errors.New("too slow")
	// ErrClosed means the consumer closed the subscription itself.
	ErrClosed = errors.New("subscription closed")
	// ErrHubClosed means the hub shut down (daemon shutdown).
	ErrHubClosed = errors.New("event hub closed")
)

// Hub sequences events, keeps the most recent ones for replay, and fans them
// out to subscribers. It is safe for concurrent use.
type Hub struct {
	location string

	// logSubs counts subscriptions that receive logging events, so the log
	// handler can skip formatting records without taking mu.
	logSubs atomic.Int64

	mu     sync.Mutex
	seq    uint64  // sequence of the last published event; 0 = none yet
	ring   []Event // event with sequence s lives at ring[(s-1)%len(ring)]
	subs   []*Subscription
	closed bool
	// delivered and dropped count events handed to subscribers and
	// subscribers dropped as too slow (Stats).
	delivered, dropped uint64

	// Persistence of the sequence (Persist): numbers up to reserved may
	// be handed out without writing; first is this run's first sequence.
	seqs     SequenceStore
	block    uint64
	reserved uint64
	first    uint64 // the oldest sequence this run can replay
	runFirst uint64 // the first sequence this run hands out
	saveErr  error  // the last failed write, for Save to report
}

// SequenceStore keeps the event sequence, and the retained events of a
// clean shutdown, across daemon restarts.
type SequenceStore interface {
	LoadSequence(ctx context.Context) (uint64, error)
	SaveSequence(ctx context.Context, seq uint64) error
	// SaveEvents keeps events (in sequence order) for the next run;
	// TakeEvents returns them and forgets them, so one run replays them.
	SaveEvents(ctx context.Context, evs []Event) error
	TakeEvents(ctx context.Context) ([]Event, error)
}

// DefaultSequenceBlock is how many sequence numbers Persist reserves per
// write: one database write per that many events.
const DefaultSequenceBlock = 1024

// Persist makes sequence numbers survive restarts; call it before the
// first Publish. The hub continues after the last sequence st holds and
// reserves numbers in blocks of block (DefaultSequenceBlock if 0): it
// writes the end of the next block before handing out its first number,
// so after a crash the next run starts above any number ever sent. The
// events a clean shutdown saved (Save) are retained again, so a since
// from before the restart replays them.
func (h *Hub) Persist(ctx context.Context, st SequenceStore, block uint64) error {
	if block == 0 {
		block = DefaultSequenceBlock
	}
	last, err := st.LoadSequence(ctx)
	if err != nil {
		return fmt.Errorf("load event sequence: %w", err)
	}
	kept, err := st.TakeEvents(ctx)
	if err != nil {
		return fmt.Errorf("load kept events: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seq != 0 {
		return errors.New("event sequence: Persist after events were published")
	}
	if err := st.SaveSequence(ctx, last+block); err != nil {
		return fmt.Errorf("reserve event sequence: %w", err)
	}
	h.seqs, h.block = st, block
	h.seq, h.first, h.runFirst, h.reserved = last, last+1, last+1, last+block
	// Kept events count only if they end exactly at the saved sequence
	// with no hole: a run that published after its Save (or crashed)
	// left a sequence above them, and replaying them would hide a gap.
	if n := len(kept); n > 0 && kept[n-1].Sequence == last && kept[0].Sequence+uint64(n)-1 == last {
		kept = kept[max(0, n-len(h.ring)):]
		for _, ev := range kept {
			h.ring[(ev.Sequence-1)%uint64(len(h.ring))] = ev
		}
		h.first = kept[0].Sequence
	}
	return nil
}

// Save writes what a clean shutdown leaves for the next run: the retained
// events and the last sequence handed out. It also reports a failed
// reservation since the last call. Events published afterwards reserve a
// block again (and make the next run ignore the saved events).
func (h *Hub) Save(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seqs == nil {
		return nil
	}
	err := h.saveErr
	h.saveErr = nil
	var evs []Event
	if h.seq >= h.first {
		from := max(h.first, h.seq-min(h.seq, uint64(len(h.ring)))+1)
		evs = make([]Event, 0, h.seq-from+1)
		for seq := from; seq <= h.seq; seq++ {
			evs = append(evs, *h.at(seq))
		}
	}
	if serr := h.seqs.SaveEvents(ctx, evs); serr != nil {
		return errors.Join(err, fmt.Errorf("save events: %w", serr))
	}
	if serr := h.seqs.SaveSequence(ctx, h.seq); serr != nil {
		return errors.Join(err, fmt.Errorf("save event sequence: %w", serr))
	}
	h.reserved = h.seq
	return err
}

// reserveLocked makes sure the next sequence is reserved; h.mu is held.
// A failed write is remembered, not retried at every event: Publish must
// not fail nor stall, and Save reports it.
func (h *Hub) reserveLocked() {
	if h.seqs == nil || h.seq < h.reserved {
		return
	}
	next := h.seq + h.block
	if err := h.seqs.SaveSequence(context.Background(), next); err != nil {
		h.saveErr = fmt.Errorf("reserve event sequence up to %d: %w", next, err)
	}
	h.reserved = next
}

// New returns a hub retaining the last ringSize events (DefaultRingSize if
// ringSize < 1) and stamping them with location ("none" if empty).
func New(ringSize int, location string) *Hub {
	if ringSize < 1 {
		ringSize = DefaultRingSize
	}
	if location == "" {
		location = DefaultLocation
	}
	return &Hub{location: location, ring: make([]Event, ringSize)}
}

// Publish sequences an event of the given type and delivers it to matching
// subscribers. metadata is marshalled to JSON once, before the lock is taken,
// so concurrent publishers marshal in parallel; a json.RawMessage is used as
// is and must not be modified afterwards. Publish never blocks on consumers.
func (h *Hub) Publish(eventType string, metadata any) Event {
	return h.publish(Event{Type: eventType, Metadata: marshal(metadata)})
}

// PublishIn publishes an event about something in project (an operation
// acting there), so project-scoped listeners see it.
func (h *Hub) PublishIn(project, eventType string, metadata any) Event {
	return h.publish(Event{Type: eventType, Metadata: marshal(metadata), Project: project})
}

// publish sequences, stamps, keeps and delivers ev.
func (h *Hub) publish(ev Event) Event {
	eventType := ev.Type
	h.mu.Lock()
	h.reserveLocked()
	h.seq++
	// Taken under the lock so that timestamps never go backwards against
	// sequence order.
	ev.Timestamp = time.Now().UTC()
	ev.Location = h.location
	ev.Sequence = h.seq
	h.ring[(h.seq-1)%uint64(len(h.ring))] = ev
	for i := 0; i < len(h.subs); {
		s := h.subs[i]
		if !s.wants(eventType) {
			i++
			continue
		}
		select {
		case s.ch <- ev:
			h.delivered++
			i++
		default:
			h.dropped++
			// Dropping the consumer (rather than the event) keeps the
			// stream gap-free for everyone: the client learns of it
			// and resumes with since=its last sequence.
			h.endLocked(s, ErrTooSlow) // swaps s out of h.subs[i]
		}
	}
	h.mu.Unlock()
	return ev
}

// marshal encodes metadata for an event. An unmarshallable value is a
// programming error, but a daemon must not crash over a monitoring feed: the
// event is still sequenced, carrying the error so it is visible to whoever
// watches.
func marshal(metadata any) json.RawMessage {
	if raw, ok := metadata.(json.RawMessage); ok {
		return raw
	}
	raw, err := json.Marshal(metadata)
	if err != nil {
		raw, _ = json.Marshal(map[string]string{"error": "marshal event metadata: " + err.Error()})
	}
	return raw
}

// Lifecycle publishes a "lifecycle" event, e.g. action "instance-started"
// about Entity{Kind: EntityInstance, Name: "c1"}. ctx, when not empty, is
// encoded once here.
func (h *Hub) Lifecycle(action string, e Entity, ctx map[string]any) Event {
	return h.LifecycleBy(nil, action, e, ctx)
}

// LifecycleBy publishes a lifecycle event caused by r.
func (h *Hub) LifecycleBy(r *Requestor, action string, e Entity, ctx map[string]any) Event {
	lc := &Lifecycle{Action: action, Entity: e, Requestor: r}
	ev := Event{Type: api.EventTypeLifecycle, Lifecycle: lc, Project: e.Project}
	if len(ctx) > 0 {
		lc.Context = marshal(ctx)
	}
	return h.publish(ev)
}

// Logging publishes a "logging" event. level is one of "debug", "info",
// "warning", "error".
func (h *Hub) Logging(level, msg string, ctx map[string]string) Event {
	if ctx == nil {
		ctx = map[string]string{} // LXD sends {} rather than null
	}
	return h.Publish(api.EventTypeLogging, api.EventLogging{Message: msg, Level: level, Context: ctx})
}

// WantsLogging reports whether any subscription currently receives logging
// events. It is a single atomic load, for callers that would otherwise
// format a message nobody reads.
func (h *Hub) WantsLogging() bool { return h.logSubs.Load() > 0 }

// Subscribe returns a subscription to events of the given types (all types
// if empty). With since > 0 its channel first yields every retained event
// with a larger sequence, then live events; since = 0, or a since at the
// latest sequence, yields live events only. If events after since are no
// longer retained, were published before a restart that did not keep them
// (see Persist), or since is beyond the latest sequence (a daemon without
// persisted sequences restarted), Subscribe returns an
// errdefs.ErrInvalidArgument kind error, each saying which, instead of a
// stream with a hole in it.
func (h *Hub) Subscribe(types []string, since uint64) (*Subscription, error) {
	s := &Subscription{hub: h, done: make(chan struct{})}
	if len(types) > 0 {
		s.types = slices.Clone(types)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}

	// Replay is taken under the same lock Publish holds, so no event can
	// slip between the last replayed one and the first live one.
	var from, to uint64 // replay sequences from..to inclusive; empty if from > to
	if since > h.seq {
		return nil, errdefs.Invalid("sequence %d is beyond the latest event (%d): the daemon restarted and earlier events are gone; reconnect without since", since, h.seq)
	}
	if since > 0 && since < h.seq {
		first := max(h.first, 1)
		if since+1 < first && first == max(h.runFirst, 1) {
			// Not a gap in this run's ring but a restart: what came
			// after since, if anything, was published by the previous
			// run (or its numbers were reserved and never used).
			return nil, errdefs.Invalid("events after sequence %d were published before the daemon restarted and are gone (this run's first event is %d); reconnect without since", since, first)
		}
		oldest := first
		if n := uint64(len(h.ring)); h.seq-first+1 > n {
			oldest = h.seq - n + 1
		}
		if since+1 < oldest {
			return nil, errdefs.Invalid("events before sequence %d are no longer retained (oldest is %d)", since+1, oldest)
		}
		from, to = since+1, h.seq
	}
	n := 0
	for seq := from; from > 0 && seq <= to; seq++ {
		if s.wants(h.at(seq).Type) {
			n++
		}
	}
	// The replay gets its own room on top of the live buffer, so a long
	// replay never counts against the consumer's slack.
	s.ch = make(chan Event, SubscriberBuffer+n)
	for seq := from; from > 0 && seq <= to; seq++ {
		if ev := h.at(seq); s.wants(ev.Type) {
			s.ch <- *ev
		}
	}

	s.logging = s.wants(api.EventTypeLogging)
	if s.logging {
		h.logSubs.Add(1)
	}
	h.subs = append(h.subs, s)
	return s, nil
}

// at returns the retained event with the given sequence. h.mu must be held.
func (h *Hub) at(seq uint64) *Event { return &h.ring[(seq-1)%uint64(len(h.ring))] }

// Close ends every subscription with ErrHubClosed and refuses new ones.
// Publish keeps working (and keeps sequencing), so late publishers during
// shutdown need no special case.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for len(h.subs) > 0 {
		h.endLocked(h.subs[0], ErrHubClosed)
	}
}

// endLocked removes s from the hub and closes it with reason err. Because
// every send to s.ch happens under h.mu, closing the channel here cannot race
// with a send. h.mu must be held.
func (h *Hub) endLocked(s *Subscription, err error) {
	if s.err != nil {
		return
	}
	if i := slices.Index(h.subs, s); i >= 0 {
		last := len(h.subs) - 1
		h.subs[i] = h.subs[last]
		h.subs[last] = nil
		h.subs = h.subs[:last]
	}
	if s.logging {
		h.logSubs.Add(-1)
	}
	s.err = err
	close(s.ch)
	close(s.done)
}

// Subscription is one consumer's view of the event stream.
type Subscription struct {
	hub     *Hub
	types   []string // nil = all types
	logging bool     // counted in hub.logSubs
	ch      chan Event
	done    chan struct{}
	err     error // set under hub.mu before done is closed
}

func (s *Subscription) wants(eventType string) bool {
	return s.types == nil || slices.Contains(s.types, eventType)
}

// C returns the event channel. It is closed when the subscription ends, after
// the events already buffered, so ranging over it drains everything that was
// delivered; then Err says why it ended.
func (s *Subscription) C() <-chan Event { return s.ch }

// Done is closed when the subscription ends, possibly before C is drained.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns nil while the subscription is live, then ErrTooSlow, ErrClosed
// or ErrHubClosed.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err // written before done was closed
	default:
		return nil
	}
}

// Close ends the subscription. It is idempotent and safe to call
// concurrently with Publish.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	s.hub.endLocked(s, ErrClosed)
	s.hub.mu.Unlock()
}
