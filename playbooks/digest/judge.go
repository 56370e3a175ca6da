package digest

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// Growth is the threshold past which a growth figure is flagged: the
// figure grew by at least Min (absolute) and by at least Percent of the
// previous value (any growth from zero counts as a percentage).
type Growth struct {
	Percent float64 `json:"percent"`
	Min     float64 `json:"min"`
}

// DefaultGrowth are the default growth thresholds, per trend name.
func DefaultGrowth() map[string]Growth {
	return map[string]Growth{
		TrendZnodes:           {Percent: 10, Min: 10000},
		TrendWatches:          {Percent: 25, Min: 10000},
		TrendReplicatedTables: {Percent: 5, Min: 50},
		TrendDDL:              {Percent: 100, Min: 20},
		TrendConnections:      {Percent: 50, Min: 100},
	}
}

var trendTitles = map[string]string{
	TrendZnodes:           "znodes (largest on one coordination node)",
	TrendWatches:          "watches (all coordination nodes)",
	TrendReplicatedTables: "replicated tables (largest on one server)",
	TrendDDL:              "DDL statements per hour over the period (all servers)",
	TrendConnections:      "coordination client connections (all nodes)",
}

// growthAdvice is the runbooks' advice for each growth figure, in our words.
var growthAdvice = map[string]string{
	TrendZnodes: "The coordination tree keeps growing: every replicated table, part and DDL task is znodes. Find what creates them " +
		"(new tables, a DDL loop, parts piling up) before latency climbs, and size the ensemble and its disks for the peak.",
	TrendWatches: "More watches means more notification work on every change. It follows more replicated tables or more clients: " +
		"see which clients hold them (wchs, cons) and consolidate tables.",
	TrendReplicatedTables: "Each replicated table is permanent coordination load. Consolidate small tables, keep plain MergeTree where " +
		"replication is not needed, and drop unused ones over maintenance windows (dropping loads the coordination service too).",
	TrendDDL: "DDL volume is up: every CREATE/ALTER/DROP adds znodes and coordination traffic. Serialize schema changes and batch " +
		"migrations rather than running many at once; in an active spiral, stop all DDL first.",
	TrendConnections: "Client connections are up. A jump often means a reconnection herd after a coordination restart, or a client " +
		"leaking sessions; do not restart ClickHouse into a recovering ensemble, let sessions settle, and check maxClientCnxns headroom.",
}

var growthPlaybook = map[string]string{
	TrendZnodes:           "keeper-metadata-growth",
	TrendWatches:          "keeper-metadata-growth",
	TrendReplicatedTables: "keeper-metadata-growth",
	TrendDDL:              "keeper-metadata-growth",
	TrendConnections:      "keeper-connections",
}

// causePlaybook maps the diagnosis's likely causes to the playbook whose
// actions fit.
var causePlaybook = map[string]string{
	"keeper_down":           "keeper-down",
	"node_down":             "generic",
	"network_partition":     "interserver-connections",
	"ddl_storm":             "distributed-ddl-stuck",
	"metadata_explosion":    "keeper-metadata-growth",
	"disk_bottleneck":       "keeper-latency-high",
	"reconnection_herd":     "keeper-session-expired",
	"jvm_gc":                "keeper-latency-high",
	"connection_exhaustion": "keeper-connections",
}

// probePlaybook maps a finding's probe to a playbook when no cause is likely.
var probePlaybook = map[string]string{
	"clickhouse.ping":              "generic",
	"clickhouse.replicas":          "keeper-readonly-replicas",
	"clickhouse.keeper_sessions":   "keeper-session-expired",
	"clickhouse.keeper_latency":    "keeper-latency-high",
	"clickhouse.keeper_errors":     "keeper-exceptions",
	"clickhouse.ddl_queue":         "distributed-ddl-stuck",
	"clickhouse.ddl_storm":         "distributed-ddl-stuck",
	"clickhouse.metadata":          "keeper-metadata-growth",
	"clickhouse.interserver":       "interserver-connections",
	"clickhouse.replication_queue": "keeper-readonly-replicas",
	"keeper.ruok":                  "keeper-down",
	"keeper.isro":                  "keeper-down",
	"keeper.mntr":                  "keeper-latency-high",
	"keeper.srvr":                  "keeper-latency-high",
	"keeper.cons":                  "keeper-connections",
}

// trends computes the growth figures against the previous digest.
func trends(c *Cluster, prev *Cluster, growth map[string]Growth) []Trend {
	now := clusterTrendValues(c)
	var before map[string]*float64
	if prev != nil {
		before = clusterTrendValues(prev)
	}
	var out []Trend
	for _, name := range TrendNames() {
		t := Trend{Name: name, Title: trendTitles[name], Value: now[name]}
		g, ok := growth[name]
		if !ok {
			g = DefaultGrowth()[name]
		}
		t.Threshold = fmt.Sprintf("+%s and +%s%%", fmtNum(g.Min), fmtNum(g.Percent))
		if before != nil {
			t.Previous = before[name]
		}
		if t.Value != nil && t.Previous != nil {
			d := *t.Value - *t.Previous
			t.Delta = f64(d)
			if *t.Previous != 0 {
				t.DeltaPercent = f64(round1(d / *t.Previous * 100))
			}
			pctOK := *t.Previous == 0 || d / *t.Previous * 100 >= g.Percent
			if d > 0 && d >= g.Min && pctOK {
				t.Flagged = true
				t.Advice = growthAdvice[name]
			}
		}
		out = append(out, t)
	}
	return out
}

func clusterTrendValues(c *Cluster) map[string]*float64 {
	m := map[string]*float64{}
	var znodes, watches, conns *float64
	for _, k := range c.Keeper {
		if k.Znodes != nil {
			znodes = maxF(znodes, f64(float64(*k.Znodes)))
		}
		if k.Watches != nil {
			watches = sumF(watches, float64(*k.Watches))
		}
		if k.Connections != nil {
			conns = sumF(conns, float64(*k.Connections))
		}
	}
	m[TrendZnodes], m[TrendWatches], m[TrendConnections] = znodes, watches, conns
	if c.ReplicatedTables != nil {
		m[TrendReplicatedTables] = f64(float64(*c.ReplicatedTables))
	}
	// DDL volume is compared as a rate: periods differ (a digest asked
	// for an hour after the scheduled one covers an hour, not a day).
	if c.DDL.PerHour != nil {
		m[TrendDDL] = f64(*c.DDL.PerHour)
	}
	return m
}

func sumF(a *float64, b float64) *float64 {
	if a == nil {
		return f64(b)
	}
	return f64(*a + b)
}

// judge sets the cluster's verdict, its reasons and the actions of the
// matching playbooks.
func judge(c *Cluster, d *diagnose.Diagnosis, pbs Playbooks) {
	add := func(level Verdict, text, advice, playbook string) {
		c.Reasons = append(c.Reasons, Reason{Level: level, Text: text, Advice: advice, Playbook: playbook})
	}
	if d == nil {
		add(Act, "no diagnosis: "+c.Diagnosis.Error, "", "")
	}
	// The coordination service first: when it is down, it is the cause.
	var kdown, kunknown []string
	for _, k := range c.Keeper {
		switch {
		case k.State == "down" || k.State == "not serving":
			kdown = append(kdown, k.Name)
		case !k.Up:
			kunknown = append(kunknown, k.Name)
		}
	}
	if len(kunknown) > 0 {
		add(Watch, fmt.Sprintf("the state of coordination nodes %s could not be read (allow ruok, mntr or srvr in their four-letter-word whitelist)",
			strings.Join(kunknown, ", ")), "", "")
	}
	if len(kdown) > 0 {
		add(Act, fmt.Sprintf("%d of %d coordination nodes down or not serving (%s)", len(kdown), len(c.Keeper), strings.Join(kdown, ", ")),
			"Bring the coordination service back before anything else; until then replicated tables are read-only. Stop all DDL.", "keeper-down")
	}
	if c.NodesTotal > 0 && c.NodesUp < c.NodesTotal {
		var down []string
		for _, n := range c.Nodes {
			if !n.Up {
				down = append(down, n.Name)
			}
		}
		add(Act, fmt.Sprintf("%d of %d ClickHouse nodes down (%s)", c.NodesTotal-c.NodesUp, c.NodesTotal, strings.Join(down, ", ")), "", "generic")
	}
	if c.ReadonlyReplicas != nil && *c.ReadonlyReplicas > 0 {
		add(Act, fmt.Sprintf("%d read-only replicas", *c.ReadonlyReplicas),
			"Read-only replicas refuse inserts: they lost their coordination session. Fix the coordination service first; restart a replica only once it is healthy.",
			"keeper-readonly-replicas")
	}
	if d != nil {
		covered := map[string]bool{"clickhouse.ping": c.NodesUp < c.NodesTotal, "keeper.ruok": len(kdown) > 0,
			"clickhouse.replicas": c.ReadonlyReplicas != nil && *c.ReadonlyReplicas > 0}
		top, likely := d.Top()
		// Unknown findings: a check that failed (an error: a timeout, a
		// refused query) is worth a look; one that only says what this
		// server cannot show (session details on old releases) is a note.
		errored := map[string]bool{}
		for _, r := range d.Results {
			if r.Status == probe.Unknown && r.Error != "" {
				errored[r.Probe+"\x00"+r.Node] = true
			}
		}
		// Findings on a node already reported down add nothing.
		downNode := map[string]bool{}
		for _, n := range c.Nodes {
			downNode[n.Name] = !n.Up
		}
		for _, k := range kdown {
			downNode[k] = true
		}
		var crit, warn, unknown []diagnose.Finding
		for _, f := range d.Findings {
			if f.Node != "" && downNode[f.Node] {
				continue
			}
			switch {
			case f.Status == probe.Crit:
				crit = append(crit, f)
			case f.Status == probe.Warn:
				warn = append(warn, f)
			case f.Status == probe.Unknown && errored[f.Probe+"\x00"+f.Node]:
				unknown = append(unknown, f)
			case f.Status == probe.Unknown:
				c.Notes = append(c.Notes, "could not tell: "+findingText(f))
			}
		}
		for _, f := range crit {
			if covered[f.Probe] {
				continue
			}
			covered[f.Probe] = true
			pb := probePlaybook[f.Probe]
			if likely {
				if p, ok := causePlaybook[top.Name]; ok {
					pb = p
				}
			}
			add(Act, findingText(f), "", pb)
		}
		for _, f := range warn {
			if covered[f.Probe] {
				continue
			}
			covered[f.Probe] = true
			add(Watch, findingText(f), "", probePlaybook[f.Probe])
		}
		if len(unknown) > 0 {
			var names []string
			for _, f := range unknown {
				names = append(names, findingText(f))
			}
			sort.Strings(names)
			add(Watch, fmt.Sprintf("%d checks failed: %s", len(unknown), strings.Join(firstN(names, 3), "; ")), "", "")
		}
		if likely && top.Likelihood == diagnose.Likely && c.worstReason() == Act {
			c.Notes = append(c.Notes, "likely cause: "+top.Title)
		}
	}
	for _, t := range c.Trends {
		if t.Flagged {
			add(Watch, fmt.Sprintf("%s grew by %s since the previous digest (%s → %s; threshold %s)",
				t.Title, fmtNum(*t.Delta), fmtNum(*t.Previous), fmtNum(*t.Value), t.Threshold), t.Advice, growthPlaybook[t.Name])
		}
	}
	c.Verdict = c.worstReason()
	c.Actions = actionsFor(c.Reasons, pbs)
}

func (c *Cluster) worstReason() Verdict {
	v := Healthy
	for _, r := range c.Reasons {
		v = v.Worse(r.Level)
	}
	return v
}

// actionsFor lists the actions of the playbooks behind the act reasons,
// each kind once, at most five.
func actionsFor(reasons []Reason, pbs Playbooks) []Action {
	if pbs == nil {
		return nil
	}
	var out []Action
	seen := map[string]bool{}
	for _, r := range reasons {
		if r.Level != Act || r.Playbook == "" {
			continue
		}
		_, as, ok := pbs(r.Playbook)
		if !ok {
			continue
		}
		for _, a := range as {
			if seen[a.Kind] || len(out) == 5 {
				continue
			}
			seen[a.Kind] = true
			out = append(out, Action{Kind: a.Kind, Label: a.Label, Params: a.Params, Danger: a.Danger, Confirm: a.Confirm,
				Playbook: r.Playbook, Reason: r.Text})
		}
	}
	return out
}

func findingText(f diagnose.Finding) string {
	if f.Node != "" {
		return f.Node + ": " + oneLine(f.Summary)
	}
	return oneLine(f.Summary)
}

func firstN(ss []string, n int) []string {
	if len(ss) > n {
		return append(ss[:n:n], fmt.Sprintf("and %d more", len(ss)-n))
	}
	return ss
}

// fmtNum prints a figure without a useless fraction.
func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.1f", v)
}
