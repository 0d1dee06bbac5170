// Package event is hangard's event hub: the source of /1.0/events.
//
// It owns the sequence counter, a fixed-size ring of recent events, and the
// set of live subscriptions. Domain packages publish to it (lifecycle events,
// operation updates, and log records through NewLogHandler); the HTTP edge
// subscribes to it and serves the websocket. This package does no HTTP, knows
// no instance, operation or image logic, and never logs (the log handler
// feeds it, so logging from inside the hub could recurse or deadlock).
//
// Invariants:
//
//   - Sequence numbers start at 1 (after the persisted one with Persist)
//     and grow by exactly one per published event, whatever the number of
//     concurrent publishers: no gaps, no duplicates. The sequence,
//     timestamp, ring slot and fan-out of an event are decided under one
//     lock, so sequence order is also delivery order and timestamp order.
//   - A subscription with since=N first receives every retained event with
//     Sequence > N, then live events, with nothing missed or repeated at the
//     seam: the replay is copied into the subscription's channel under the
//     same lock that Publish holds.
//   - If events after N have already left the ring, Subscribe fails with an
//     errdefs.ErrInvalidArgument-kind error rather than silently skipping
//     them; the client must resynchronise from a full listing.
//   - Publish never blocks on a consumer. Each subscription has a bounded
//     buffer (SubscriberBuffer live events, plus room for its replay); a
//     consumer that lets it fill is dropped with ErrTooSlow and reconnects
//     with since set to the last sequence it saw.
//   - Events are immutable once published: the Metadata bytes are shared by
//     the ring and every subscriber and must not be modified.
//   - Events are no dialect's wire shape: Event is the hub's own type, and a
//     lifecycle event names its entity (kind, name; project later) rather
//     than a URL. Each edge renders them (the LXD edge: api.Event with
//     source /1.0/instances/NAME).
//
// Sequences across restarts (Persist): the hub continues after the last
// sequence a SequenceStore holds (the daemon keeps it in SQLite). It
// reserves blocks of numbers, writing a block's end before using it; so
// after a crash the next run starts above every number ever sent. A clean
// shutdown (Save) writes the exact last sequence and the retained events,
// which the next run retains again: a since from before a clean restart
// replays as if there had been none. A since that cannot be replayed
// because the daemon restarted (after a crash, or events published after
// Save) fails with an error that says so, distinct from the "no longer
// retained" of a gap in the ring.
package event
