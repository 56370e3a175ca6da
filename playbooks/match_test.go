package playbooks

import (
	"testing"
	"testing/fstest"
)

const (
	altinityCH     = "Altinity/clickhouse-operator deploy/prometheus/prometheus-alert-rules-clickhouse.yaml"
	altinityZK     = "Altinity/clickhouse-operator deploy/prometheus/prometheus-alert-rules-zookeeper.yaml"
	altinityKeeper = "Altinity/clickhouse-operator deploy/prometheus/prometheus-alert-rules-chkeeper.yaml"
	awesomeCH      = "samber/awesome-prometheus-alerts (ClickHouse, embedded exporter)"
	awesomeZK      = "samber/awesome-prometheus-alerts (ZooKeeper, dabealu/zookeeper-exporter)"
	grafanaMixin   = "grafana/jsonnet-libs clickhouse-mixin"
	zkGuide        = "Apache ZooKeeper Monitor Guide example rules"
)

// publicAlertNames is every alert name from a public rule set that a
// built-in playbook matches, with the playbook it must select and the rule
// set it comes from (also checked against the YAML comments).
var publicAlertNames = []struct{ alert, want, ruleSet string }{
	// seed 000: interserver connections
	{"ClickhouseInterserverConnectionIssues", "interserver-connections", awesomeCH},
	{"ClickHouseDistributedConnectionExceptions", "interserver-connections", altinityCH},
	{"ClickHouseReplicatedPartFailedFetches", "interserver-connections", altinityCH},
	{"ClickHouseDistributedSyncInsertionTimeoutExceeded", "interserver-connections", altinityCH},

	// seeds 001 and 003: the saturation family
	{"ClickHouseReadonlyReplica", "keeper-readonly-replicas", altinityCH},
	{"ClickHouseReplicasInReadOnly", "keeper-readonly-replicas", grafanaMixin},
	{"ClickhouseReplicasInReadOnly", "keeper-readonly-replicas", grafanaMixin},
	{"ClickhouseZookeeperConnectionIssues", "keeper-session-expired", awesomeCH},
	{"ClickHouseZooKeeperSession", "keeper-session-expired", altinityCH},
	{"ClickHouseZookeeperSessions", "keeper-session-expired", grafanaMixin},
	{"ClickhouseZookeeperSessions", "keeper-session-expired", grafanaMixin},
	{"ZookeeperLargeRequestsRejected", "keeper-session-expired", altinityZK},
	{"ZookeeperHighLatency", "keeper-latency-high", altinityZK},
	{"ZookeeperHighFsyncTime", "keeper-latency-high", altinityZK},
	{"ClickHouseKeeperHighLatency", "keeper-latency-high", altinityKeeper},
	{"avg latency is too high", "keeper-latency-high", zkGuide},
	{"fsync time is too long", "keeper-latency-high", zkGuide},
	{"take snapshot time is too long", "keeper-latency-high", zkGuide},
	{"ZookeeperOutstandingRequests", "keeper-outstanding-requests", altinityZK},
	{"ZookeeperThrottleRequests", "keeper-outstanding-requests", altinityZK},
	{"ZookeeperStaleRequestsDropped", "keeper-outstanding-requests", altinityZK},
	{"ClickHouseKeeperOutstandingRequests", "keeper-outstanding-requests", altinityKeeper},
	{"ClickHouseZooKeeperHardwareExceptions", "keeper-exceptions", altinityCH},
	{"ZookeeperHighEphemeralNodes", "keeper-metadata-growth", altinityZK},
	{"ClickHouseKeeperHighEphemeralNodes", "keeper-metadata-growth", altinityKeeper},
	{"create too many znodes", "keeper-metadata-growth", zkGuide},
	{"set too many watch", "keeper-metadata-growth", zkGuide},
	{"znode total occupied memory is too big", "keeper-metadata-growth", zkGuide},

	// seed 002: client connections
	{"create too many connections", "keeper-connections", zkGuide},
	{"open too many files", "keeper-connections", zkGuide},
	{"ZookeeperConnectionRejected", "keeper-connections", altinityZK},
	{"ZookeeperHighFileDescriptors", "keeper-connections", altinityZK},
	{"ClickHouseKeeperHighFileDescriptors", "keeper-connections", altinityKeeper},

	// seed 004: down / quorum
	{"ClickHouseKeeperDown", "keeper-down", altinityKeeper},
	{"ZookeeperDown", "keeper-down", altinityZK},
	{"ZookeeperUnrecoverableErrors", "keeper-down", altinityZK},
	{"ZookeeperNotOk", "keeper-down", awesomeZK},
	{"ZookeeperMissingLeader", "keeper-down", awesomeZK},
	{"ZookeeperTooManyLeaders", "keeper-down", awesomeZK},
	{"ZooKeeper server is down", "keeper-down", zkGuide},
	{"a leader election happens", "keeper-down", zkGuide},
}

func TestMatchPublicAlertNames(t *testing.T) {
	s := mustBuiltins(t)
	for _, tt := range publicAlertNames {
		t.Run(tt.alert, func(t *testing.T) {
			// Alerts come with more labels than the name; they must not matter.
			lset := map[string]string{"alertname": tt.alert, "severity": "critical", "instance": "ch-1:9363"}
			pb, matched := s.Match(lset)
			if !matched || pb.Name != tt.want {
				t.Fatalf("Match(%q) = %s, %v; want %s, true", tt.alert, pb.Name, matched, tt.want)
			}
		})
	}
}

func TestMatchFamiliesAndFallback(t *testing.T) {
	s := mustBuiltins(t)
	tests := []struct {
		name    string
		lset    map[string]string
		want    string
		matched bool
	}{
		// Family patterns for site-specific rule names.
		{"ddl queue rule", map[string]string{"alertname": "ClickHouseDistributedDDLQueueStuck"}, "distributed-ddl-stuck", true},
		{"ddl queue snake case", map[string]string{"alertname": "clickhouse_ddl_queue_unfinished"}, "distributed-ddl-stuck", true},
		{"user exceptions rule", map[string]string{"alertname": "ClickHouseZooKeeperUserExceptionsHigh"}, "keeper-exceptions", true},
		{"hardware exceptions snake case", map[string]string{"alertname": "clickhouse_zookeeper_hardware_exceptions"}, "keeper-exceptions", true},

		// Unknown alerts fall back to generic, unmatched.
		{"unknown ClickHouse alert", map[string]string{"alertname": "ClickHouseDiskUsage"}, GenericName, false},
		{"unrelated alert", map[string]string{"alertname": "MiddlewareDown"}, GenericName, false},
		{"no alertname", map[string]string{"severity": "critical"}, GenericName, false},
		{"empty labels", map[string]string{}, GenericName, false},
		{"nil labels", nil, GenericName, false},
		// Equality is exact, as in Alertmanager.
		{"case differs", map[string]string{"alertname": "zookeeperdown"}, GenericName, false},
		{"prefix only", map[string]string{"alertname": "ZookeeperDownXYZ"}, GenericName, false},
		{"name in another label", map[string]string{"alertname": "Other", "rule": "ZookeeperDown"}, GenericName, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pb, matched := s.Match(tt.lset)
			if pb == nil {
				t.Fatal("Match returned nil playbook")
			}
			if pb.Name != tt.want || matched != tt.matched {
				t.Fatalf("Match(%v) = %s, %v; want %s, %v", tt.lset, pb.Name, matched, tt.want, tt.matched)
			}
		})
	}
}

// tieFS holds playbooks that compete for the same alerts.
func tieFS() fstest.MapFS {
	pb := func(name string, priority int, match ...string) *fstest.MapFile {
		y := "name: " + name + "\ntitle: " + name + "\n"
		if priority != 0 {
			y += "priority: " + itoa(priority) + "\n"
		}
		y += "match:\n"
		for _, m := range match {
			y += "  - '" + m + "'\n"
		}
		y += "sections: {meaning: m, impact: i, diagnosis: d, mitigation: x}\n"
		return &fstest.MapFile{Data: []byte(y)}
	}
	return fstest.MapFS{
		// priority: same alert, different priorities
		"d/prio-low.yaml":  pb("prio-low", 1, `{alertname="Tie1"}`),
		"d/prio-high.yaml": pb("prio-high", 5, `{alertname="Tie1"}`),
		// specificity: same priority, more matchers in the matching set wins
		"d/spec-one.yaml": pb("spec-one", 3, `{alertname="Tie2"}`),
		"d/spec-two.yaml": pb("spec-two", 3, `{alertname="Tie2", severity="critical"}`),
		// the largest matching set counts, not the largest set
		"d/spec-mixed.yaml": pb("spec-mixed", 3, `{alertname="Tie3", a="1", b="2", c="3"}`, `{alertname="Tie3"}`),
		"d/spec-pair.yaml":  pb("spec-pair", 3, `{alertname="Tie3", severity="critical"}`),
		// full tie: the first name wins
		"d/tie-b.yaml": pb("tie-b", 2, `{alertname="Tie4"}`),
		"d/tie-a.yaml": pb("tie-a", 2, `{alertname="Tie4"}`),
		// a site playbook outranking a built-in for a public alert name
		"d/site-zk.yaml": pb("site-zk", 500, `{alertname="ZookeeperDown", env="prod"}`),
		// negative and regex matchers
		"d/neg.yaml": pb("neg", 1, `{alertname=~"Neg.*", team!="dba"}`),
	}
}

func itoa(i int) string {
	if i < 0 {
		return "-" + itoa(-i)
	}
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + itoa(i%10)
}

func TestMatchTieBreaking(t *testing.T) {
	s, err := LoadFS(tieFS(), "d", testValidator())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		lset map[string]string
		want string
	}{
		{"higher priority wins", map[string]string{"alertname": "Tie1"}, "prio-high"},
		{"more matchers win at equal priority", map[string]string{"alertname": "Tie2", "severity": "critical"}, "spec-two"},
		{"only the matching set counts", map[string]string{"alertname": "Tie2", "severity": "warning"}, "spec-one"},
		{"largest matching set, not largest set", map[string]string{"alertname": "Tie3", "severity": "critical"}, "spec-pair"},
		{"largest set when it matches", map[string]string{"alertname": "Tie3", "severity": "critical", "a": "1", "b": "2", "c": "3"}, "spec-mixed"},
		{"name breaks a full tie", map[string]string{"alertname": "Tie4"}, "tie-a"},
		{"site playbook outranks built-in", map[string]string{"alertname": "ZookeeperDown", "env": "prod"}, "site-zk"},
		{"built-in still matches elsewhere", map[string]string{"alertname": "ZookeeperDown", "env": "dev"}, "keeper-down"},
		{"negative matcher on missing label", map[string]string{"alertname": "NegX"}, "neg"},
		{"negative matcher excludes", map[string]string{"alertname": "NegX", "team": "dba"}, GenericName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pb, matched := s.Match(tt.lset)
			if pb.Name != tt.want || matched != (tt.want != GenericName) {
				t.Fatalf("Match(%v) = %s, %v; want %s", tt.lset, pb.Name, matched, tt.want)
			}
		})
	}
}

func TestMatchGroup(t *testing.T) {
	s, err := LoadFS(tieFS(), "d", testValidator())
	if err != nil {
		t.Fatal(err)
	}
	alert := func(name string, kv ...string) map[string]string {
		m := map[string]string{"alertname": name, "cluster": "prod"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name    string
		common  map[string]string
		alerts  []map[string]string
		want    string
		matched bool
	}{
		{
			name:    "grouped by alertname: common labels decide",
			common:  map[string]string{"alertname": "ClickHouseReadonlyReplica", "cluster": "prod"},
			alerts:  []map[string]string{alert("ClickHouseReadonlyReplica", "instance", "a"), alert("ClickHouseReadonlyReplica", "instance", "b")},
			want:    "keeper-readonly-replicas",
			matched: true,
		},
		{
			name:    "grouped by cluster: the cause outranks the symptom",
			common:  map[string]string{"cluster": "prod"},
			alerts:  []map[string]string{alert("ClickHouseReadonlyReplica"), alert("ClickHouseKeeperDown"), alert("ZookeeperHighLatency")},
			want:    "keeper-down",
			matched: true,
		},
		{
			name:    "latency outranks read-only",
			common:  map[string]string{"cluster": "prod"},
			alerts:  []map[string]string{alert("ClickHouseReadonlyReplica"), alert("ClickHouseKeeperHighLatency")},
			want:    "keeper-latency-high",
			matched: true,
		},
		{
			name:    "an alert's labels beat a weaker common match",
			common:  map[string]string{"alertname": "Tie1"},
			alerts:  []map[string]string{alert("Tie1"), alert("ClickHouseKeeperDown")},
			want:    "keeper-down",
			matched: true,
		},
		{
			name:    "common match kept when alerts add nothing better",
			common:  map[string]string{"alertname": "Tie2", "severity": "critical"},
			alerts:  []map[string]string{alert("Tie2", "severity", "critical"), alert("Unknown")},
			want:    "spec-two",
			matched: true,
		},
		{
			name:    "one known alert among unknown ones",
			common:  map[string]string{"cluster": "prod"},
			alerts:  []map[string]string{alert("DiskFull"), alert("ClickhouseInterserverConnectionIssues"), alert("HighCPU")},
			want:    "interserver-connections",
			matched: true,
		},
		{
			name:   "nothing matches",
			common: map[string]string{"cluster": "prod"},
			alerts: []map[string]string{alert("DiskFull"), alert("HighCPU")},
			want:   GenericName,
		},
		{
			name: "empty group",
			want: GenericName,
		},
		{
			name:    "nil common labels",
			alerts:  []map[string]string{nil, alert("ZookeeperDown")},
			want:    "keeper-down",
			matched: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pb, matched := s.MatchGroup(tt.common, tt.alerts)
			if pb == nil || pb.Name != tt.want || matched != tt.matched {
				t.Fatalf("MatchGroup = %v, %v; want %s, %v", pb, matched, tt.want, tt.matched)
			}
		})
	}
}

func TestGetAndAll(t *testing.T) {
	s := mustBuiltins(t)
	all := s.All()
	for i := 1; i < len(all); i++ {
		if all[i-1].Name >= all[i].Name {
			t.Fatalf("All not sorted by name: %s before %s", all[i-1].Name, all[i].Name)
		}
	}
	all[0] = nil // the caller's copy
	if s.All()[0] == nil {
		t.Fatal("All returned the internal slice")
	}
	for _, name := range wantBuiltins {
		if p, ok := s.Get(name); !ok || p.Name != name {
			t.Errorf("Get(%q) = %v, %v", name, p, ok)
		}
	}
	if _, ok := s.Get("nope"); ok {
		t.Error(`Get("nope") found something`)
	}
	if g := s.Generic(); g == nil || g.Name != GenericName {
		t.Errorf("Generic() = %v", g)
	}
}
