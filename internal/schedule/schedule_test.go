package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestParseScheduleErrorsNeverPanic(t *testing.T) {
	for _, tc := range []struct{ spec, tz, want string }{
		{"", "", "empty schedule"},
		{"TZ=", "", "time_zone"},
		{"CRON_TZ=", "", "time_zone"},
		{"TZ=Europe/Berlin", "", "time_zone"},
		{"cron_tz=UTC 0 9 * * *", "", "time_zone"},
		{"* * * *", "", "expected exactly 5 fields"},
		{"0 0 9 * * *", "", "expected exactly 5 fields"},
		{"61 * * * *", "", "above maximum"},
		{"@weekly x", "", "unrecognized descriptor"},
		{"@daily", "Mars/Olympus", "unknown time zone"},
	} {
		_, err := Parse(tc.spec, tc.tz)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q, %q) = %v, want an error containing %q", tc.spec, tc.tz, err, tc.want)
		}
	}
}

func at(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("no tzdata for %s: %v", name, err)
	}
	return l
}

// TestScheduleNext walks Next from a fixed clock, as the scheduler does.
func TestScheduleNext(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	ny := mustLoc(t, "America/New_York")
	for _, tc := range []struct {
		name, spec, tz string
		loc            *time.Location
		from           string
		want           []string // wall clock in loc
	}{
		{"daily descriptor, UTC", "@daily", "", time.UTC, "2026-12-01 08:15", []string{"2026-12-02 00:00", "2026-12-03 00:00"}},
		{"weekdays at 9 in Berlin", "0 9 * * 1-5", "Europe/Berlin", berlin, "2026-12-04 09:00", []string{"2026-12-07 09:00", "2026-12-08 09:00"}},
		{"the zone moves the instant", "0 9 * * *", "America/New_York", ny, "2026-12-01 08:59", []string{"2026-12-01 09:00", "2026-12-02 09:00"}},
		// Clocks jump 02:00 → 03:00 on 2026-03-29 in Berlin: 02:30 does not
		// exist that day; the run happens at the jump, not a day later.
		{"spring forward: nonexistent time runs at the jump", "30 2 * * *", "Europe/Berlin", berlin, "2026-03-28 12:00",
			[]string{"2026-03-29 03:00", "2026-03-30 02:30"}},
		// Clocks go back 03:00 → 02:00 on 2026-10-25: 02:30 happens twice; one run.
		{"fall back: repeated time runs once", "30 2 * * *", "Europe/Berlin", berlin, "2026-10-24 12:00",
			[]string{"2026-10-25 02:30", "2026-10-26 02:30"}},
		{"daily at 9 across the change", "0 9 * * *", "Europe/Berlin", berlin, "2026-03-28 10:00", []string{"2026-03-29 09:00", "2026-03-30 09:00"}},
		{"hourly across fall back: each wall hour once", "0 * * * *", "Europe/Berlin", berlin, "2026-10-25 00:30",
			[]string{"2026-10-25 01:00", "2026-10-25 02:00", "2026-10-25 03:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Parse(tc.spec, tc.tz)
			if err != nil {
				t.Fatal(err)
			}
			cur := at(t, tc.loc, tc.from)
			for i, w := range tc.want {
				n := s.Next(cur)
				if got := n.In(tc.loc).Format("2006-01-02 15:04"); got != w {
					t.Fatalf("run %d after %s: %s (%s UTC), want %s", i, cur.In(tc.loc), got, n.UTC().Format("15:04"), w)
				}
				if !n.After(cur) {
					t.Fatalf("Next(%s) = %s is not after it", cur, n)
				}
				cur = n
			}
		})
	}
	// The first occurrence of the repeated 02:30 is the CEST one (00:30 UTC).
	s, _ := Parse("30 2 * * *", "Europe/Berlin")
	if n := s.Next(at(t, berlin, "2026-10-24 12:00")); n.UTC().Format("15:04") != "00:30" {
		t.Errorf("fall back: ran at %s UTC, want the first occurrence 00:30 UTC", n.UTC().Format("15:04"))
	}
}

func TestScheduleLatest(t *testing.T) {
	s, _ := Parse("0 9 * * *", "")
	last := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if got := s.Latest(last, now, 1000); !got.Equal(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)) {
		t.Fatalf("latest %s", got)
	}
	if got := s.Latest(now.Add(-30*time.Minute), now, 1000); !got.IsZero() {
		t.Fatalf("nothing due: %s", got)
	}
}
