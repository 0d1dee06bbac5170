package snapshotpolicy

import (
	"context"
	"log/slog"
	"time"
)

// Clock is the time source Run reads and waits on.
type Clock interface {
	Now() time.Time
	// After sends once, d from now (as time.After does).
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the host's clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Tick is one call of Run's function: the wall-clock minute it is for, and
// the last minute it handled before.
type Tick struct {
	// Minute is the start of the current wall-clock minute.
	Minute time.Time
	// Since is the start of the minute handled before: Minute minus one
	// minute, unless the clock jumped forward or a call overran, in which
	// case the minutes in between are folded into this Tick.
	Since time.Time
}

// Due reports whether s fires at a minute this tick covers: after Since,
// up to and including Minute. A schedule whose time fell in skipped
// minutes fires once, late, rather than not at all.
func (t Tick) Due(s Schedule) bool { return s.firesIn(t.Since, t.Minute) }

// backStepLimit is the largest backward clock step Run waits out; a larger
// one is a clock correction (a host booted with a bad clock), and waiting
// it out would stop scheduled snapshots and expiry for that long.
const backStepLimit = time.Hour

// Run calls due once per wall-clock minute, at the minute boundary, until
// ctx is done; due runs on Run's goroutine. The first call is at the first
// boundary after Run starts. See the package doc for clock jumps. log may
// be nil (slog.Default).
func Run(ctx context.Context, clock Clock, log *slog.Logger, due func(Tick)) {
	if log == nil {
		log = slog.Default()
	}
	last := clock.Now().Truncate(time.Minute) // the minute handled last
	for {
		now := clock.Now()
		wait := now.Truncate(time.Minute).Add(time.Minute).Sub(now)
		select {
		case <-ctx.Done():
			return
		case <-clock.After(wait):
		}
		minute := clock.Now().Truncate(time.Minute)
		switch {
		case minute.After(last):
		case last.Sub(minute) > backStepLimit:
			log.Warn("snapshot clock stepped back; starting over from the new time",
				"from", last, "to", minute)
			last = minute.Add(-time.Minute)
		default:
			// Woken early, or the clock stepped back a little: this minute
			// was handled already.
			continue
		}
		due(Tick{Minute: minute, Since: last})
		last = minute
	}
}
