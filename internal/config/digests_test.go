package config

import (
	"reflect"
	"testing"
	"time"
)

func TestDigestsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "malformed TZ prefix that makes robfig/cron panic",
			src:  minimal + y("digests:", "  schedules:", "    - name: daily", `      schedule: "TZ="`),
			want: []string{`chmedic.yaml:14:17: digests.schedules[0].schedule: schedule "TZ=": give the time zone in time_zone, not as a TZ= prefix`},
		},
		{
			name: "CRON_TZ prefix",
			src:  minimal + y("digests:", "  schedules:", "    - name: daily", `      schedule: "CRON_TZ=Europe/Berlin 0 9 * * *"`),
			want: []string{`chmedic.yaml:14:17: digests.schedules[0].schedule: schedule "CRON_TZ=Europe/Berlin 0 9 * * *": give the time zone in time_zone, not as a TZ= prefix`},
		},
		{
			name: "a date that never comes",
			src:  minimal + y("digests:", "  schedules:", "    - name: never", `      schedule: "0 0 30 2 *"`),
			want: []string{`chmedic.yaml:14:17: digests.schedules[0].schedule: schedule "0 0 30 2 *" never runs`},
		},
		{
			name: "bad fields, bad zone, unknown cluster, duplicate name, missing schedule",
			src: minimal + y("digests:", "  missed_run_max_age: -1h", "  growth: {znodes: {percent: -1}}", "  schedules:",
				"    - name: daily", `      schedule: "61 * * * *"`, "      clusters: [prod, nope]",
				"    - name: daily", `      schedule: "@dayly"`, "      time_zone: Mars/Olympus",
				"    - name: weekly"),
			want: []string{
				`chmedic.yaml:12:23: digests.missed_run_max_age: must not be negative, got -1h`,
				`chmedic.yaml:13:30: digests.growth.znodes.percent: must not be negative, got -1`,
				`chmedic.yaml:16:17: digests.schedules[0].schedule: schedule "61 * * * *": end of range (61) above maximum (59): 61`,
				`chmedic.yaml:17:24: digests.schedules[0].clusters[1]: unknown cluster "nope"`,
				`chmedic.yaml:18:13: digests.schedules[1].name: duplicate digest name "daily" (first used at line 15)`,
				`chmedic.yaml:19:17: digests.schedules[1].schedule: schedule "@dayly": unrecognized descriptor: @dayly`,
				`chmedic.yaml:20:18: digests.schedules[1].time_zone: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Berlin)`,
				`chmedic.yaml:21:7: digests.schedules[2].schedule: is required (a 5-field cron spec such as "0 9 * * 1-5", or @daily)`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("chmedic.yaml", []byte(tc.src), nil, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errLines(t, err); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", join(got), join(tc.want))
			}
		})
	}
}

func join(ss []string) string {
	out := ""
	for _, s := range ss {
		out += "  " + s + "\n"
	}
	return out
}

func TestDigestsValues(t *testing.T) {
	c := mustParse(t, minimal+y("slack: {channel: '#alerts'}", "digests:", "  schedules:",
		"    - name: morning", `      schedule: "0 9 * * 1-5"`, "      time_zone: Europe/Berlin",
		"    - name: prod-only", "      schedule: '@daily'", "      clusters: [prod]", "      channel: '#prod-health'"), nil, nil)
	if c.Digests.MissedRunMaxAge != 6*time.Hour || c.Digests.Growth.Znodes.Min != 10000 {
		t.Errorf("defaults: %+v", c.Digests)
	}
	s := c.Digests.Schedules
	if len(s) != 2 || c.DigestChannel(s[0]) != "#alerts" || c.DigestChannel(s[1]) != "#prod-health" ||
		!reflect.DeepEqual(c.DigestClusters(s[0]), []string{"prod"}) {
		t.Errorf("schedules: %+v", s)
	}
}
