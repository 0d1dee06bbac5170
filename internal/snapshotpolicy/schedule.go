package snapshotpolicy

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Schedule is a parsed snapshots.schedule. The zero Schedule never fires.
type Schedule struct {
	spec    string
	crons   []cron.Schedule
	startup bool
	every   time.Duration
}

// MinEvery is the shortest "@every" interval: Run ticks once a minute.
const MinEvery = time.Minute

// aliases maps each alias to a cron spec whose minute (%[1]d) and hour
// (%[2]d) come from the instance's seed, as LXD spreads them.
var aliases = map[string]string{
	"@hourly":   "%[1]d * * * *",
	"@daily":    "%[1]d %[2]d * * *",
	"@midnight": "%[1]d 0 * * *",
	"@weekly":   "%[1]d %[2]d * * 0",
	"@monthly":  "%[1]d %[2]d 1 * *",
	"@annually": "%[1]d %[2]d 1 1 *",
	"@yearly":   "%[1]d %[2]d 1 1 *",
}

const (
	aliasStartup = "@startup"
	aliasNever   = "@never"
	aliasEvery   = "@every "
)

var fieldNames = [5]string{"minute", "hour", "day-of-month", "month", "day-of-week"}

// neverFiresFrom is where ParseSchedule looks for a first firing: any fixed
// time works, since cron's Next looks five years ahead and every
// satisfiable spec (29 Feb included) fires within that.
var neverFiresFrom = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// ParseSchedule reads a snapshots.schedule value. seed spreads the aliases
// over the hour and the day; pass something stable per instance or volume,
// such as its database id, so that a rename does not move its snapshots
// (LXD uses the id). Validation alone may pass any seed.
func ParseSchedule(spec, seed string) (Schedule, error) {
	s := Schedule{spec: spec}
	lower := strings.ToLower(strings.TrimSpace(spec))
	if lower == "" {
		return s, nil
	}
	if d, ok := strings.CutPrefix(lower, aliasEvery); ok {
		// A fixed interval has no wall-clock minute of its own: it
		// fires a whole interval after the last run, which the caller
		// keeps (Every, Due with a Tick does not see it).
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return Schedule{}, errdefs.Invalid("schedule %q: @every wants a Go duration such as 5m or 1h30m: %v", spec, err)
		}
		if every < MinEvery {
			return Schedule{}, errdefs.Invalid("schedule %q: @every interval must be at least %s", spec, MinEvery)
		}
		s.every = every
		return s, nil
	}
	minute, hour := spread(seed)
	for _, item := range strings.Split(lower, ", ") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			return Schedule{}, errdefs.Invalid("schedule %q has an empty entry (separate entries with \", \")", spec)
		case item == aliasNever:
			continue
		case item == aliasStartup:
			s.startup = true
			continue
		case strings.HasPrefix(item, "@"):
			if _, ok := aliases[item]; !ok {
				if strings.HasPrefix(item, strings.TrimSpace(aliasEvery)) {
					return Schedule{}, errdefs.Invalid("schedule %q: @every stands alone, as \"@every DURATION\"", spec)
				}
				return Schedule{}, errdefs.Invalid("schedule %q: unknown alias %q (known: @hourly @daily @midnight @weekly @monthly @annually @yearly @startup @never @every)", spec, item)
			}
			item = fmt.Sprintf(aliases[item], minute, hour)
		}
		c, err := parseCron(item)
		if err != nil {
			return Schedule{}, errdefs.Invalid("schedule %q: %v", spec, err)
		}
		s.crons = append(s.crons, c)
	}
	return s, nil
}

// parseCron parses one 5-field cron spec, naming the field at fault.
func parseCron(item string) (cron.Schedule, error) {
	fields := strings.Fields(item)
	if len(fields) != len(fieldNames) {
		return nil, fmt.Errorf("%q has %d fields, want 5: <minute> <hour> <day-of-month> <month> <day-of-week>, or an alias such as @daily", item, len(fields))
	}
	for i, f := range fields {
		if err := checkField(f, i); err != nil {
			return nil, fmt.Errorf("%s field %q: %w", fieldNames[i], f, err)
		}
	}
	c, err := cron.ParseStandard(strings.Join(fields, " "))
	if err != nil {
		return nil, fmt.Errorf("%q: %w", item, err)
	}
	if c.Next(neverFiresFrom).IsZero() {
		return nil, fmt.Errorf("%q never fires", item)
	}
	return c, nil
}

// checkField parses field i alone (the others left as *), so that an error
// names its field. The character check keeps out what cron's parser would
// take as something else: a TZ= prefix or a descriptor.
func checkField(f string, i int) error {
	for _, r := range f {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z':
		case strings.ContainsRune("*/,-?", r):
		default:
			return fmt.Errorf("unexpected character %q", r)
		}
	}
	probe := []string{"*", "*", "*", "*", "*"}
	probe[i] = f
	if _, err := cron.ParseStandard(strings.Join(probe, " ")); err != nil {
		return err
	}
	return nil
}

// spread derives the minute and hour an alias fires at from seed: stable
// for one seed, spread evenly over many.
func spread(seed string) (minute, hour int) {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed)) // a hash.Hash never fails to write
	sum := h.Sum64()
	return int(sum % 60), int(sum / 60 % 24)
}

// IsZero reports whether the schedule never fires on the clock (it may
// still ask for a snapshot at startup).
func (s Schedule) IsZero() bool { return len(s.crons) == 0 && s.every == 0 }

// Every is the interval of an "@every DURATION" schedule, else 0. Such a
// schedule fires an interval after its last run: the caller keeps when
// that was, and Next, Due and Tick.Due do not fire it.
func (s Schedule) Every() time.Duration { return s.every }

// OnStartup reports whether the schedule holds @startup: the core takes a
// snapshot each time the instance starts.
func (s Schedule) OnStartup() bool { return s.startup }

// String returns the spec as it was given.
func (s Schedule) String() string { return s.spec }

// Next returns the first minute strictly after after at which the schedule
// fires, in after's location, or the zero time if it never does.
func (s Schedule) Next(after time.Time) time.Time {
	var next time.Time
	for _, c := range s.crons {
		n := c.Next(after)
		if !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}

// Due reports whether the schedule fires in the wall-clock minute that
// holds minute.
func (s Schedule) Due(minute time.Time) bool {
	m := minute.Truncate(time.Minute)
	return s.firesIn(m.Add(-time.Minute), m)
}

// firesIn reports whether the schedule fires at a minute in (from, to].
func (s Schedule) firesIn(from, to time.Time) bool {
	n := s.Next(from)
	return !n.IsZero() && !n.After(to)
}
