package revert

import (
	"reflect"
	"testing"
)

func TestReverter(t *testing.T) {
	tests := []struct {
		name   string
		steps  int
		finish func(r *Reverter)
		want   []int
	}{
		{"fail runs newest first", 3, (*Reverter).Fail, []int{2, 1, 0}},
		{"success runs nothing", 3, (*Reverter).Success, nil},
		{"success then fail runs nothing", 2, func(r *Reverter) { r.Success(); r.Fail() }, nil},
		{"fail twice runs once", 2, func(r *Reverter) { r.Fail(); r.Fail() }, []int{1, 0}},
		{"no steps", 0, (*Reverter).Fail, nil},
		{"clone leaves nothing here", 2, func(r *Reverter) { r.Clone(); r.Fail() }, nil},
		{"clone's fail runs the steps", 2, func(r *Reverter) { r.Clone().Fail() }, []int{1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran []int
			r := New()
			for i := range tt.steps {
				r.Add(func() { ran = append(ran, i) })
			}
			r.Add(nil) // ignored
			tt.finish(r)
			if !reflect.DeepEqual(ran, tt.want) {
				t.Fatalf("ran %v, want %v", ran, tt.want)
			}
		})
	}
}

// A panicking step must not keep the older steps from running, and the
// panic must still reach the caller.
func TestFailPanickingStep(t *testing.T) {
	var ran []string
	r := New()
	r.Add(func() { ran = append(ran, "first") })
	r.Add(func() { panic("boom") })
	r.Add(func() { ran = append(ran, "last") })
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want boom", p)
		}
		if want := []string{"last", "first"}; !reflect.DeepEqual(ran, want) {
			t.Fatalf("ran %v, want %v", ran, want)
		}
	}()
	r.Fail()
	t.Fatal("Fail did not re-raise the panic")
}

// The deferred use: an early return fails, a completed function does not.
func TestDeferredUse(t *testing.T) {
	work := func(fail bool) (undone bool) {
		r := New()
		defer r.Fail()
		r.Add(func() { undone = true })
		if fail {
			return
		}
		r.Success()
		return
	}
	if !work(true) {
		t.Error("failed work was not undone")
	}
	if work(false) {
		t.Error("successful work was undone")
	}
}
