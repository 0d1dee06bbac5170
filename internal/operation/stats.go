package operation

// Stats counts operations for monitoring (package metrics).
type Stats struct {
	// Created counts the operations started since the registry began, by
	// class.
	Created map[string]uint64
	// Current counts the operations still queryable (running, or finished
	// within the retention) by class and status ("Running", "Success").
	Current map[ClassStatus]int
}

// ClassStatus is an operation's class and status.
type ClassStatus struct{ Class, Status string }

// Stats counts the registry's operations. It takes each operation's lock
// briefly and copies nothing else.
func (r *Registry) Stats() Stats {
	now := r.now()
	st := Stats{Created: map[string]uint64{}, Current: map[ClassStatus]int{}}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for class, n := range r.createdBy {
		st.Created[class] = n
	}
	for _, op := range r.ops {
		op.mu.Lock()
		live := op.finished.IsZero() || now.Sub(op.finished) < r.retention
		k := ClassStatus{op.state.Class, op.state.Status}
		op.mu.Unlock()
		if live {
			st.Current[k]++
		}
	}
	return st
}
