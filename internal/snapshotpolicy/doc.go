// Package snapshotpolicy holds the rules of LXD's scheduled snapshots, the
// instance (and custom volume) keys snapshots.schedule, snapshots.pattern and
// snapshots.expiry, and the minute clock that drives them. It is pure logic:
// it takes no snapshot, reads no database and imports nothing from
// internal/instance or internal/storage. The core validates keys with it at
// the edge and, at every Tick of Run, snapshots the instances whose Schedule
// is due and deletes the snapshots whose expires_at has passed.
//
// Rules, as LXD 5.0 has them (differences are marked "hangar:"):
//
//   - Schedule (schedule.go): a 5-field cron spec (minute hour dom month dow,
//     github.com/robfig/cron/v3 semantics: names, ranges, steps, dom OR dow),
//     or an alias @hourly @daily @midnight @weekly @monthly @annually @yearly
//     @startup @never, or a list of these separated by ", " (comma and space:
//     a bare comma belongs to a cron field). "" and @never mean no schedule;
//     @startup means "at instance start" and is the core's to honour
//     (Schedule.OnStartup). Case is ignored. LXD spreads the aliases: each
//     instance gets a stable pseudo-random minute (and hour for @daily and
//     longer), derived from its id, so that a host full of @daily instances
//     does not snapshot them all at 00:00. ParseSchedule takes that seed.
//     hangar: a spec that can never fire (0 0 30 2 *) is refused, and the
//     fields may be separated by several spaces. hangar: "@every DURATION"
//     (robfig/cron's syntax, a Go duration of at least a minute, alone in
//     the spec) fires an interval after the last run; the core keeps the
//     run times (Schedule.Every), since a fixed interval has no place on
//     the wall clock.
//   - Times are read in the location of the time.Time given: LXD uses the
//     host's local time; the core passes whatever its clock gives (UTC on a
//     server set to UTC). In UTC there is no DST: every day has 24 hours.
//   - Expiry (expiry.go): "1M 2H 3d 4w 5m 6y" (and S for seconds), each unit
//     at most once, added as calendar years, months and days (Go's AddDate
//     normalisation: Jan 31 + 1m is Mar 3 or 2) then the clock units.
//     "" means never. hangar: units may be separated by several spaces, and
//     a span longer than 1000 years is refused (expires_at must stay a
//     JSON-encodable year).
//   - Name (name.go): snapshots.pattern, default "snap%d", a pongo2 template
//     of which hangar supports {{ creation_date }} and
//     {{ creation_date|date:"<Go layout>" }}. %d (at most once) becomes one
//     more than the highest number already at that place (0 when none): LXD
//     numbers after the highest, never reusing a gap. A pattern without %d
//     whose name is taken gets "-%d" appended and is numbered the same way.
//     hangar: other template syntax is refused by ValidatePattern rather
//     than rendered as ""; plain {{ creation_date }} renders as RFC 3339 in
//     UTC ("2024-05-01T10:00:00Z") where LXD renders Go's time.String(),
//     whose spaces make every such name invalid.
//   - Snapshot names (ValidateName): not empty, none of space / ? & +
//     (LXD's two checks). hangar: not "." or "..", no control characters,
//     at most 255 bytes, because the storage drivers use it as a path name.
//   - Run (runner.go): LXD checks schedules once a minute. Run calls its
//     function once per wall-clock minute, at the minute boundary, never
//     twice for the same minute and in increasing order. A forward clock
//     jump (or a slow callback, or a suspended host) gives one call whose
//     Tick covers every minute skipped, so a schedule that fell in the gap
//     fires once, not once per skipped minute. A backward step of up to an
//     hour makes Run wait until the clock passes the minute it handled last;
//     a longer one is taken for a clock correction and Run starts over from
//     the new time. The first call is at the first minute boundary after Run
//     starts: LXD too waits a minute after start.
package snapshotpolicy
