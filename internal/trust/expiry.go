package trust

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseExpiry reads an expiry as LXD writes core.remote_token_expiry:
// space-separated amounts of S (seconds), M (minutes), H (hours), d
// (days), w (weeks), m (months), y (years), each unit at most once
// ("1H 30M"). "" is no expiry (the zero time).
func ParseExpiry(from time.Time, expr string) (time.Time, error) {
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return time.Time{}, nil
	}
	amounts := map[byte]int{}
	for _, f := range strings.Fields(expr) {
		unit := f[len(f)-1]
		if !strings.ContainsRune("SMHdwmy", rune(unit)) || len(f) < 2 {
			return time.Time{}, fmt.Errorf("%q: want amounts like 30M, 1H or 2d (units S M H d w m y)", expr)
		}
		n, err := strconv.Atoi(f[:len(f)-1])
		if err != nil || n < 0 {
			return time.Time{}, fmt.Errorf("%q: %q is not a whole number of 0 or more", expr, f[:len(f)-1])
		}
		if _, dup := amounts[unit]; dup {
			return time.Time{}, fmt.Errorf("%q: unit %c given twice", expr, unit)
		}
		amounts[unit] = n
	}
	t := from.AddDate(amounts['y'], amounts['m'], amounts['d']+7*amounts['w'])
	return t.Add(time.Duration(amounts['H'])*time.Hour + time.Duration(amounts['M'])*time.Minute + time.Duration(amounts['S'])*time.Second), nil
}
