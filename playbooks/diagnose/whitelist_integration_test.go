package diagnose_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/internal/testenv"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
	"github.com/chmedic/chmedic/playbooks/report"
)

// Issue 7, point 1, done when: a real ZooKeeper 3.8 with
// 4lw.commands.whitelist=srvr (ZooKeeper 3.5+'s default) gives a diagnosis
// whose top cause is not "down", with the mode and figures from srvr, and
// the report says which words were refused and how to allow them.
func TestRealZooKeeperWithDefaultWhitelist(t *testing.T) {
	zk := testenv.ZooKeeperFor(t, testenv.ZooKeeperOptions{Whitelist: "srvr"})
	c := &diagnose.Cluster{Name: "zk", KeeperKind: "zookeeper", KeeperCommands: keeper.DefaultSnapshotCommands(),
		Keeper: []diagnose.KeeperNode{{Name: "zk-1", Addr: zk.Addr}}}
	e := diagnose.New([]*diagnose.Cluster{c}, diagnose.Options{CacheTTL: -1, Keeper: &keeper.Client{Timeout: 2 * time.Second}})
	d := roundOf2(t, e, "zk")

	if top, ok := d.Top(); ok && top.Name == "keeper_down" {
		t.Errorf("top cause %q: %v", top.Title, top.For)
	}
	if d.Status != probe.OK || !strings.HasPrefix(d.Verdict, "Cluster healthy") {
		t.Errorf("status %s, verdict %q, findings %+v", d.Status, d.Verdict, d.Findings)
	}
	ruok := resultOf(t, d, "keeper.ruok", "zk-1")
	if ok, _ := ruok.Fact("ok"); ok != 1 {
		t.Errorf("ruok: %+v", ruok)
	}
	s := resultOf(t, d, "keeper.srvr", "zk-1")
	if s.Status != probe.OK || s.Attrs["mode"] != "standalone" {
		t.Errorf("srvr: %+v", s)
	}
	for _, f := range []string{"latency_avg_ms", "latency_max_ms", "connections", "node_count", "zxid_counter_share"} {
		if _, ok := s.Fact(f); !ok {
			t.Errorf("srvr lacks %s: %v", f, s.Facts)
		}
	}
	if n, _ := s.Fact("node_count"); n < 2 { // at least / and /zookeeper
		t.Errorf("node_count %v", n)
	}
	if s.Duration <= 0 {
		t.Errorf("srvr duration %s", s.Duration)
	}
	var b bytes.Buffer
	if err := report.WriteDiagnosis(&b, d); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"four-letter words ruok, mntr, isro, conf, wchs, dirs, cons refused by ZooKeeper's whitelist on zk-1",
		"4lw.commands.whitelist=ruok,srvr,mntr,isro,conf,wchs,dirs,cons",
		"standalone, version 3.8",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	t.Logf("\n%s", out)
}

func roundOf2(t *testing.T, e *diagnose.Engine, cluster string) *diagnose.Diagnosis {
	t.Helper()
	d, err := e.Diagnose(t.Context(), cluster)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
