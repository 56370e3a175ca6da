package report

import (
	"bytes"
	"testing"

	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// Findings name the shard and replica of their node, and the refused
// four-letter words are listed with the way to allow them.
func TestWriteDiagnosisNamesShardReplicaAndRefusals(t *testing.T) {
	d := &diagnose.Diagnosis{Cluster: "c", Status: probe.Crit, Verdict: "Shard 1 is unavailable.",
		Findings: []diagnose.Finding{
			{Status: probe.Crit, Probe: "cluster.shards", Shard: 1, Summary: "shard unavailable: every replica of shard 1 is down or read-only"},
			{Status: probe.Crit, Probe: "clickhouse.ping", Node: "ch-2", Shard: 1, Replica: "r2", Summary: "connection refused"},
			{Status: probe.Warn, Probe: "keeper.srvr", Node: "zk-1", Summary: "zxid counter at 93.8% of 2^32"},
		},
		NotAvailable: []string{"four-letter words ruok, mntr refused by ZooKeeper's whitelist on zk-1: allow them in zoo.cfg: 4lw.commands.whitelist=ruok,srvr,mntr"},
	}
	var b bytes.Buffer
	if err := WriteDiagnosis(&b, d); err != nil {
		t.Fatal(err)
	}
	inOrder(t, b.String(),
		"CRIT shard 1 cluster.shards: shard unavailable",
		"CRIT ch-2 (shard 1, replica r2) clickhouse.ping: connection refused",
		"WARN zk-1 keeper.srvr: zxid counter",
		"Not available on this server version or setup:\n  - four-letter words ruok, mntr refused by ZooKeeper's whitelist on zk-1: allow them in zoo.cfg: 4lw.commands.whitelist=ruok,srvr,mntr\n")
}
