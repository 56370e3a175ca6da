package diagnose

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// view answers questions across the results of one round.
type view struct {
	results []probe.Result
	th      probe.Thresholds
	now     time.Time
	// kind is clusters[].keeper.kind (FlavorUnknown: read the answers).
	kind keeper.Flavor
	// layout places the ClickHouse nodes in shards and replicas.
	layout map[string]place
}

// input is what one round's analysis reads.
type input struct {
	results []probe.Result
	th      probe.Thresholds
	now     time.Time
	kind    keeper.Flavor
	layout  map[string]place
}

// keeperIs reports whether the coordination service is of kind k: the
// configured kind, else what the nodes say they are.
func (v view) keeperIs(k keeper.Flavor) bool {
	if v.kind != keeper.FlavorUnknown {
		return v.kind == k
	}
	flavors := append(v.attr("keeper.mntr", "flavor"), v.attr("keeper.srvr", "flavor")...)
	if len(flavors) == 0 {
		return k == keeper.FlavorZooKeeper
	}
	for _, f := range flavors {
		if f == string(k) {
			return true
		}
	}
	return false
}

// keeperMax is the largest per-node value of a coordination figure, read
// from mntr where that node answered it, else from srvr (the one word
// ZooKeeper 3.5+ allows by default).
func (v view) keeperMax(mntrFact, srvrFact string) (float64, string, bool) {
	fromMntr := map[string]bool{}
	best, node, found := math.Inf(-1), "", false
	for _, r := range v.ran("keeper.mntr") {
		if f, ok := r.Fact(mntrFact); ok {
			fromMntr[r.Node] = true
			if f > best {
				best, node, found = f, r.Node, true
			}
		}
	}
	if srvrFact == "" {
		return best, node, found
	}
	for _, r := range v.ran("keeper.srvr") {
		if fromMntr[r.Node] {
			continue
		}
		if f, ok := r.Fact(srvrFact); ok && f > best {
			best, node, found = f, r.Node, true
		}
	}
	return best, node, found
}

// ran returns the results of a probe that actually ran (not skipped).
func (v view) ran(name string) []probe.Result {
	var out []probe.Result
	for _, r := range v.results {
		if r.Probe == name && r.Skipped == "" {
			out = append(out, r)
		}
	}
	return out
}

// nodesWhere lists nodes whose fact satisfies pred.
func (v view) nodesWhere(name, fact string, pred func(float64) bool) []string {
	var nodes []string
	for _, r := range v.ran(name) {
		if f, ok := r.Fact(fact); ok && pred(f) {
			nodes = append(nodes, r.Node)
		}
	}
	return nodes
}

// measured counts nodes where the fact is present.
func (v view) measured(name, fact string) int {
	n := 0
	for _, r := range v.ran(name) {
		if _, ok := r.Fact(fact); ok {
			n++
		}
	}
	return n
}

// max returns the largest value of a fact and its node.
func (v view) max(name, fact string) (float64, string, bool) {
	best, node, found := math.Inf(-1), "", false
	for _, r := range v.ran(name) {
		if f, ok := r.Fact(fact); ok && f > best {
			best, node, found = f, r.Node, true
		}
	}
	return best, node, found
}

func (v view) attr(name, attr string) []string {
	var out []string
	for _, r := range v.ran(name) {
		if a := r.Attrs[attr]; a != "" {
			out = append(out, a)
		}
	}
	return out
}

func positive(f float64) bool { return f > 0 }
func zero(f float64) bool     { return f == 0 }

func nodesText(nodes []string) string {
	if len(nodes) > 6 {
		return strings.Join(nodes[:6], ", ") + fmt.Sprintf(" and %d more", len(nodes)-6)
	}
	return strings.Join(nodes, ", ")
}

type causeFunc func(v view) Cause

// causes is the catalogue of likely causes from the runbooks, in a fixed
// order (ties keep it).
var causeFuncs = []causeFunc{
	causeKeeperDown,
	causeNodeDown,
	causeNetworkPartition,
	causeDDLStorm,
	causeMetadataExplosion,
	causeDiskBottleneck,
	causeReconnectionHerd,
	causeJVMGC,
	causeConnectionExhaustion,
	causeZxidOverflow,
	causeShardUnavailable,
}

// analyze reads results without a configured kind or layout.
func analyze(results []probe.Result, th probe.Thresholds, now time.Time) (fs []Finding, cs []Cause, verdict string, worst probe.Status) {
	return analyzeRound(input{results: results, th: th, now: now})
}

func analyzeRound(in input) (fs []Finding, cs []Cause, verdict string, worst probe.Status) {
	results := in.results
	v := view{results: results, th: in.th, now: in.now, kind: in.kind, layout: in.layout}
	fs = append(shardFindings(v), findings(results, in.layout)...)
	for _, f := range fs {
		if f.Status.Worse(worst) {
			worst = f.Status
		}
	}
	for _, fn := range causeFuncs {
		c := fn(v)
		c.Score = math.Max(0, math.Min(1, c.Score))
		switch {
		case c.Score >= 0.6:
			c.Likelihood = Likely
		case c.Score >= 0.3:
			c.Likelihood = Possible
		default:
			c.Likelihood = Unlikely
		}
		cs = append(cs, c)
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].Score > cs[j].Score })
	verdict = headline(v, fs)
	if worst <= probe.Unknown {
		return fs, cs, verdict, worst
	}
	if len(cs) > 0 && cs[0].Likelihood != Unlikely {
		verdict += " Likely cause: " + cs[0].Title + "."
	} else {
		verdict += " No clear cause: the evidence is thin; see the findings."
	}
	return fs, cs, verdict, worst
}

// headline states what is happening, before any why.
func headline(v view, fs []Finding) string {
	readonly := v.nodesWhere("clickhouse.replicas", "readonly_replicas", positive)
	expired := v.nodesWhere("clickhouse.replicas", "session_expired_replicas", positive)
	lost := v.nodesWhere("clickhouse.keeper_latency", "keeper_reachable", zero)
	kdown := v.nodesWhere("keeper.ruok", "ok", zero)
	kmeasured := v.measured("keeper.ruok", "ok")
	tables := uniq(splitList(v.attr("clickhouse.replicas", "readonly_tables")))
	switch {
	case len(readonly) > 0 && (kmeasured > 0 && len(kdown) == kmeasured || len(lost) > 0 && len(lost) == v.measured("clickhouse.keeper_latency", "keeper_reachable")):
		return fmt.Sprintf("Coordination lost: replicas are read-only on %s (%s) and the coordination service is unreachable; inserts into replicated tables fail.",
			nodesText(readonly), tableText(tables))
	case len(readonly) > 0:
		return fmt.Sprintf("Replicas are read-only on %s (%s); inserts into them fail.", nodesText(readonly), tableText(tables))
	case len(expired) > 0:
		return fmt.Sprintf("ZooKeeper sessions expired on %s; replicated writes are at risk.", nodesText(expired))
	case kmeasured > 0 && len(kdown) == kmeasured:
		return fmt.Sprintf("The coordination service does not answer on any of its %d nodes.", kmeasured)
	}
	if lat, node, ok := v.keeperMax("avg_latency_ms", "latency_avg_ms"); ok && lat >= ms(v.th.KeeperLatencyWarn) {
		level := "stressed"
		if lat >= ms(v.th.KeeperLatencyCrit) {
			level = "severely degraded"
		}
		return fmt.Sprintf("Coordination is %s: average operation latency %.0f ms on %s (healthy is under %s).", level, lat, node, v.th.KeeperLatencyWarn)
	}
	if lat, node, ok := v.max("clickhouse.keeper_latency", "latency_ms"); ok && lat >= ms(v.th.KeeperLatencyCrit) {
		level := "stressed"
		if lat >= 10*ms(v.th.KeeperLatencyCrit) {
			level = "saturated"
		}
		return fmt.Sprintf("Coordination is %s: reading it from %s takes %.0f ms (normal is under %s).", level, node, lat, v.th.KeeperLatencyCrit)
	}
	if len(fs) == 0 {
		na := 0
		for _, r := range v.results {
			if r.IsUnavailable() {
				na++
			}
		}
		if na > 0 {
			return fmt.Sprintf("Cluster healthy: all %d checks passed (%d more are not available on this server version or setup).", len(v.results)-na, na)
		}
		return fmt.Sprintf("Cluster healthy: all %d checks passed.", len(v.results))
	}
	worst := fs[0]
	if worst.Status == probe.OK || worst.Status == probe.Unknown {
		return fmt.Sprintf("No problem found; %d checks could not be completed (see below).", countStatus(fs, probe.Unknown))
	}
	where := ""
	if worst.Node != "" {
		where = worst.Node + ": "
	}
	return where + strings.TrimSuffix(worst.Summary, ".") + "."
}

func countStatus(fs []Finding, s probe.Status) int {
	n := 0
	for _, f := range fs {
		if f.Status == s {
			n++
		}
	}
	return n
}

func tableText(tables []string) string {
	if len(tables) == 0 {
		return "replicated tables"
	}
	if len(tables) > 5 {
		return strings.Join(tables[:5], ", ") + fmt.Sprintf(" and %d more", len(tables)-5)
	}
	return strings.Join(tables, ", ")
}

func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func uniq(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func causeKeeperDown(v view) Cause {
	c := Cause{Name: "keeper_down", Title: "the coordination service is down or has lost quorum"}
	kdown := v.nodesWhere("keeper.ruok", "ok", zero)
	km := v.measured("keeper.ruok", "ok")
	lost := v.nodesWhere("clickhouse.keeper_latency", "keeper_reachable", zero)
	lm := v.measured("clickhouse.keeper_latency", "keeper_reachable")
	switch {
	case km > 0 && len(kdown) == km:
		c.Score = 0.9
		c.For = append(c.For, fmt.Sprintf("no coordination node answers ruok (%s)", nodesText(kdown)))
	case km > 0 && len(kdown)*2 >= km:
		c.Score = 0.8
		c.For = append(c.For, fmt.Sprintf("%d of %d coordination nodes do not answer (%s): a majority is needed for quorum", len(kdown), km, nodesText(kdown)))
	case len(kdown) > 0:
		c.Score = 0.3
		c.For = append(c.For, fmt.Sprintf("coordination node %s does not answer", nodesText(kdown)))
		c.Against = append(c.Against, fmt.Sprintf("%d of %d coordination nodes still answer, so quorum should hold", km-len(kdown), km))
	case km > 0:
		c.Against = append(c.Against, fmt.Sprintf("all %d coordination nodes answer ruok", km))
	}
	if lm > 0 && len(lost) == lm {
		c.Score += 0.3
		c.For = append(c.For, fmt.Sprintf("no ClickHouse node can reach it (%s)", nodesText(lost)))
	} else if lm > 0 {
		c.Against = append(c.Against, fmt.Sprintf("%d of %d ClickHouse nodes reach it", lm-len(lost), lm))
	}
	states := v.attr("keeper.mntr", "server_state")
	if len(states) == 0 {
		states = v.attr("keeper.srvr", "mode")
	}
	leaders := 0
	for _, s := range states {
		if s == "leader" || s == "standalone" {
			leaders++
		}
	}
	if len(states) > 0 && leaders == 0 {
		c.Score += 0.3
		c.For = append(c.For, "no coordination node reports itself leader or standalone")
	} else if leaders > 0 {
		c.Against = append(c.Against, "a leader is elected")
	}
	if ro := v.nodesWhere("keeper.isro", "read_only", positive); len(ro) > 0 {
		c.Score += 0.2
		c.For = append(c.For, fmt.Sprintf("%s serve read-only (ZooKeeper read-only mode: no quorum)", nodesText(ro)))
	}
	if obs := v.nodesWhere("keeper.isro", "observer", positive); len(obs) > 0 {
		c.Against = append(c.Against, fmt.Sprintf("%s answer isro with ro because they are ClickHouse Keeper observers, not for lack of quorum", nodesText(obs)))
	}
	return c
}

func causeNodeDown(v view) Cause {
	c := Cause{Name: "node_down", Title: "a ClickHouse node is down"}
	down := v.nodesWhere("clickhouse.ping", "up", zero)
	n := v.measured("clickhouse.ping", "up")
	switch {
	case len(down) > 0:
		c.Score = 0.7
		c.For = append(c.For, fmt.Sprintf("%s unreachable (%d of %d nodes)", nodesText(v.whereAll(down)), len(down), n))
	case n > 0:
		c.Against = append(c.Against, fmt.Sprintf("all %d ClickHouse nodes answer", n))
	}
	if inactive := v.nodesWhere("clickhouse.replicas", "inactive_replicas", positive); len(inactive) > 0 && len(down) > 0 {
		c.Score += 0.1
		c.For = append(c.For, fmt.Sprintf("replicas on %s see inactive peers", nodesText(inactive)))
	}
	return c
}

func causeNetworkPartition(v view) Cause {
	c := Cause{Name: "network_partition", Title: "a network partition between ClickHouse and the coordination service"}
	km := v.measured("keeper.ruok", "ok")
	kup := km - len(v.nodesWhere("keeper.ruok", "ok", zero))
	lost := v.nodesWhere("clickhouse.keeper_latency", "keeper_reachable", zero)
	lm := v.measured("clickhouse.keeper_latency", "keeper_reachable")
	expired := v.nodesWhere("clickhouse.replicas", "session_expired_replicas", positive)
	rm := v.measured("clickhouse.replicas", "session_expired_replicas")
	if len(lost) > 0 && kup > 0 {
		c.Score += 0.6
		c.For = append(c.For, fmt.Sprintf("chmedic reaches %d coordination nodes, but %s cannot", kup, nodesText(lost)))
	}
	if len(expired) > 0 && len(expired) < rm {
		c.Score += 0.3
		c.For = append(c.For, fmt.Sprintf("only some nodes lost their sessions (%s of %d)", nodesText(expired), rm))
	}
	if errs, node, ok := v.max("clickhouse.interserver", "cluster_errors"); ok && errs > 0 {
		c.Score += 0.2
		c.For = append(c.For, fmt.Sprintf("%s counts %.0f errors reaching cluster peers", node, errs))
	}
	if km > 0 && kup == 0 {
		c.Against = append(c.Against, "chmedic cannot reach the coordination service either: more likely it is down")
		c.Score -= 0.2
	}
	if lm > 0 && len(lost) == 0 {
		c.Against = append(c.Against, "every ClickHouse node reaches the coordination service")
	}
	return c
}

func causeDDLStorm(v view) Cause {
	c := Cause{Name: "ddl_storm", Title: "a DDL storm (many CREATE/ALTER/DROP at once)"}
	count, node, ok := v.max("clickhouse.ddl_storm", "ddl_count")
	if ok {
		win := v.th.DDLStormWindow
		if count >= float64(v.th.DDLStormCount) {
			c.Score += 0.6
			c.For = append(c.For, fmt.Sprintf("%.0f DDL statements on %s in the last %s (threshold %d)", count, node, win, v.th.DDLStormCount))
		} else if count >= float64(v.th.DDLStormCount)/2 {
			c.Score += 0.3
			c.For = append(c.For, fmt.Sprintf("%.0f DDL statements on %s in the last %s, approaching %d", count, node, win, v.th.DDLStormCount))
		} else {
			c.Against = append(c.Against, fmt.Sprintf("only %.0f DDL statements in the last %s", count, win))
		}
	}
	if n, _, ok := v.max("clickhouse.ddl_queue", "unfinished_entries"); ok && n > 0 {
		c.Score += 0.2
		c.For = append(c.For, fmt.Sprintf("%.0f distributed DDL entries unfinished", n))
		if age, _, ok := v.max("clickhouse.ddl_queue", "oldest_unfinished_seconds"); ok && age >= v.th.DDLStuckAfter.Seconds() {
			c.Score += 0.1
			c.For = append(c.For, fmt.Sprintf("the oldest has waited %s", (time.Duration(age)*time.Second).String()))
		}
	}
	return c
}

func causeMetadataExplosion(v view) Cause {
	c := Cause{Name: "metadata_explosion", Title: "metadata explosion (too many replicated tables / znodes)"}
	if n, node, ok := v.max("clickhouse.replicas", "replicated_tables"); ok {
		if n >= float64(v.th.ReplicatedTablesWarn) {
			c.Score += 0.5
			c.For = append(c.For, fmt.Sprintf("%.0f replicated tables on %s (threshold %d)", n, node, v.th.ReplicatedTablesWarn))
		} else {
			c.Against = append(c.Against, fmt.Sprintf("%.0f replicated tables per node", n))
		}
	}
	if z, node, ok := v.keeperMax("znode_count", "node_count"); ok {
		if z >= float64(v.th.ZnodeCountWarn) {
			c.Score += 0.3
			c.For = append(c.For, fmt.Sprintf("%.0f znodes on %s (threshold %d)", z, node, v.th.ZnodeCountWarn))
		} else {
			c.Against = append(c.Against, fmt.Sprintf("%.0f znodes", z))
		}
	}
	if ch, _, ok := v.max("clickhouse.metadata", "tables_root_children"); ok && ch >= float64(v.th.ReplicatedTablesWarn) {
		c.Score += 0.2
		c.For = append(c.For, fmt.Sprintf("%.0f children under the tables root", ch))
	}
	if c.Score > 0 && latencyElevated(v) {
		c.Score += 0.1
		c.For = append(c.For, "coordination latency is elevated")
	}
	return c
}

func latencyElevated(v view) bool {
	if lat, _, ok := v.max("clickhouse.keeper_latency", "latency_ms"); ok && lat >= ms(v.th.KeeperLatencyCrit) {
		return true
	}
	if lat, _, ok := v.keeperMax("avg_latency_ms", "latency_avg_ms"); ok && lat >= ms(v.th.KeeperLatencyWarn) {
		return true
	}
	return false
}

func causeDiskBottleneck(v view) Cause {
	c := Cause{Name: "disk_bottleneck", Title: "a slow transaction-log disk on the coordination nodes"}
	avg, node, ok := v.keeperMax("avg_latency_ms", "latency_avg_ms")
	if !ok {
		return c
	}
	if avg < ms(v.th.KeeperLatencyWarn) {
		c.Against = append(c.Against, fmt.Sprintf("average coordination latency is %.1f ms", avg))
		return c
	}
	c.Score += 0.4
	c.For = append(c.For, fmt.Sprintf("average latency %.1f ms on %s (healthy is under %s)", avg, node, v.th.KeeperLatencyWarn))
	if out, onode, ok := v.keeperMax("outstanding_requests", "outstanding"); ok && out >= float64(v.th.OutstandingRequestsWarn) {
		c.Score += 0.2
		c.For = append(c.For, fmt.Sprintf("%.0f outstanding requests on %s: requests queue behind the log writes", out, onode))
	}
	if z, _, ok := v.keeperMax("znode_count", "node_count"); ok && z < float64(v.th.ZnodeCountWarn) {
		if d, _, ok := v.max("clickhouse.ddl_storm", "ddl_count"); !ok || d < float64(v.th.DDLStormCount) {
			c.Score += 0.1
			c.For = append(c.For, "neither metadata size nor DDL volume explains the latency")
		}
	}
	c.Against = append(c.Against, "chmedic cannot see disk latency: check the volume that holds the transaction log")
	return c
}

func causeReconnectionHerd(v view) Cause {
	c := Cause{Name: "reconnection_herd", Title: "a reconnection herd after a coordination restart or leader change"}
	// Server start times: sessions opened when a server started are its
	// first sessions, not reconnections.
	uptime := map[string]float64{}
	for _, r := range v.ran("clickhouse.ping") {
		if u, ok := r.Fact("uptime_seconds"); ok {
			uptime[r.Node] = u
		}
	}
	var uptimes []float64
	var nodes []string
	fromStart := 0
	for _, r := range v.ran("clickhouse.keeper_sessions") {
		if u, ok := r.Fact("session_uptime_seconds"); ok {
			uptimes = append(uptimes, u)
			nodes = append(nodes, r.Node)
			if su, ok := uptime[r.Node]; ok && su-u < 30 {
				fromStart++
			}
		}
	}
	signature := false
	if len(uptimes) >= 2 {
		lo, hi := minMax(uptimes)
		switch {
		case fromStart == len(uptimes):
			c.Against = append(c.Against, "the sessions date from the servers' own start, not from a reconnection")
		case hi-lo <= 5 && hi < 900:
			signature = true
			c.Score += 0.4
			c.For = append(c.For, fmt.Sprintf("sessions of %s all began within %.0f s of each other, %.0f s ago", nodesText(nodes), hi-lo, hi))
		case hi-lo > 60:
			c.Against = append(c.Against, fmt.Sprintf("session ages differ by %.0f s", hi-lo))
		default:
			c.Against = append(c.Against, fmt.Sprintf("sessions are %.0f s old", lo))
		}
	}
	minUptime := math.Inf(1)
	for _, u := range uptime {
		minUptime = math.Min(minUptime, u)
	}
	if burst, node, ok := v.max("keeper.cons", "recent_connections"); ok && burst >= 2 {
		spread, _, _ := v.max("keeper.cons", "recent_spread_seconds")
		oldestAge, _, hasAge := v.max("keeper.cons", "recent_oldest_age_seconds")
		switch {
		case spread > 5:
		case hasAge && oldestAge >= minUptime-30:
			c.Against = append(c.Against, "the recent client connections coincide with ClickHouse servers starting")
		default:
			signature = true
			c.Score += 0.3
			c.For = append(c.For, fmt.Sprintf("%.0f client connections to %s were established within %.0f s in the last few minutes", burst, node, spread))
		}
	}
	if signature && latencyElevated(v) {
		c.Score += 0.3
		c.For = append(c.For, "coordination latency is elevated while they reconnect")
	} else if signature {
		c.Score = math.Min(c.Score, 0.4)
		c.Against = append(c.Against, "coordination latency is normal, so the reconnections are not hurting it")
	}
	return c
}

func causeJVMGC(v view) Cause {
	c := Cause{Name: "jvm_gc", Title: "JVM garbage-collection pauses on ZooKeeper"}
	if !v.keeperIs(keeper.FlavorZooKeeper) {
		c.Against = append(c.Against, "ClickHouse Keeper is not JVM-based")
		return c
	}
	maxLat, node, ok := v.keeperMax("max_latency_ms", "latency_max_ms")
	if !ok {
		return c
	}
	avg, _, _ := v.keeperMax("avg_latency_ms", "latency_avg_ms")
	if maxLat >= ms(v.th.KeeperLatencyCrit) && avg < ms(v.th.KeeperLatencyWarn) {
		c.Score += 0.4
		c.For = append(c.For, fmt.Sprintf("latency spikes to %.0f ms on %s while the average is %.1f ms: pauses, not sustained load", maxLat, node, avg))
		c.Against = append(c.Against, "confirm in the ZooKeeper GC log; mntr's max latency is since the last stats reset")
	} else {
		c.Against = append(c.Against, fmt.Sprintf("no isolated latency spikes (max %.0f ms, average %.1f ms)", maxLat, avg))
	}
	return c
}

func causeConnectionExhaustion(v view) Cause {
	c := Cause{Name: "connection_exhaustion", Title: "client connections near the coordination service's limit"}
	if ratio, node, ok := v.max("keeper.cons", "max_per_ip_ratio"); ok {
		if ratio >= v.th.ConnectionsRatioWarn {
			c.Score += 0.6
			ip := ""
			for _, r := range v.ran("keeper.cons") {
				if r.Node == node {
					ip = r.Attrs["top_ip"]
				}
			}
			c.For = append(c.For, fmt.Sprintf("client %s holds %.0f%% of maxClientCnxns on %s", ip, ratio*100, node))
		} else {
			c.Against = append(c.Against, fmt.Sprintf("the busiest client holds %.0f%% of maxClientCnxns", ratio*100))
		}
	}
	if fd, node, ok := v.max("keeper.mntr", "fd_ratio"); ok && fd >= v.th.FDRatioWarn {
		c.Score += 0.3
		c.For = append(c.For, fmt.Sprintf("%.0f%% of file descriptors in use on %s", fd*100, node))
	}
	return c
}

func minMax(xs []float64) (float64, float64) {
	lo, hi := xs[0], xs[0]
	for _, x := range xs[1:] {
		lo = math.Min(lo, x)
		hi = math.Max(hi, x)
	}
	return lo, hi
}
