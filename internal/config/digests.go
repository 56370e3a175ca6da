package config

import (
	"fmt"
	"time"

	"github.com/chmedic/chmedic/internal/schedule"
)

// Digests configures the scheduled health digests (digests).
type Digests struct {
	// MissedRunMaxAge is how old a scheduled run missed while chmedic was
	// down may be and still be posted (once) at start-up
	// (missed_run_max_age) [6h]; 0 never posts missed runs.
	MissedRunMaxAge time.Duration `yaml:"missed_run_max_age"`
	// Growth are the thresholds past which a growth figure is flagged
	// (growth).
	Growth DigestGrowth `yaml:"growth"`
	// Schedules are the digests to post (schedules); optional.
	Schedules []DigestSchedule `yaml:"schedules"`
}

// DigestGrowth are the growth thresholds, one per growth figure.
type DigestGrowth struct {
	// Znodes (znodes) [+10% and +10000].
	Znodes GrowthThreshold `yaml:"znodes"`
	// Watches (watches) [+25% and +10000].
	Watches GrowthThreshold `yaml:"watches"`
	// ReplicatedTables (replicated_tables) [+5% and +50].
	ReplicatedTables GrowthThreshold `yaml:"replicated_tables"`
	// DDL is the DDL rate over the digest's period, statements per hour
	// (ddl) [+100% and +20].
	DDL GrowthThreshold `yaml:"ddl"`
	// Connections (connections) [+50% and +100].
	Connections GrowthThreshold `yaml:"connections"`
}

// GrowthThreshold flags a figure that grew, against the previous digest,
// by at least Percent percent and by at least Min.
type GrowthThreshold struct {
	// Percent (percent) ≥ 0; growth from zero always passes it.
	Percent float64 `yaml:"percent"`
	// Min is the smallest absolute growth flagged (min) ≥ 0.
	Min float64 `yaml:"min"`
}

// DigestSchedule is one scheduled digest.
type DigestSchedule struct {
	// Name (name); required, unique, [a-zA-Z0-9_.-]+.
	Name string `yaml:"name"`
	// Schedule is a standard 5-field cron spec or a descriptor (@daily,
	// @hourly, @weekly, @monthly, @yearly, @every 12h) (schedule); required.
	// TZ= / CRON_TZ= prefixes are refused: use TimeZone.
	Schedule string `yaml:"schedule"`
	// TimeZone is an IANA zone such as Europe/Berlin (time_zone) [UTC].
	TimeZone string `yaml:"time_zone"`
	// Clusters are the clusters covered (clusters) [all].
	Clusters []string `yaml:"clusters"`
	// Channel is where it is posted (channel) [slack.channel].
	Channel string `yaml:"channel"`
}

func defaultDigests() Digests {
	return Digests{
		MissedRunMaxAge: 6 * time.Hour,
		Growth: DigestGrowth{
			Znodes:           GrowthThreshold{Percent: 10, Min: 10000},
			Watches:          GrowthThreshold{Percent: 25, Min: 10000},
			ReplicatedTables: GrowthThreshold{Percent: 5, Min: 50},
			DDL:              GrowthThreshold{Percent: 100, Min: 20},
			Connections:      GrowthThreshold{Percent: 50, Min: 100},
		},
	}
}

// DigestClusters returns the clusters a digest covers (all when it names none).
func (c *Config) DigestClusters(s DigestSchedule) []string {
	if len(s.Clusters) > 0 {
		return s.Clusters
	}
	names := make([]string, 0, len(c.Clusters))
	for _, cl := range c.Clusters {
		names = append(names, cl.Name)
	}
	return names
}

// DigestChannel returns the channel a digest is posted to.
func (c *Config) DigestChannel(s DigestSchedule) string {
	if s.Channel != "" {
		return s.Channel
	}
	return c.Slack.Channel
}

func (d *decoder) validateDigests(c *Config) {
	g := c.Digests
	d.nonNegative("digests.missed_run_max_age", g.MissedRunMaxAge)
	for name, t := range map[string]GrowthThreshold{
		"znodes": g.Growth.Znodes, "watches": g.Growth.Watches, "replicated_tables": g.Growth.ReplicatedTables,
		"ddl": g.Growth.DDL, "connections": g.Growth.Connections,
	} {
		p := "digests.growth." + name
		if t.Percent < 0 {
			d.fail(p+".percent", "must not be negative, got %g", t.Percent)
		}
		if t.Min < 0 {
			d.fail(p+".min", "must not be negative, got %g", t.Min)
		}
	}
	known := map[string]bool{}
	for _, cl := range c.Clusters {
		known[cl.Name] = true
	}
	names := map[string]string{}
	for i, s := range g.Schedules {
		p := fmt.Sprintf("digests.schedules[%d]", i)
		d.checkName(p+".name", s.Name, "digest", names)
		tzOK := true // the zone is checked apart, so that both errors show
		if s.TimeZone != "" {
			if _, err := time.LoadLocation(s.TimeZone); err != nil {
				d.fail(p+".time_zone", "unknown time zone %q (use an IANA name such as Europe/Berlin)", s.TimeZone)
				tzOK = false
			}
		}
		switch {
		case s.Schedule == "":
			d.fail(p+".schedule", "is required (a 5-field cron spec such as \"0 9 * * 1-5\", or @daily)")
		default:
			tz := s.TimeZone
			if !tzOK {
				tz = "" // still check the spec itself
			}
			sc, err := schedule.Parse(s.Schedule, tz)
			switch {
			case err != nil:
				d.fail(p+".schedule", "%v", err)
			case sc.Next(time.Now()).IsZero():
				d.fail(p+".schedule", "schedule %q never runs", s.Schedule)
			}
		}
		for j, cl := range s.Clusters {
			if !known[cl] {
				d.fail(fmt.Sprintf("%s.clusters[%d]", p, j), "unknown cluster %q", cl)
			}
		}
		d.checkChannel(p+".channel", s.Channel, false)
		if c.Slack.Enabled() && s.Channel == "" && c.Slack.Channel == "" {
			d.fail(p+".channel", "is required when slack.channel is not set")
		}
	}
}
