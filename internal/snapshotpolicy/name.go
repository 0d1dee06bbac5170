package snapshotpolicy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// DefaultPattern is snapshots.pattern when unset.
const DefaultPattern = "snap%d"

// sampleTimes render patterns for validation: a date whose fields all
// differ and have two digits, in UTC and east of it, since a zone offset
// renders as "Z" in one and with a '+' (not allowed in a name) in the other.
var sampleTimes = []time.Time{
	time.Date(2006, 12, 28, 23, 59, 58, 999999999, time.UTC),
	time.Date(2006, 12, 28, 23, 59, 58, 999999999, time.FixedZone("", 3600)),
}

// ValidatePattern checks a snapshots.pattern value up front: its template
// parses, it holds %d at most once and it renders to a valid snapshot name.
func ValidatePattern(pattern string) error {
	for _, t := range sampleTimes {
		name, err := render(pattern, t)
		if err != nil {
			return err
		}
		if strings.Count(name, "%d") > 1 {
			return errdefs.Invalid("snapshot pattern %q may hold %%d only once", pattern)
		}
		if err := ValidateName(strings.Replace(name, "%d", "0", 1)); err != nil {
			return errdefs.Invalid("snapshot pattern %q gives a bad name: %v", pattern, err)
		}
	}
	return nil
}

// Name returns the name of a snapshot taken at t, from pattern ("" is
// DefaultPattern), given the names of the instance's existing snapshots.
// %d is numbered one past the highest number existing names hold at that
// place, from 0; a name without %d that is taken gets "-%d" appended.
func Name(pattern string, t time.Time, existing []string) (string, error) {
	if pattern == "" {
		pattern = DefaultPattern
	}
	name, err := render(pattern, t)
	if err != nil {
		return "", err
	}
	switch strings.Count(name, "%d") {
	case 0:
		taken := false
		for _, e := range existing {
			if e == name {
				taken = true
				break
			}
		}
		if !taken {
			break
		}
		name += "-%d"
		fallthrough
	case 1:
		prefix, suffix, _ := strings.Cut(name, "%d")
		next := 0
		for _, e := range existing {
			if n, ok := numberAt(e, prefix, suffix); ok && n >= next && n < math.MaxInt {
				next = n + 1
			}
		}
		name = prefix + strconv.Itoa(next) + suffix
	default:
		return "", errdefs.Invalid("snapshot pattern %q may hold %%d only once", pattern)
	}
	if err := ValidateName(name); err != nil {
		return "", errdefs.Invalid("snapshot pattern %q gives a bad name: %v", pattern, err)
	}
	return name, nil
}

// numberAt reads name as prefix, a decimal number, suffix.
func numberAt(name, prefix, suffix string) (int, bool) {
	digits, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	digits, ok = strings.CutSuffix(digits, suffix)
	if !ok || digits == "" || strings.TrimLeft(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, false // too many digits: not a number we could have made
	}
	return n, true
}

// ValidateName checks a snapshot name (the part after the instance's
// name and "/").
func ValidateName(name string) error {
	switch {
	case name == "":
		return errdefs.Invalid("snapshot name must not be empty")
	case name == "." || name == "..":
		return errdefs.Invalid("snapshot name must not be %q", name)
	case len(name) > 255:
		return errdefs.Invalid("snapshot name %q is longer than 255 bytes", name)
	}
	for _, r := range name {
		if strings.ContainsRune(" /?&+", r) {
			return errdefs.Invalid("snapshot name %q must not contain %q", name, r)
		}
		if unicode.IsControl(r) {
			return errdefs.Invalid("snapshot name %q must not contain control characters", name)
		}
	}
	return nil
}

// render expands the pattern's template with creation_date = t. It
// supports what LXD's docs show: {{ creation_date }} and
// {{ creation_date|date:"<Go layout>" }} (either quote).
func render(pattern string, t time.Time) (string, error) {
	var b strings.Builder
	rest := pattern
	for {
		open := strings.Index(rest, "{{")
		tag := strings.Index(rest, "{%")
		comment := strings.Index(rest, "{#")
		if tag >= 0 && (open < 0 || tag < open) || comment >= 0 && (open < 0 || comment < open) {
			return "", errdefs.Invalid("snapshot pattern %q: only {{ creation_date }} and {{ creation_date|date:\"layout\" }} are supported, not {%% %%} tags or {# #} comments", pattern)
		}
		if open < 0 {
			b.WriteString(rest)
			return b.String(), nil
		}
		b.WriteString(rest[:open])
		end := strings.Index(rest[open:], "}}")
		if end < 0 {
			return "", errdefs.Invalid("snapshot pattern %q: {{ at byte %d is not closed by }}", pattern, len(pattern)-len(rest)+open)
		}
		out, err := expand(strings.TrimSpace(rest[open+2:open+end]), t)
		if err != nil {
			return "", errdefs.Invalid("snapshot pattern %q: %v", pattern, err)
		}
		b.WriteString(out)
		rest = rest[open+end+2:]
	}
}

// expand evaluates the inside of one {{ }}.
func expand(expr string, t time.Time) (string, error) {
	variable, filter, hasFilter := strings.Cut(expr, "|")
	if variable = strings.TrimSpace(variable); variable != "creation_date" {
		return "", fmt.Errorf("unknown variable %q (only creation_date is known)", variable)
	}
	if !hasFilter {
		return t.UTC().Format(time.RFC3339), nil
	}
	name, arg, hasArg := strings.Cut(filter, ":")
	if name = strings.TrimSpace(name); name != "date" {
		return "", fmt.Errorf("unknown filter %q (only date is supported)", name)
	}
	arg = strings.TrimSpace(arg)
	if !hasArg || len(arg) < 2 || (arg[0] != '"' && arg[0] != '\'') || arg[len(arg)-1] != arg[0] {
		return "", fmt.Errorf("the date filter wants a quoted Go layout, such as date:\"2006-01-02\"")
	}
	layout := arg[1 : len(arg)-1]
	if layout == "" || strings.ContainsRune(layout, rune(arg[0])) {
		return "", fmt.Errorf("the date filter wants one quoted, non-empty Go layout")
	}
	return t.Format(layout), nil
}
