package instance

import (
	"strconv"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Instance keys of scheduled snapshots (LXD's).
const (
	keySnapshotsSchedule        = "snapshots.schedule"
	keySnapshotsScheduleStopped = "snapshots.schedule.stopped"
	keySnapshotsPattern         = "snapshots.pattern"
	keySnapshotsExpiry          = "snapshots.expiry"
	defaultSnapshotPattern      = "snap%d"
)

// snapshotName is the name pattern gives at now that taken does not
// hold: %d is the lowest free number.
func snapshotName(pattern string, now time.Time, taken func(string) bool) (string, error) {
	if !strings.Contains(pattern, "%d") {
		if !taken(pattern) {
			return pattern, nil
		}
		pattern += "-%d"
	}
	for i := 0; ; i++ {
		n := strings.Replace(pattern, "%d", strconv.Itoa(i), 1)
		if !taken(n) {
			return n, nil
		}
	}
}

// snapshotExpiry is when a snapshot taken at now expires under expiry
// ("1M 2H 3d 4w 5m 6y"); "" is never.
func snapshotExpiry(expiry string, now time.Time) (time.Time, error) {
	if expiry == "" {
		return time.Time{}, nil
	}
	t := now
	for _, f := range strings.Fields(expiry) {
		n, err := strconv.Atoi(f[:len(f)-1])
		if err != nil || n < 0 {
			return time.Time{}, errdefs.Invalid("snapshots.expiry %q: %q is not a count and a unit", expiry, f)
		}
		switch f[len(f)-1] {
		case 'M':
			t = t.Add(time.Duration(n) * time.Minute)
		case 'H':
			t = t.Add(time.Duration(n) * time.Hour)
		case 'd':
			t = t.AddDate(0, 0, n)
		case 'w':
			t = t.AddDate(0, 0, 7*n)
		case 'm':
			t = t.AddDate(0, n, 0)
		case 'y':
			t = t.AddDate(n, 0, 0)
		default:
			return time.Time{}, errdefs.Invalid("snapshots.expiry %q: unit of %q is not one of M H d w m y", expiry, f)
		}
	}
	return t, nil
}

func validateSnapshotExpiry(v string) error {
	_, err := snapshotExpiry(v, time.Unix(0, 0))
	return err
}

func validateSnapshotPattern(v string) error {
	if strings.Contains(v, "/") {
		return errdefs.Invalid("snapshots.pattern %q: a snapshot name may not contain \"/\"", v)
	}
	return nil
}

func validateSnapshotSchedule(v string) error {
	return nil
}
