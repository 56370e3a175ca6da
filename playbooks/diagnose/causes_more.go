package diagnose

import (
	"fmt"
	"sort"
	"strings"

	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// massExpiry lists the ClickHouse nodes whose coordination sessions expired
// or were re-established within the last 15 minutes, and how many nodes
// were measured.
func (v view) massExpiry() (nodes []string, measured int) {
	seen := map[string]bool{}
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			nodes = append(nodes, n)
		}
	}
	for _, n := range v.nodesWhere("clickhouse.replicas", "session_expired_replicas", positive) {
		add(n)
	}
	for _, n := range v.nodesWhere("clickhouse.keeper_sessions", "session_expired", positive) {
		add(n)
	}
	for _, n := range v.nodesWhere("clickhouse.keeper_sessions", "session_uptime_seconds", func(f float64) bool { return f < 900 }) {
		add(n)
	}
	measured = max(v.measured("clickhouse.ping", "up"), v.measured("clickhouse.replicas", "session_expired_replicas"))
	sort.Strings(nodes)
	return nodes, measured
}

// causeZxidOverflow is seed 003's transaction-counter overflow: when the
// low 32 bits of ZooKeeper's zxid reach 2^32 the ensemble forces a new
// epoch (a leader election) and every session drops. ClickHouse Keeper is
// not affected. The epoch change is seen against the previous round.
func causeZxidOverflow(v view) Cause {
	c := Cause{Name: "zxid_overflow", Title: "the ZooKeeper zxid counter wrapped: the ensemble forced a new epoch and sessions expired together"}
	if !v.keeperIs(keeper.FlavorZooKeeper) {
		c.Against = append(c.Against, "ClickHouse Keeper has no 32-bit zxid counter to overflow")
		return c
	}
	expired, measured := v.massExpiry()
	together := len(expired) >= 2 || (measured > 0 && len(expired) == measured)
	// wrapped: a new epoch after the counter neared 2^32. unseen: no
	// previous round, but the counter is near zero (a new epoch began).
	wrapped, unseen := false, false
	for _, r := range v.ran("keeper.srvr") {
		share, ok := r.Fact("zxid_counter_share")
		if !ok {
			continue
		}
		epoch, _ := r.Fact("zxid_epoch")
		prevEpoch, hasPrev := r.Fact(factPrevEpoch)
		prevShare, _ := r.Fact(factPrevShare)
		age, _ := r.Fact(factPrevAge)
		switch {
		case hasPrev && epoch > prevEpoch && prevShare >= v.th.ZxidWarnShare:
			wrapped = true
			c.Score += 0.5
			c.For = append(c.For, fmt.Sprintf("the epoch on %s went from %.0f to %.0f since the round %s ago, when the counter stood at %.1f%% of 2^32: it wrapped",
				r.Node, prevEpoch, epoch, secondsText(age), prevShare*100))
			if share < 0.01 {
				c.Score += 0.1
				c.For = append(c.For, fmt.Sprintf("the counter restarted near zero (%.3f%% of 2^32)", share*100))
			}
		case hasPrev && epoch > prevEpoch:
			c.Against = append(c.Against, fmt.Sprintf("the epoch on %s changed (%.0f → %.0f) since the round %s ago, but the counter then stood at only %.1f%% of 2^32: an ordinary leader election, not an overflow",
				r.Node, prevEpoch, epoch, secondsText(age), prevShare*100))
		case hasPrev:
			c.Against = append(c.Against, fmt.Sprintf("the epoch on %s has not changed since the round %s ago", r.Node, secondsText(age)))
		case share < 0.001:
			unseen = true
			c.Score += 0.1
			c.For = append(c.For, fmt.Sprintf("the counter on %s is near zero (%.3f%% of 2^32): a new epoch began recently (no earlier round to compare with)", r.Node, share*100))
		case share >= v.th.ZxidWarnShare:
			c.Score += 0.1
			c.For = append(c.For, fmt.Sprintf("the counter on %s is at %.1f%% of 2^32: it wraps soon", r.Node, share*100))
		}
	}
	switch {
	case (wrapped || unseen) && together:
		c.Score += 0.3
		c.For = append(c.For, fmt.Sprintf("coordination sessions expired or were renewed together on %s", nodesText(expired)))
	case wrapped && measured > 0:
		c.Against = append(c.Against, "the ClickHouse nodes kept their sessions")
	}
	return c
}

func secondsText(s float64) string {
	if s < 120 {
		return fmt.Sprintf("%.0f s", s)
	}
	return fmt.Sprintf("%.0f min", s/60)
}

// shardTrouble says, per shard, which replicas are down or read-only.
type shardTrouble struct {
	shard          int
	nodes          []string
	down, readonly []string
}

// unavailableShards lists the shards none of whose replicas is up and
// writable (every replica down or read-only), in shard order.
func (v view) unavailableShards() (bad []shardTrouble, healthy []shardTrouble) {
	down := map[string]bool{}
	for _, n := range v.nodesWhere("clickhouse.ping", "up", zero) {
		down[n] = true
	}
	ro := map[string]bool{}
	for _, n := range v.nodesWhere("clickhouse.replicas", "readonly_replicas", positive) {
		ro[n] = true
	}
	measured := map[string]bool{}
	for _, r := range v.ran("clickhouse.ping") {
		if _, ok := r.Fact("up"); ok {
			measured[r.Node] = true
		}
	}
	shards := v.shards()
	ids := make([]int, 0, len(shards))
	for id := range shards {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		st := shardTrouble{shard: id, nodes: shards[id]}
		all, seen := true, 0
		for _, n := range st.nodes {
			if !measured[n] {
				continue
			}
			seen++
			switch {
			case down[n]:
				st.down = append(st.down, n)
			case ro[n]:
				st.readonly = append(st.readonly, n)
			default:
				all = false
			}
		}
		if seen > 0 && all {
			bad = append(bad, st)
		} else if seen > 0 {
			healthy = append(healthy, st)
		}
	}
	return bad, healthy
}

func (st shardTrouble) text(v view) string {
	var parts []string
	if len(st.down) > 0 {
		parts = append(parts, "down: "+nodesText(v.replicaNames(st.down)))
	}
	if len(st.readonly) > 0 {
		parts = append(parts, "read-only: "+nodesText(v.replicaNames(st.readonly)))
	}
	what := "inserts into it fail"
	if len(st.readonly) == 0 {
		what = "its part of the data can be neither read nor written"
	}
	return fmt.Sprintf("every replica of shard %d is down or read-only (%s): %s", st.shard, strings.Join(parts, "; "), what)
}

// replicaNames names nodes by replica: "r1 on ch-1".
func (v view) replicaNames(nodes []string) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		if p, ok := v.layout[n]; ok && p.Replica != "" && p.Replica != n {
			out[i] = fmt.Sprintf("replica %s on %s", p.Replica, n)
		} else {
			out[i] = n
		}
	}
	return out
}

// causeShardUnavailable: a shard with no replica up and writable. It is a
// consequence as often as a cause (a lost coordination service turns every
// replica read-only), so it ranks high only when not every shard is hit.
func causeShardUnavailable(v view) Cause {
	c := Cause{Name: "shard_unavailable", Title: "a shard is unavailable: every replica of it is down or read-only"}
	bad, healthy := v.unavailableShards()
	if len(bad) == 0 {
		if len(healthy) > 0 {
			c.Against = append(c.Against, fmt.Sprintf("every shard keeps a replica that is up and writable (%d shards)", len(healthy)))
		}
		return c
	}
	for _, st := range bad {
		c.For = append(c.For, st.text(v))
	}
	c.Score = 0.7
	if len(healthy) == 0 {
		c.Score = 0.4
		c.Against = append(c.Against, "every shard is hit: look first for what they share (the coordination service, the network)")
	}
	return c
}

// shardFindings turns unavailable shards into findings (probe
// "cluster.shards"), one per shard.
func shardFindings(v view) []Finding {
	bad, _ := v.unavailableShards()
	var fs []Finding
	for _, st := range bad {
		fs = append(fs, Finding{Status: probe.Crit, Probe: "cluster.shards", Shard: st.shard,
			Summary: "shard unavailable: " + st.text(v)})
	}
	return fs
}
