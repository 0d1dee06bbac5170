package event

// Stats counts the hub's traffic for monitoring (package metrics).
type Stats struct {
	Published   uint64 // events sequenced (the last sequence number)
	Delivered   uint64 // events handed to subscribers, one per subscriber
	Dropped     uint64 // subscribers ended for falling behind
	Subscribers int    // subscribers now
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return Stats{Published: h.seq, Delivered: h.delivered, Dropped: h.dropped, Subscribers: len(h.subs)}
}
