// Package schedule parses and evaluates cron schedules (robfig/cron/v3
// standard specs and descriptors) in a time zone, without panics and
// without skipped or doubled runs around daylight-saving changes. The
// digest scheduler and the config validation share it.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is a parsed schedule: a standard 5-field cron spec or a
// descriptor (@daily, @hourly, @weekly, @monthly, @yearly, @every 1h),
// evaluated in one time zone.
//
// Around daylight-saving changes it differs from robfig/cron on purpose: a
// wall-clock time that does not exist that day (02:30 when clocks jump from
// 02:00 to 03:00) runs at the jump instead of being skipped for the day, and
// a wall-clock time that happens twice (when clocks go back) runs once, at
// its first occurrence.
type Schedule struct {
	Spec     string
	Location *time.Location
	sched    cron.Schedule
}

// ParseSchedule parses spec in the time zone tz ("" is UTC; "Local" is the
// process's zone). It never panics: robfig/cron panics on some malformed
// TZ= / CRON_TZ= prefixes, so those prefixes are refused (use time_zone)
// and the parser is guarded anyway.
func Parse(spec, tz string) (s *Schedule, err error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("empty schedule")
	}
	up := strings.ToUpper(spec)
	if strings.HasPrefix(up, "TZ=") || strings.HasPrefix(up, "CRON_TZ=") {
		return nil, fmt.Errorf("schedule %q: give the time zone in time_zone, not as a TZ= prefix", spec)
	}
	loc := time.UTC
	if tz != "" {
		loc, err = time.LoadLocation(tz)
		if err != nil {
			return nil, fmt.Errorf("time zone %q: %w", tz, err)
		}
	}
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("schedule %q: invalid (%v)", spec, p)
		}
	}()
	c, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	if ss, ok := c.(*cron.SpecSchedule); ok {
		ss.Location = loc
	}
	return &Schedule{Spec: spec, Location: loc, sched: c}, nil
}

// Next returns the first run strictly after t (zero if there is none
// within five years, e.g. "0 0 30 2 *").
func (s *Schedule) Next(t time.Time) time.Time {
	ss, ok := s.sched.(*cron.SpecSchedule)
	if !ok {
		return s.sched.Next(t)
	}
	for i := 0; i < 4; i++ {
		n := ss.Next(t)
		if gap := s.gapRun(ss, t, n); !gap.IsZero() {
			return gap
		}
		if n.IsZero() || !s.repeated(n) {
			return n
		}
		t = n // the second occurrence of a wall time: skip it
	}
	return time.Time{}
}

// repeated reports whether n's wall-clock time already happened in the
// hour before (clocks went back in between).
func (s *Schedule) repeated(n time.Time) bool {
	earlier := n.Add(-time.Hour).In(s.Location)
	ln := n.In(s.Location)
	_, o1 := earlier.Zone()
	_, o2 := ln.Zone()
	if o1 <= o2 {
		return false
	}
	// Any instant in the previous (o1−o2) with the same wall clock?
	for d := time.Duration(o1-o2) * time.Second; d > 0; d -= time.Minute {
		p := n.Add(-d).In(s.Location)
		if p.Hour() == ln.Hour() && p.Minute() == ln.Minute() && p.Day() == ln.Day() {
			return true
		}
	}
	return false
}

// gapRun returns the instant clocks jumped forward between t and n when a
// wall-clock time inside the jump matches the spec (that run would
// otherwise be skipped), or zero.
func (s *Schedule) gapRun(ss *cron.SpecSchedule, t, n time.Time) time.Time {
	if n.IsZero() {
		return time.Time{}
	}
	cur := t.In(s.Location)
	for i := 0; i < 3; i++ { // at most a few transitions before n
		_, end := cur.ZoneBounds()
		if end.IsZero() || !end.Before(n) {
			return time.Time{}
		}
		_, before := cur.Zone()
		_, after := end.In(s.Location).Zone()
		if after > before {
			// Wall times [end as seen at the old offset, + gap) never happen.
			old := time.FixedZone("before", before)
			fixed := *ss
			fixed.Location = old
			wall := end.In(old)
			gap := time.Duration(after-before) * time.Second
			if m := fixed.Next(wall.Add(-time.Second)); !m.IsZero() && m.Before(wall.Add(gap)) && end.After(t) {
				return end
			}
		}
		cur = end.In(s.Location)
	}
	return time.Time{}
}

// Latest returns the latest run in (after, upTo], or zero. It walks at most
// max runs (runs older than that are not worth posting late anyway).
func (s *Schedule) Latest(after, upTo time.Time, max int) time.Time {
	var last time.Time
	t := after
	for i := 0; i < max; i++ {
		n := s.Next(t)
		if n.IsZero() || n.After(upTo) {
			break
		}
		last, t = n, n
	}
	return last
}
