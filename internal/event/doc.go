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
//   - Sequence numbers start at 1 and grow by exactly one per published
//     event, whatever the number of concurrent publishers: no gaps, no
//     duplicates. The sequence, timestamp, ring slot and fan-out of an event
//     are decided under one lock, so sequence order is also delivery order
//     and timestamp order.
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
//
// Sequences restart at 1 when the daemon restarts; the ring is not persisted.
package event
