package slack

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/playbooks/digest"
)

func p64(v int64) *int64        { return &v }
func pf(v float64) *float64     { return &v }
func pt(t time.Time) *time.Time { return &t }

// fixedDigest is a digest with every kind of content: an act cluster with
// offered actions, flagged growth, a node down, missing figures, hostile
// text from servers and alerts, and sources that are not available yet.
func fixedDigest() *digest.Digest {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	prev := now.Add(-24 * time.Hour)
	prod := &digest.Cluster{
		Name: "prod", Verdict: digest.Act, PreviousAt: pt(prev),
		Reasons: []digest.Reason{
			{Level: digest.Act, Text: "1 of 2 coordination nodes down or not serving (zk-2)", Advice: "Bring the coordination service back before anything else.", Playbook: "keeper-down"},
			{Level: digest.Watch, Text: "replicated tables grew by 60 since the previous digest (1200 → 1260; threshold +50 and +5%)", Advice: "Consolidate small tables.", Playbook: "keeper-metadata-growth"},
		},
		Diagnosis: digest.DiagnosisSummary{Verdict: "Coordination degraded: zk-2 <down> & unreachable", Status: "crit", Checks: 31},
		NodesUp:   1, NodesTotal: 2,
		ReadonlyReplicas: p64(0), MaxReplicationDelaySeconds: pf(12), MaxReplicationQueue: p64(3), StuckQueueEntries: p64(0),
		DDLQueue:         digest.DDLQueue{NotAvailable: "not available on ClickHouse 18.16.1: system.distributed_ddl_queue"},
		ReplicatedTables: p64(1260),
		DDL:              digest.DDLCount{Count: p64(42), Since: prev, Until: now, PerHour: pf(1.8)},
		Nodes: []digest.Node{
			{Name: "ch-1", Up: true, Version: "18.16.1", ReplicatedTables: p64(1260), DDLCount: p64(42)},
			{Name: "ch-2", Up: false, Note: "unreachable: dial tcp 10.0.0.2:9000: connect: connection refused <script>"},
		},
		Keeper: []digest.KeeperNode{
			{Name: "zk-1", Up: true, State: "leader", AvgLatencyMs: pf(1.5), MaxLatencyMs: pf(40), Outstanding: p64(0), Znodes: p64(250000),
				Watches: p64(12000), Ephemerals: p64(40), Connections: p64(12), OpenFDs: p64(120), MaxFDs: p64(4096), FDRatio: pf(120.0 / 4096)},
			{Name: "zk-2", State: "down", Note: "connection refused"},
		},
		Trends: []digest.Trend{
			{Name: "znodes", Title: "znodes", Value: pf(250000), Previous: pf(240000), Delta: pf(10000), DeltaPercent: pf(4.2), Threshold: "+10000 and +10%"},
			{Name: "replicated_tables", Title: "replicated tables", Value: pf(1260), Previous: pf(1200), Delta: pf(60), DeltaPercent: pf(5), Flagged: true, Threshold: "+50 and +5%"},
			{Name: "ddl", Title: "DDL statements per hour", Value: pf(1.8), Threshold: "+20 and +100%"},
		},
		Alerts:     digest.Alerts{Available: true, Since: prev, ByName: []digest.AlertCount{{Name: "ZooKeeperDown<&>", Firing: 2, Notifications: 5}}},
		Freezes:    digest.List{Note: "not available yet: this chmedic has no DDL freeze action", Items: []string{}},
		Approvals:  digest.List{Available: true, Items: []string{}},
		ActionsRun: digest.List{Available: true, Items: []string{"ddl_freeze by @alice <ok>"}},
		Actions: []digest.Action{
			{Kind: "ddl_freeze", Label: "Freeze DDL", Params: map[string]string{"duration": "30m"}, Playbook: "keeper-down", Reason: "zk-2 down", Confirm: "DDL will be refused.", RequestID: "req-1"},
			{Kind: "collect_logs", Label: "Collect logs", Params: map[string]string{"window": "10m"}, Playbook: "keeper-down", Reason: "zk-2 down", RequestID: "req-2"},
		},
		Notes: []string{"likely cause: the coordination service is down"},
	}
	staging := &digest.Cluster{
		Name: "staging", Verdict: digest.Healthy, NodesUp: 1, NodesTotal: 1,
		Diagnosis:  digest.DiagnosisSummary{Verdict: "No problem found", Status: "ok", Checks: 20},
		DDL:        digest.DDLCount{Since: now.Add(-24 * time.Hour), Until: now, Note: "could not be read on ch-s1"},
		DDLQueue:   digest.DDLQueue{Unfinished: p64(0), OldestSeconds: pf(0)},
		Alerts:     digest.Alerts{Note: "not available: no alert store given"},
		Freezes:    digest.List{Note: "not available yet", Items: []string{}},
		Approvals:  digest.List{Note: "not available yet", Items: []string{}},
		ActionsRun: digest.List{Note: "not available yet", Items: []string{}},
		Actions:    []digest.Action{{Kind: "collect_logs", Playbook: "generic", Params: map[string]string{"window": "10m"}}},
		Notes:      []string{"no previous digest of this cluster: trends start with the next one"},
	}
	started := now.Add(-72 * time.Hour)
	return &digest.Digest{
		Name: "morning", Source: digest.SourceScheduled, ScheduledAt: pt(now), GeneratedAt: now.Add(3 * time.Second),
		Verdict: digest.Act, Headline: "Act: prod needs action", Stored: true,
		Clusters: []*digest.Cluster{prod, staging},
		Notes:    []string{`the 2026-11-30 09:00 UTC run of digest "morning" was skipped: the previous run was still going`},
		Chmedic: digest.Health{Since: prev, OutboxBacklog: p64(0), GivenUp: p64(1), Verdict: digest.Watch,
			Rejections: map[string]float64{"unauthorized": 3, "queue_full": 1}, CountersStarted: &started,
			Approvals: digest.List{Note: "not available yet: this chmedic has no approval flow", Items: []string{}},
			Notes:     []string{"1 Slack messages were given up on"}},
	}
}

func TestRenderDigestGolden(t *testing.T) {
	msg := RenderDigest(fixedDigest())
	blocks := checkValid(t, msg)
	got, err := json.MarshalIndent(msg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", "digest.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/slack/ -run TestRenderDigest -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (rerun with -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
	all := string(got)
	for _, bad := range []string{"<script>", "<down>", "ZooKeeperDown<&>", "<ok>"} {
		if strings.Contains(all, bad) {
			t.Errorf("unescaped %q in the message", bad)
		}
	}
	var buttons int
	for _, b := range blocks {
		if b["type"] == "actions" {
			els, _ := b["elements"].([]any)
			buttons += len(els)
		}
	}
	if buttons != 2 {
		t.Errorf("%d buttons, want the 2 offered actions of prod", buttons)
	}
	if !strings.Contains(msg.Text, "[ACT]") {
		t.Errorf("fallback text %q", msg.Text)
	}
}

func TestRenderDigestManyClustersFits(t *testing.T) {
	d := fixedDigest()
	for i := 0; i < 40; i++ {
		c := *d.Clusters[0]
		d.Clusters = append(d.Clusters, &c)
	}
	checkValid(t, RenderDigest(d))
}
