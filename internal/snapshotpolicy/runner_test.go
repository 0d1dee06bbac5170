package snapshotpolicy

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// fakeClock has a wall clock that tests step at will and timers that, as
// real ones do, run on elapsed (monotonic) time: step moves the wall clock
// alone, elapse moves both and fires the timers due.
type fakeClock struct {
	mu      sync.Mutex
	wall    time.Time
	mono    time.Duration
	timers  []fakeTimer
	armedCh chan time.Duration // each After's delay, as it is asked for
}

type fakeTimer struct {
	at time.Duration // on the monotonic clock
	ch chan time.Time
}

func newFakeClock(wall time.Time) *fakeClock {
	return &fakeClock{wall: wall, armedCh: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wall
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.timers = append(c.timers, fakeTimer{at: c.mono + d, ch: ch})
	c.armedCh <- d
	return ch
}

// step moves the wall clock only, as settimeofday or an NTP step does.
func (c *fakeClock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
}

// elapse lets d pass: both clocks move and due timers fire.
func (c *fakeClock) elapse(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wall = c.wall.Add(d)
	c.mono += d
	kept := c.timers[:0]
	for _, tm := range c.timers {
		if tm.at <= c.mono {
			tm.ch <- c.wall
		} else {
			kept = append(kept, tm)
		}
	}
	c.timers = kept
}

// armed waits until the code under test asks for a timer and returns its
// delay. The deadline only turns a hang into a failure.
func (c *fakeClock) armed(t *testing.T) time.Duration {
	t.Helper()
	select {
	case d := <-c.armedCh:
		return d
	case <-time.After(30 * time.Second):
		t.Fatal("Run never waited on the clock")
		return 0
	}
}

// runner starts Run on a fake clock and collects its ticks.
type runner struct {
	clock   *fakeClock
	ticks   chan Tick
	done    chan struct{}
	pending time.Duration // the delay of the timer Run waits on
}

func startRunner(t *testing.T, wall time.Time) *runner {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{clock: newFakeClock(wall), ticks: make(chan Tick, 100), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		Run(ctx, r.clock, slog.New(slog.DiscardHandler), func(tk Tick) { r.ticks <- tk })
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// wait lets the armed timer's delay pass and waits for Run to arm the next
// one. due runs before Run arms a timer again, so the ticks taken then are
// all the ticks that wake-up produced.
func (r *runner) wait(t *testing.T, d time.Duration) []Tick {
	t.Helper()
	r.clock.elapse(d)
	next := r.clock.armed(t)
	var got []Tick
	for {
		select {
		case tk := <-r.ticks:
			got = append(got, tk)
		default:
			r.pending = next
			return got
		}
	}
}

func TestRun(t *testing.T) {
	type step struct {
		jump      time.Duration // wall-clock step before the timer fires
		wantDelay time.Duration // of the timer Run armed before this step
		want      []Tick
	}
	tick := func(minute, since string) Tick { return Tick{Minute: utc(minute), Since: utc(since)} }
	for _, tc := range []struct {
		name  string
		start string
		steps []step
	}{
		{"minute boundaries", "2024-05-01 12:00:30", []step{
			{wantDelay: 30 * time.Second, want: []Tick{tick("2024-05-01 12:01:00", "2024-05-01 12:00:00")}},
			{wantDelay: time.Minute, want: []Tick{tick("2024-05-01 12:02:00", "2024-05-01 12:01:00")}},
			{wantDelay: time.Minute, want: []Tick{tick("2024-05-01 12:03:00", "2024-05-01 12:02:00")}},
		}},
		{"start on a boundary waits a full minute", "2024-05-01 12:00:00", []step{
			{wantDelay: time.Minute, want: []Tick{tick("2024-05-01 12:01:00", "2024-05-01 12:00:00")}},
		}},
		{"forward jump of 5 minutes: one tick covering them", "2024-05-01 12:00:30", []step{
			{wantDelay: 30 * time.Second, want: []Tick{tick("2024-05-01 12:01:00", "2024-05-01 12:00:00")}},
			{jump: 5 * time.Minute, wantDelay: time.Minute, want: []Tick{tick("2024-05-01 12:07:00", "2024-05-01 12:01:00")}},
			{wantDelay: time.Minute, want: []Tick{tick("2024-05-01 12:08:00", "2024-05-01 12:07:00")}},
		}},
		// Woken at 12:02:30: 12:02 is handled at once, then Run waits for
		// the next boundary, 30 seconds on.
		{"forward jump to mid-minute realigns on the boundary", "2024-05-01 12:00:30", []step{
			{jump: 90 * time.Second, wantDelay: 30 * time.Second, want: []Tick{tick("2024-05-01 12:02:00", "2024-05-01 12:00:00")}},
			{wantDelay: 30 * time.Second, want: []Tick{tick("2024-05-01 12:03:00", "2024-05-01 12:02:00")}},
			{wantDelay: time.Minute, want: []Tick{tick("2024-05-01 12:04:00", "2024-05-01 12:03:00")}},
		}},
		{"small backward step: no minute twice", "2024-05-01 12:00:30", []step{
			{wantDelay: 30 * time.Second, want: []Tick{tick("2024-05-01 12:01:00", "2024-05-01 12:00:00")}},
			{wantDelay: time.Minute, want: []Tick{tick("2024-05-01 12:02:00", "2024-05-01 12:01:00")}},
			{jump: -2 * time.Minute, wantDelay: time.Minute}, // wakes at 12:01:00, handled
			{wantDelay: time.Minute}, // 12:02:00, handled
			{wantDelay: time.Minute, want: []Tick{tick("2024-05-01 12:03:00", "2024-05-01 12:02:00")}},
		}},
		{"woken a hair early: wait for the boundary", "2024-05-01 12:00:30", []step{
			{wantDelay: 30 * time.Second, want: []Tick{tick("2024-05-01 12:01:00", "2024-05-01 12:00:00")}},
			{jump: -time.Millisecond, wantDelay: time.Minute},
			{wantDelay: time.Millisecond, want: []Tick{tick("2024-05-01 12:02:00", "2024-05-01 12:01:00")}},
		}},
		{"backward step over an hour: start over", "2024-05-01 12:00:30", []step{
			{wantDelay: 30 * time.Second, want: []Tick{tick("2024-05-01 12:01:00", "2024-05-01 12:00:00")}},
			{jump: -3 * time.Hour, wantDelay: time.Minute, want: []Tick{tick("2024-05-01 09:02:00", "2024-05-01 09:01:00")}},
			{wantDelay: time.Minute, want: []Tick{tick("2024-05-01 09:03:00", "2024-05-01 09:02:00")}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRunner(t, utc(tc.start))
			r.pending = r.clock.armed(t)
			for i, s := range tc.steps {
				if r.pending != s.wantDelay {
					t.Fatalf("step %d: Run waits %s, want %s", i, r.pending, s.wantDelay)
				}
				r.clock.step(s.jump)
				got := r.wait(t, r.pending)
				if len(got) != len(s.want) {
					t.Fatalf("step %d: ticks %v, want %v", i, got, s.want)
				}
				for j := range got {
					if !got[j].Minute.Equal(s.want[j].Minute) || !got[j].Since.Equal(s.want[j].Since) {
						t.Fatalf("step %d: tick %v, want %v", i, got[j], s.want[j])
					}
				}
			}
		})
	}
}

// Run returns when its context ends, even while it waits.
func TestRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	clock := newFakeClock(utc("2024-05-01 12:00:30"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(ctx, clock, nil, func(Tick) { t.Error("due called") })
	}()
	clock.armed(t)
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// A tick that covers skipped minutes makes a schedule whose time fell in
// them due once; an ordinary tick only for its own minute.
func TestTickDue(t *testing.T) {
	at1203, err := ParseSchedule("3 12 * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	every, err := ParseSchedule("* * * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		s             Schedule
		minute, since string
		want          bool
	}{
		{"in the gap", at1203, "2024-05-01 12:07:00", "2024-05-01 12:01:00", true},
		{"at the tick", at1203, "2024-05-01 12:03:00", "2024-05-01 12:02:00", true},
		{"at since: handled before", at1203, "2024-05-01 12:04:00", "2024-05-01 12:03:00", false},
		{"after the tick", at1203, "2024-05-01 12:02:00", "2024-05-01 12:01:00", false},
		{"every minute over a gap", every, "2024-05-01 12:07:00", "2024-05-01 12:01:00", true},
		{"zero schedule", Schedule{}, "2024-05-01 12:07:00", "2024-05-01 12:01:00", false},
	} {
		tk := Tick{Minute: utc(tc.minute), Since: utc(tc.since)}
		if got := tk.Due(tc.s); got != tc.want {
			t.Errorf("%s: Due = %v, want %v", tc.name, got, tc.want)
		}
	}
}
