package diagnose

import (
	"strings"
	"testing"

	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// Shard and replica (clusters[].clickhouse.nodes[].shard, .replica) have an
// effect: findings carry them, causes name them, and a shard whose every
// replica is down or read-only is a finding and a cause.
func TestShardAndReplicaInTheDiagnosis(t *testing.T) {
	layout := map[string]place{
		"ch-1": {Shard: 1, Replica: "r1"}, "ch-2": {Shard: 1, Replica: "r2"},
		"ch-3": {Shard: 2, Replica: "r1"}, "ch-4": {Shard: 2, Replica: "r2"},
	}
	up := func(node string) probe.Result { return res("clickhouse.ping", node, probe.OK, "up", "up", 1) }
	down := func(node string) probe.Result {
		return res("clickhouse.ping", node, probe.Crit, "connection refused", "up", 0)
	}
	ro := func(node string) probe.Result {
		return res("clickhouse.replicas", node, probe.Crit, "1 replica read-only", "readonly_replicas", 1, "replicated_tables", 1)
	}
	rw := func(node string) probe.Result {
		return res("clickhouse.replicas", node, probe.OK, "writable", "readonly_replicas", 0, "replicated_tables", 1)
	}

	t.Run("one shard lost", func(t *testing.T) {
		fs, cs, _, worst := analyzeRound(input{th: probe.DefaultThresholds(), now: analyzeNow, layout: layout, results: []probe.Result{
			down("ch-1"), up("ch-2"), ro("ch-2"), up("ch-3"), rw("ch-3"), up("ch-4"), rw("ch-4"),
		}})
		if worst != probe.Crit || len(fs) == 0 || fs[0].Probe != "cluster.shards" || fs[0].Shard != 1 {
			t.Fatalf("findings %+v", fs)
		}
		if s := fs[0].Summary; !strings.Contains(s, "every replica of shard 1 is down or read-only (down: replica r1 on ch-1; read-only: replica r2 on ch-2)") {
			t.Errorf("shard finding %q", s)
		}
		for _, f := range fs[1:] {
			if f.Probe == "clickhouse.ping" && (f.Node != "ch-1" || f.Shard != 1 || f.Replica != "r1") {
				t.Errorf("finding without its place: %+v", f)
			}
		}
		c, _ := causeNamed(cs, "shard_unavailable")
		if c.Likelihood != Likely {
			t.Errorf("shard_unavailable %+v", c)
		}
		n, _ := causeNamed(cs, "node_down")
		if len(n.For) == 0 || n.For[0] != "ch-1 (shard 1, replica r1) unreachable (1 of 4 nodes)" {
			t.Errorf("node_down for %q", n.For)
		}
	})
	t.Run("every shard keeps a writable replica", func(t *testing.T) {
		fs, cs, _, _ := analyzeRound(input{th: probe.DefaultThresholds(), now: analyzeNow, layout: layout, results: []probe.Result{
			down("ch-1"), up("ch-2"), rw("ch-2"), down("ch-3"), up("ch-4"), rw("ch-4"),
		}})
		for _, f := range fs {
			if f.Probe == "cluster.shards" {
				t.Errorf("shard finding %+v", f)
			}
		}
		if c, _ := causeNamed(cs, "shard_unavailable"); c.Likelihood != Unlikely || len(c.Against) == 0 {
			t.Errorf("shard_unavailable %+v", c)
		}
	})
	t.Run("every shard read-only: a consequence more than a cause", func(t *testing.T) {
		_, cs, _, _ := analyzeRound(input{th: probe.DefaultThresholds(), now: analyzeNow, layout: layout, results: []probe.Result{
			up("ch-1"), ro("ch-1"), up("ch-2"), ro("ch-2"), up("ch-3"), ro("ch-3"), up("ch-4"), ro("ch-4"),
		}})
		if c, _ := causeNamed(cs, "shard_unavailable"); c.Likelihood == Likely {
			t.Errorf("shard_unavailable %+v", c)
		}
	})
	t.Run("nodes of unknown shard are left out", func(t *testing.T) {
		fs, _, _, _ := analyzeRound(input{th: probe.DefaultThresholds(), now: analyzeNow,
			layout: map[string]place{"ch-1": {Shard: 0, Replica: "ch-1"}}, results: []probe.Result{down("ch-1")}})
		for _, f := range fs {
			if f.Probe == "cluster.shards" || f.Shard != 0 {
				t.Errorf("finding %+v", f)
			}
		}
	})
}

// The zxid overflow is ranked with the sessions expiring together; on
// ClickHouse Keeper it does not apply, and neither do JVM pauses.
func TestZxidOverflowCause(t *testing.T) {
	srvr := func(epoch, share, prevEpoch, prevShare float64) probe.Result {
		return res("keeper.srvr", "zk-1", probe.OK, "leader", "zxid_epoch", epoch, "zxid_counter_share", share,
			factPrevEpoch, prevEpoch, factPrevShare, prevShare, factPrevAge, 15.0, "mode", "leader")
	}
	expired := func(node string) probe.Result {
		return res("clickhouse.replicas", node, probe.Crit, "session expired", "session_expired_replicas", 1, "readonly_replicas", 0)
	}
	ping := func(node string) probe.Result { return res("clickhouse.ping", node, probe.OK, "up", "up", 1) }
	th := probe.DefaultThresholds()

	_, cs, _, _ := analyzeRound(input{th: th, now: analyzeNow, results: []probe.Result{
		srvr(6, 0.00001, 5, 0.9999), expired("ch-1"), expired("ch-2"), ping("ch-1"), ping("ch-2")}})
	c, _ := causeNamed(cs, "zxid_overflow")
	if c.Likelihood != Likely || cs[0].Name != "zxid_overflow" {
		t.Fatalf("wrapped with mass expiry: %+v (top %s)", c, cs[0].Name)
	}
	for _, want := range []string{"went from 5 to 6", "when the counter stood at 100.0% of 2^32", "restarted near zero (0.001% of 2^32)", "expired or were renewed together on ch-1, ch-2"} {
		if !strings.Contains(strings.Join(c.For, "|"), want) {
			t.Errorf("for %q lacks %q", c.For, want)
		}
	}

	// An ordinary leader election: the epoch changed but the counter was low.
	_, cs, _, _ = analyzeRound(input{th: th, now: analyzeNow, results: []probe.Result{
		srvr(6, 0.00001, 5, 0.12), expired("ch-1"), expired("ch-2"), ping("ch-1"), ping("ch-2")}})
	if c, _ := causeNamed(cs, "zxid_overflow"); c.Likelihood == Likely || !strings.Contains(strings.Join(c.Against, "|"), "ordinary leader election") {
		t.Errorf("ordinary election: %+v", c)
	}

	// No change since the previous round.
	_, cs, _, _ = analyzeRound(input{th: th, now: analyzeNow, results: []probe.Result{srvr(5, 0.5, 5, 0.49)}})
	if c, _ := causeNamed(cs, "zxid_overflow"); c.Likelihood != Unlikely {
		t.Errorf("no change: %+v", c)
	}

	// ClickHouse Keeper: neither the overflow nor JVM pauses.
	_, cs, _, _ = analyzeRound(input{th: th, now: analyzeNow, kind: keeper.FlavorClickHouseKeeper, results: []probe.Result{
		srvr(6, 0.00001, 5, 0.9999), expired("ch-1"), expired("ch-2"),
		res("keeper.mntr", "zk-1", probe.Warn, "spikes", "max_latency_ms", 500, "avg_latency_ms", 1, "flavor", "zookeeper")}})
	if c, _ := causeNamed(cs, "zxid_overflow"); c.Likelihood != Unlikely {
		t.Errorf("zxid_overflow on ClickHouse Keeper: %+v", c)
	}
	if c, _ := causeNamed(cs, "jvm_gc"); c.Likelihood != Unlikely {
		t.Errorf("jvm_gc with kind clickhouse-keeper: %+v", c)
	}
}

// The engine keeps one zxid mark per node and hands the previous one to
// the next round.
func TestMarkZxidsIsBoundedPerNode(t *testing.T) {
	e := New(nil, Options{})
	for round := range 5 {
		rs := []probe.Result{
			res("keeper.srvr", "zk-1", probe.OK, "", "zxid_epoch", float64(round), "zxid_counter_share", 0.5),
			res("keeper.srvr", "zk-2", probe.OK, "", "zxid_epoch", 1.0, "zxid_counter_share", 0.1),
			{Probe: "keeper.srvr", Node: "zk-3", Status: probe.Crit, Summary: "unreachable"},
		}
		e.markZxids("c", rs)
		if prev, ok := rs[0].Fact(factPrevEpoch); round > 0 && (!ok || prev != float64(round-1)) {
			t.Errorf("round %d: prev epoch %v %v", round, prev, ok)
		}
	}
	if n := len(e.zxids["c"]); n != 2 {
		t.Errorf("%d marks, want 2 (one per node that answered)", n)
	}
}
