// Package revert undoes the finished steps of multi-step work that fails
// part way: each step that made something registers how to unmake it, and
// the work either fails (every undo runs, newest first) or succeeds (none
// does). It replaces the hand-rolled "ok := false; defer func() { if !ok
// {...} }()" pattern, which does not scale to the many steps of a create
// that makes a volume, a NIC, firewall rules and a record.
//
// Typical use:
//
//	r := revert.New()
//	defer r.Fail()           // a no-op once Success ran
//	dir, err := makeDir()
//	if err != nil { return err }
//	r.Add(func() { os.RemoveAll(dir) })
//	...
//	r.Success()
//
// A Reverter belongs to one goroutine; it is not safe for concurrent use.
package revert

// Reverter collects undo steps. The zero value is ready to use.
type Reverter struct {
	undo []func()
	done bool
}

// New returns an empty Reverter.
func New() *Reverter { return &Reverter{} }

// Add registers f to run if the work fails. Steps run in the reverse order
// of their Add, so each undo sees the state its step left.
func (r *Reverter) Add(f func()) {
	if f != nil {
		r.undo = append(r.undo, f)
	}
}

// Fail runs every registered step, newest first, unless Success or Fail
// already ran. A step that panics does not stop the ones before it: the
// panic is raised again after all of them ran.
func (r *Reverter) Fail() {
	if r.done {
		return
	}
	r.done = true
	var panicked any
	for i := len(r.undo) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if p := recover(); p != nil && panicked == nil {
					panicked = p
				}
			}()
			r.undo[i]()
		}()
	}
	r.undo = nil
	if panicked != nil {
		panic(panicked)
	}
}

// Success forgets every registered step: the work is done and stays.
func (r *Reverter) Success() {
	r.done = true
	r.undo = nil
}

// Clone hands the registered steps to a new Reverter and forgets them
// here, for work whose undo must outlive the function that did it (a
// caller that finishes the job, or undoes it, later).
func (r *Reverter) Clone() *Reverter {
	c := &Reverter{undo: r.undo}
	r.undo = nil
	r.done = true
	return c
}
