package snapshotpolicy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseScheduleNext(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		after   string
		want    string // "" is the zero time
		zero    bool
		startup bool
	}{
		{spec: "", after: "2024-05-01 10:00:00", zero: true},
		{spec: "   ", after: "2024-05-01 10:00:00", zero: true},
		{spec: "@never", after: "2024-05-01 10:00:00", zero: true},
		{spec: "@startup", after: "2024-05-01 10:00:00", zero: true, startup: true},
		{spec: "@STARTUP, 0 6 * * *", after: "2024-05-01 10:00:00", want: "2024-05-02 06:00:00", startup: true},
		{spec: "@never, 0 6 * * *", after: "2024-05-01 10:00:00", want: "2024-05-02 06:00:00"},
		{spec: "0 6 * * *", after: "2024-05-01 05:59:30", want: "2024-05-01 06:00:00"},
		{spec: "0 6 * * *", after: "2024-05-01 06:00:00", want: "2024-05-02 06:00:00"}, // strictly after
		{spec: "* * * * *", after: "2024-05-01 06:00:00", want: "2024-05-01 06:01:00"},
		{spec: "* * * * *", after: "2024-05-01 06:00:59", want: "2024-05-01 06:01:00"},
		{spec: "*/15 * * * *", after: "2024-05-01 06:16:00", want: "2024-05-01 06:30:00"},
		{spec: "0  6   * * *", after: "2024-05-01 05:00:00", want: "2024-05-01 06:00:00"},
		{spec: "0 0 * * mon", after: "2024-05-01 00:00:00", want: "2024-05-06 00:00:00"}, // 1 May 2024 is a Wednesday
		{spec: "0 0 1 JAN *", after: "2024-05-01 00:00:00", want: "2025-01-01 00:00:00"},
		{spec: "0 0 29 2 *", after: "2024-03-01 00:00:00", want: "2028-02-29 00:00:00"},
		{spec: "0 0 13 * 5", after: "2024-05-01 00:00:00", want: "2024-05-03 00:00:00"}, // dom OR dow: Friday 3rd
		{spec: "0 6 * * *, 30 18 * * *", after: "2024-05-01 07:00:00", want: "2024-05-01 18:30:00"},
		{spec: "30 18 * * *, 0 6 * * *", after: "2024-05-01 19:00:00", want: "2024-05-02 06:00:00"},
		{spec: "0 1-3 * * *", after: "2024-05-01 01:00:00", want: "2024-05-01 02:00:00"},
		{spec: "5,10 * * * *", after: "2024-05-01 01:05:00", want: "2024-05-01 01:10:00"},
	} {
		s, err := ParseSchedule(tc.spec, "42")
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tc.spec, err)
			continue
		}
		if s.IsZero() != tc.zero || s.OnStartup() != tc.startup || s.String() != tc.spec {
			t.Errorf("ParseSchedule(%q): IsZero %v OnStartup %v String %q, want %v %v %q",
				tc.spec, s.IsZero(), s.OnStartup(), s.String(), tc.zero, tc.startup, tc.spec)
		}
		var want time.Time
		if tc.want != "" {
			want = utc(tc.want)
		}
		if got := s.Next(utc(tc.after)); !got.Equal(want) {
			t.Errorf("ParseSchedule(%q).Next(%s) = %s, want %s", tc.spec, tc.after, got, want)
		}
	}
}

func TestParseScheduleBad(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
	}{
		{"61 * * * *", `minute field "61"`},
		{"* 24 * * *", `hour field "24"`},
		{"* * 0 * *", `day-of-month field "0"`},
		{"* * 32 * *", `day-of-month field "32"`},
		{"* * * 13 *", `month field "13"`},
		{"* * * foo *", `month field "foo"`},
		{"* * * * 8", `day-of-week field "8"`},
		{"*/0 * * * *", `minute field "*/0"`},
		{"5-1 * * * *", `minute field "5-1"`},
		{"x * * * *", `minute field "x"`},
		{"TZ=UTC * * * *", `minute field "tz=utc": unexpected character '='`},
		{"* * * *", "has 4 fields, want 5"},
		{"0 * * * * *", "has 6 fields, want 5"},
		{"daily", "has 1 fields, want 5"},
		{"@every 30s", "at least 1m0s"},
		{"@every", "@every stands alone"},
		{"@every x", "Go duration"},
		{"@daily, @every 1h", "@every stands alone"},
		{"@reboot", `unknown alias "@reboot"`},
		{"@hourly,@daily", `unknown alias "@hourly,@daily"`},
		{"@daily, , @hourly", "empty entry"},
		{"0 0 30 2 *", "never fires"},
		{"0 0 31 4 *", "never fires"},
		{"@daily, 99 * * * *", `minute field "99"`},
	} {
		_, err := ParseSchedule(tc.spec, "1")
		if err == nil {
			t.Errorf("ParseSchedule(%q) = nil error, want %q", tc.spec, tc.want)
			continue
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSchedule(%q) = %v, want an invalid-argument error holding %q", tc.spec, err, tc.want)
		}
	}
}

// The aliases fire at the seed's minute (and hour, from @daily up) on the
// days cron gives them; nothing here depends on which minute that is.
func TestAliases(t *testing.T) {
	from := utc("2024-05-01 00:00:00")
	for _, tc := range []struct {
		alias     string
		fixedHour int // -1: the seed's hour
		check     func(time.Time) bool
		gap       time.Duration // between two firings, when fixed
	}{
		{"@hourly", -2, func(time.Time) bool { return true }, time.Hour},
		{"@daily", -1, func(time.Time) bool { return true }, 24 * time.Hour},
		{"@midnight", 0, func(time.Time) bool { return true }, 24 * time.Hour},
		{"@weekly", -1, func(n time.Time) bool { return n.Weekday() == time.Sunday }, 7 * 24 * time.Hour},
		{"@monthly", -1, func(n time.Time) bool { return n.Day() == 1 }, 0},
		{"@annually", -1, func(n time.Time) bool { return n.Day() == 1 && n.Month() == time.January }, 0},
		{"@yearly", -1, func(n time.Time) bool { return n.Day() == 1 && n.Month() == time.January }, 0},
	} {
		for _, seed := range []string{"1", "2", "c1", "17"} {
			s, err := ParseSchedule(strings.ToUpper(tc.alias), seed)
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tc.alias, err)
			}
			minute, hour := spread(seed)
			n1 := s.Next(from)
			n2 := s.Next(n1)
			for _, n := range []time.Time{n1, n2} {
				okHour := tc.fixedHour == -2 || (tc.fixedHour == -1 && n.Hour() == hour) || n.Hour() == tc.fixedHour
				if n.IsZero() || n.Minute() != minute || !okHour || !tc.check(n) {
					t.Errorf("%s seed %q fires at %s; want minute %d, hour %d/%d", tc.alias, seed, n, minute, hour, tc.fixedHour)
				}
			}
			if tc.gap != 0 && n2.Sub(n1) != tc.gap {
				t.Errorf("%s seed %q: firings %s and %s are not %s apart", tc.alias, seed, n1, n2, tc.gap)
			}
		}
	}
}

// One seed always gives the same time; many seeds cover every minute and
// hour, so a host full of @daily instances is spread over the day.
func TestSpread(t *testing.T) {
	m1, h1 := spread("41")
	m2, h2 := spread("41")
	if m1 != m2 || h1 != h2 {
		t.Fatalf("spread(41) gave %d:%d then %d:%d", h1, m1, h2, m2)
	}
	minutes, hours := map[int]bool{}, map[int]bool{}
	for i := range 2000 {
		m, h := spread(strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
		if m < 0 || m > 59 || h < 0 || h > 23 {
			t.Fatalf("spread gave %d:%d", h, m)
		}
		minutes[m], hours[h] = true, true
	}
	if len(minutes) != 60 || len(hours) != 24 {
		t.Errorf("2000 seeds cover %d minutes and %d hours, want 60 and 24", len(minutes), len(hours))
	}
}

func TestDue(t *testing.T) {
	s, err := ParseSchedule("5 12 * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		at   string
		want bool
	}{
		{"2024-05-01 12:05:00", true},
		{"2024-05-01 12:05:59", true},
		{"2024-05-01 12:04:59", false}, // LXD's check would fire here, a minute early
		{"2024-05-01 12:06:00", false},
		{"2024-05-02 12:05:30", true},
	} {
		if got := s.Due(utc(tc.at)); got != tc.want {
			t.Errorf("Due(%s) = %v, want %v", tc.at, got, tc.want)
		}
	}
	if (Schedule{}).Due(utc("2024-05-01 12:05:00")) {
		t.Error("the zero Schedule is due")
	}
}

// In UTC a schedule knows no DST: on the night European clocks go forward
// (30 March 2025) an hourly schedule still fires 24 times and a daily one
// at the same UTC time as the days around it.
func TestScheduleUTCIgnoresDST(t *testing.T) {
	hourly, err := ParseSchedule("0 * * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	day := utc("2025-03-30 00:00:00")
	n, count := day.Add(-time.Second), 0
	for {
		n = hourly.Next(n)
		if !n.Before(day.Add(24 * time.Hour)) {
			break
		}
		count++
	}
	if count != 24 {
		t.Errorf("hourly fired %d times on 2025-03-30 UTC, want 24", count)
	}
	daily, err := ParseSchedule("30 2 * * *", "")
	if err != nil {
		t.Fatal(err)
	}
	n = utc("2025-03-29 00:00:00")
	for _, want := range []string{"2025-03-29 02:30:00", "2025-03-30 02:30:00", "2025-03-31 02:30:00"} {
		if n = daily.Next(n); !n.Equal(utc(want)) {
			t.Errorf("daily fired at %s, want %s", n, want)
		}
	}
}

func TestParseScheduleEvery(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want time.Duration
	}{
		{"@every 5m", 5 * time.Minute},
		{"@EVERY 1H30M", 90 * time.Minute},
		{"  @every 1m  ", time.Minute},
		{"@daily", 0},
	} {
		s, err := ParseSchedule(tc.spec, "1")
		if err != nil || s.Every() != tc.want {
			t.Errorf("ParseSchedule(%q).Every() = %v, %v; want %v", tc.spec, s.Every(), err, tc.want)
		}
		if tc.want > 0 {
			// The core runs it from its own record: the wall-clock
			// minute tick never fires it.
			if s.IsZero() || !s.Next(time.Now()).IsZero() {
				t.Errorf("%q: IsZero %v, Next %v", tc.spec, s.IsZero(), s.Next(time.Now()))
			}
		}
	}
}
