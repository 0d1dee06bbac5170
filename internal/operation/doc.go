// Package operation is hangard's registry of background operations: what
// /1.0/operations lists and what async responses point to.
//
// It owns each operation's identity (a random UUID), status, metadata,
// cancellation and lifetime. Callers (the API edges, around the instance
// and image services) hand it a Run function; the registry runs it in its
// own goroutine, records the outcome, and announces every change as an
// "operation" event whose metadata is the api.Operation snapshot. The
// package does no HTTP, builds no URL (an operation's resources are what
// the edge passes; its own URL is the edge's) and knows nothing of
// instances or images: routes, websockets and request parsing belong to
// the API edge, the work itself to Run. Other dialects' jobs (the
// JSON-RPC edge's) can be operations too.
//
// Invariants:
//
//   - Status moves forward only: Pending → Running → (Cancelling →)
//     Success | Failure | Cancelled. Once final, an operation never changes
//     again: its metadata is frozen and its done channel is closed.
//   - Every change is published while the operation's lock is held, so the
//     events of one operation reach the hub in the order the changes happened
//     and each carries the state that change produced. The Publisher must
//     therefore not call back into the registry.
//   - Snapshots are deep copies: a caller may keep, marshal or modify what
//     Get, List, Wait or Snapshot return without racing the operation.
//   - Finished operations stay queryable for the retention period (default
//     10 minutes, where LXD keeps them only seconds and clients lose their
//     results), then disappear. Get and List hide expired operations at
//     once; a janitor goroutine frees them shortly after.
//   - Lock order is Registry.mu, then Op.mu; nothing takes them the other
//     way round.
package operation
