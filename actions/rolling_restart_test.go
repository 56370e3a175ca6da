package actions

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

func res(p, node string, facts map[string]float64, attrs map[string]string) probe.Result {
	return probe.Result{Probe: p, Node: node, Facts: facts, Attrs: attrs}
}

func healthyKeeper() []probe.Result {
	return []probe.Result{
		res("keeper.ruok", "zk-1", map[string]float64{"ok": 1}, nil),
		res("keeper.ruok", "zk-2", map[string]float64{"ok": 1}, nil),
		res("keeper.ruok", "zk-3", map[string]float64{"ok": 1}, nil),
		res("keeper.mntr", "zk-1", map[string]float64{"avg_latency_ms": 1}, map[string]string{"server_state": "leader"}),
		res("clickhouse.keeper_latency", "ch-1", map[string]float64{"latency_ms": 3}, nil),
	}
}

// The runbook's refusals, with their figures, from a diagnosis.
func TestKeeperVerdict(t *testing.T) {
	herd := diagnose.Cause{Name: "reconnection_herd", Score: 0.7, For: []string{"sessions of ch-1, ch-2 all began within 1 s of each other, 120 s ago"}}
	cases := []struct {
		name    string
		results []probe.Result
		causes  []diagnose.Cause
		want    []string // in the reasons; none: no refusal
	}{
		{"healthy", healthyKeeper(), nil, nil},
		{"latency above the stress threshold", append(healthyKeeper(), res("clickhouse.keeper_latency", "ch-2", map[string]float64{"latency_ms": 250}, nil)), nil,
			[]string{"coordination latency is 250.0 ms on ch-2 (read of / through ClickHouse), above the stress threshold 10ms"}},
		{"keeper average above it", append(healthyKeeper(), res("keeper.mntr", "zk-2", map[string]float64{"avg_latency_ms": 40}, map[string]string{"server_state": "follower"})), nil,
			[]string{"40.0 ms on zk-2 (keeper.mntr average)"}},
		{"no quorum", []probe.Result{
			res("keeper.ruok", "zk-1", map[string]float64{"ok": 1}, nil),
			res("keeper.ruok", "zk-2", map[string]float64{"ok": 0}, nil),
			res("keeper.ruok", "zk-3", map[string]float64{"ok": 0}, nil),
			res("clickhouse.keeper_latency", "ch-1", map[string]float64{"latency_ms": 3}, nil),
		}, nil, []string{"no quorum: 1 of 3 coordination nodes answer, none reports itself leader or standalone"}},
		{"a herd 2 minutes ago", append(healthyKeeper(), res("clickhouse.keeper_sessions", "ch-1", map[string]float64{"session_uptime_seconds": 120}, nil)),
			[]diagnose.Cause{herd}, []string{"a reconnection herd within herd_window 10m0s: sessions of ch-1, ch-2 all began within 1 s"}},
		{"a herd older than the window", append(healthyKeeper(), res("clickhouse.keeper_sessions", "ch-1", map[string]float64{"session_uptime_seconds": 700}, nil)),
			[]diagnose.Cause{herd}, nil},
		{"a weak herd signal", healthyKeeper(), []diagnose.Cause{{Name: "reconnection_herd", Score: 0.3}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, why := KeeperVerdict(&diagnose.Diagnosis{Results: c.results, Causes: c.causes}, 10*time.Millisecond, 10*time.Minute)
			if len(c.want) == 0 {
				if len(why) > 0 {
					t.Fatalf("refused: %v", why)
				}
				return
			}
			all := strings.Join(why, "; ")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("reasons %q lack %q", all, w)
				}
			}
		})
	}
}

func TestOrderNodes(t *testing.T) {
	nodes := []RestartNode{{Name: "a1", Shard: 1}, {Name: "b1", Shard: 2}, {Name: "a2", Shard: 1}, {Name: "b2", Shard: 2}}
	all := map[string]bool{"a1": true, "a2": true, "b1": true, "b2": true}
	names := func(ns []RestartNode) string {
		var s []string
		for _, n := range ns {
			s = append(s, n.Name)
		}
		return strings.Join(s, " ")
	}
	cases := []struct {
		name    string
		healthy map[string]bool
		alert   string
		order   string
		want    string
	}{
		{"shard by shard", all, "", config.RestartOrderAlertLast, "a1 a2 b1 b2"},
		{"alert last", all, "a1", config.RestartOrderAlertLast, "a2 b1 b2 a1"},
		{"alert first", all, "b2", config.RestartOrderAlertFirst, "b2 a1 a2 b1"},
		{"unhealthy replica first in its shard", map[string]bool{"a1": true, "a2": false, "b1": true, "b2": true}, "", config.RestartOrderAlertLast, "a2 a1 b1 b2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := names(orderNodes(nodes, c.healthy, c.alert, c.order)); got != c.want {
				t.Errorf("order %q, want %q", got, c.want)
			}
		})
	}
}

func TestRollingRestartParams(t *testing.T) {
	for _, c := range []struct {
		params map[string]string
		want   string
	}{
		{map[string]string{"max_unavailable": "2"}, "want an integer in [1, 1]"},
		{map[string]string{"wait_healthy": "2h"}, "out of range"},
		{map[string]string{"bogus": "1"}, `unknown parameter "bogus"`},
	} {
		_, err := DecodeRollingRestartParams(c.params)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.params, err, c.want)
		}
	}
	p, err := DecodeRollingRestartParams(map[string]string{"wait_healthy": "30s", "require_keeper_healthy": "false", "alert_node": "ch-2"})
	if err != nil || p.WaitHealthy != 30*time.Second || p.RequireKeeper || p.AlertNode != "ch-2" {
		t.Errorf("%+v %v", p, err)
	}
}

func TestRestarted(t *testing.T) {
	rec := time.Date(2026, 12, 1, 8, 0, 10, 0, time.UTC)
	rd := restartData{StartBefore: rec.Unix() - 100, RecordedAt: rec}
	for _, c := range []struct {
		name string
		st   nodeState
		want bool
	}{
		{"same process, same second", nodeState{start: rd.StartBefore, uptime: 105, readAt: rec.Add(5 * time.Second)}, false},
		{"same process, rounding", nodeState{start: rd.StartBefore + 1, uptime: 104, readAt: rec.Add(5 * time.Second)}, false},
		{"new process", nodeState{start: rec.Unix() + 3, uptime: 2, readAt: rec.Add(5 * time.Second)}, true},
		{"down", nodeState{err: errTest, readAt: rec.Add(5 * time.Second)}, false},
	} {
		if got := restarted(c.st, rd); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// A process that had just started when it was recorded, restarted
	// fast: its start time moved by one second only, its uptime (1 s)
	// is shorter than the 3.2 s since the record.
	young := restartData{StartBefore: rec.Unix(), RecordedAt: rec}
	for _, c := range []struct {
		name string
		st   nodeState
		want bool
	}{
		{"restarted fast", nodeState{start: rec.Unix() + 1, uptime: 1, readAt: rec.Add(3200 * time.Millisecond)}, true},
		{"the same process", nodeState{start: rec.Unix(), uptime: 3, readAt: rec.Add(3200 * time.Millisecond)}, false},
	} {
		if got := restarted(c.st, young); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

var errTest = errors.New("connection refused")
