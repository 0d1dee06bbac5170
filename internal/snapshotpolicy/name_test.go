package snapshotpolicy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestName(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 30, 45, 0, time.FixedZone("CEST", 2*3600))
	for _, tc := range []struct {
		pattern  string
		existing []string
		want     string
	}{
		{"", nil, "snap0"},
		{"snap%d", nil, "snap0"},
		{"", []string{"snap0"}, "snap1"},
		{"", []string{"snap0", "snap1", "snap2"}, "snap3"},
		// LXD numbers one past the highest, never into a gap.
		{"", []string{"snap0", "snap5"}, "snap6"},
		{"", []string{"snap3"}, "snap4"},
		{"", []string{"snap007"}, "snap8"},
		// Names that do not have a number at %d's place do not count.
		{"", []string{"other", "snapx", "snap-1", "snap1x", "snap", "Snap9", "snap99999999999999999999"}, "snap0"},
		{"", []string{"snap9223372036854775807"}, "snap0"},
		{"%d", []string{"2", "x"}, "3"},
		{"daily-%d-{{ creation_date|date:\"0102\" }}", nil, "daily-0-0501"},
		{"daily-%d-{{ creation_date|date:\"0102\" }}", []string{"daily-2-0501"}, "daily-3-0501"},
		{"daily-%d-{{ creation_date|date:\"0102\" }}", []string{"daily-7-0430"}, "daily-0-0501"},
		// A pattern without %d: the name itself, or name-N when taken.
		{"{{ creation_date|date:'2006-01-02' }}", nil, "2024-05-01"},
		{"{{ creation_date|date:'2006-01-02' }}", []string{"2024-04-30"}, "2024-05-01"},
		{"{{ creation_date|date:'2006-01-02' }}", []string{"2024-05-01"}, "2024-05-01-0"},
		{"{{ creation_date|date:'2006-01-02' }}", []string{"2024-05-01", "2024-05-01-0", "2024-05-01-3"}, "2024-05-01-4"},
		{"backup", []string{"backup"}, "backup-0"},
		{"backup", []string{"backup-4"}, "backup"},
		// The date filter formats in t's own location; the LXD docs' example.
		{"{{ creation_date|date:'2006-01-02_15-04-05' }}", nil, "2024-05-01_12-30-45"},
		{"x{{creation_date|date:'15'}}y", nil, "x12y"},
		{"x{{ creation_date | date : \"15\" }}", nil, "x12"},
		{"{{ creation_date|date:'Jan' }}-%d", []string{"May-1"}, "May-2"},
		// Plain creation_date is RFC 3339 in UTC: a valid name.
		{"{{ creation_date }}", nil, "2024-05-01T10:30:45Z"},
		{"auto-{{creation_date}}", nil, "auto-2024-05-01T10:30:45Z"},
		{"a}}b", nil, "a}}b"},
	} {
		got, err := Name(tc.pattern, at, tc.existing)
		if err != nil || got != tc.want {
			t.Errorf("Name(%q, %v) = %q, %v; want %q", tc.pattern, tc.existing, got, err, tc.want)
		}
		if err := ValidatePattern(tc.pattern); tc.pattern != "" && err != nil {
			t.Errorf("ValidatePattern(%q): %v", tc.pattern, err)
		}
	}
}

func TestPatternBad(t *testing.T) {
	for _, tc := range []struct {
		pattern, want string
	}{
		{"snap%d%d", "%d only once"},
		{"{{ creation_date|date:'%d' }}%d", "%d only once"},
		{"{{ bad", "{{ at byte 0 is not closed"},
		{"snap{{ creation_date", "{{ at byte 4 is not closed"},
		{"{{ bad }}", `unknown variable "bad"`},
		{"{{ }}", `unknown variable ""`},
		{"{{ creation_date|upper }}", `unknown filter "upper"`},
		{"{{ creation_date|date }}", "wants a quoted Go layout"},
		{"{{ creation_date|date:2006 }}", "wants a quoted Go layout"},
		{"{{ creation_date|date:'2006\" }}", "wants a quoted Go layout"},
		{"{{ creation_date|date:'' }}", "one quoted, non-empty"},
		{"{{ creation_date|date:'a'b' }}", "one quoted, non-empty"},
		{"{% if x %}a{% endif %}", "not {% %} tags"},
		{"a{# note #}", "not {% %} tags or {# #} comments"},
		{"my snap", `must not contain ' '`},
		{"a/b%d", `must not contain '/'`},
		{"a?b", `must not contain '?'`},
		{"{{ creation_date|date:'2006-01-02 15:04' }}", `must not contain ' '`},
		{"{{ creation_date|date:'-0700' }}", `must not contain '+'`},
		{"..", `must not be ".."`},
	} {
		err := ValidatePattern(tc.pattern)
		if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidatePattern(%q) = %v, want an invalid-argument error holding %q", tc.pattern, err, tc.want)
		}
		_, err = Name(tc.pattern, sampleTimes[1], nil)
		if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Name(%q) = %v, want an invalid-argument error holding %q", tc.pattern, err, tc.want)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // "" is valid
	}{
		{"snap0", ""},
		{"2024-05-01_12-30-45", ""},
		{"2024-05-01T10:30:45Z", ""},
		{"café.été", ""},
		{"a.b", ""},
		{"...", ""},
		{strings.Repeat("a", 255), ""},
		{"", "must not be empty"},
		{".", `must not be "."`},
		{"..", `must not be ".."`},
		{strings.Repeat("a", 256), "longer than 255 bytes"},
		{"a b", `' '`},
		{"a/b", `'/'`},
		{"a?b", `'?'`},
		{"a&b", `'&'`},
		{"a+b", `'+'`},
		{"a\tb", "control characters"},
		{"a\nb", "control characters"},
		{"a\x7fb", "control characters"},
	} {
		err := ValidateName(tc.name)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ValidateName(%q): %v", tc.name, err)
		case tc.want != "" && (err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("ValidateName(%q) = %v, want an invalid-argument error holding %q", tc.name, err, tc.want)
		}
	}
}

// A zone offset renders as "Z" in UTC but with a '+' east of it, so
// ValidatePattern refuses it even though a UTC host could use it.
func TestValidatePatternZone(t *testing.T) {
	p := "{{ creation_date|date:'Z07:00' }}"
	if got, err := Name(p, sampleTimes[0], nil); err != nil || got != "Z" {
		t.Fatalf("Name(%q) in UTC = %q, %v", p, got, err)
	}
	if err := ValidatePattern(p); err == nil || !strings.Contains(err.Error(), `'+'`) {
		t.Errorf("ValidatePattern(%q) = %v, want a refusal of '+'", p, err)
	}
}
