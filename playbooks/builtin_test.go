package playbooks

import (
	"bytes"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// wantBuiltins are the playbooks chmedic must ship.
var wantBuiltins = []string{
	"distributed-ddl-stuck",
	"generic",
	"interserver-connections",
	"keeper-connections",
	"keeper-down",
	"keeper-exceptions",
	"keeper-latency-high",
	"keeper-metadata-growth",
	"keeper-outstanding-requests",
	"keeper-readonly-replicas",
	"keeper-session-expired",
}

func TestBuiltinsLoadAndValidate(t *testing.T) {
	s := mustBuiltins(t)
	var names []string
	for _, p := range s.All() {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, wantBuiltins) {
		t.Fatalf("built-ins = %v, want %v", names, wantBuiltins)
	}
	for _, p := range s.All() {
		t.Run(p.Name, func(t *testing.T) {
			if want := "builtin/" + p.Name + ".yaml"; p.Source != want {
				t.Errorf("Source = %q, want %q (file named after the playbook)", p.Source, want)
			}
			if !p.Builtin() {
				t.Error("Builtin() = false")
			}
			if p.Title == "" {
				t.Error("no title")
			}
			for name, text := range map[string]string{
				"meaning": p.Sections.Meaning, "impact": p.Sections.Impact,
				"diagnosis": p.Sections.Diagnosis, "mitigation": p.Sections.Mitigation,
			} {
				if strings.TrimSpace(text) == "" {
					t.Errorf("section %s is empty", name)
				}
				if len([]rune(text)) > MaxSectionLen {
					t.Errorf("section %s is %d characters", name, len([]rune(text)))
				}
			}
			if p.Name == GenericName {
				if len(p.Match) != 0 {
					t.Errorf("generic has %d matcher sets, want none", len(p.Match))
				}
			} else if len(p.Match) == 0 {
				t.Error("no matchers")
			}
			if len(p.MatchText) != len(p.Match) {
				t.Errorf("MatchText has %d entries for %d matcher sets", len(p.MatchText), len(p.Match))
			}
			if len(p.Probes) == 0 {
				t.Error("no probes")
			}
			for _, pr := range p.Probes {
				if !slices.Contains(knownProbes, pr) {
					t.Errorf("unknown probe %q", pr)
				}
			}
			kinds := map[string]ActionRef{}
			for _, a := range p.Actions {
				if err := validateAction(a.Kind, a.Params); err != nil {
					t.Errorf("action %s: %v", a.Kind, err)
				}
				if a.Label == "" || len([]rune(a.Label)) > MaxLabelLen {
					t.Errorf("action %s: label %q", a.Kind, a.Label)
				}
				kinds[a.Kind] = a
			}
			if _, ok := kinds["collect_logs"]; !ok {
				t.Error("no collect_logs action")
			}
			if rr, ok := kinds["rolling_restart"]; ok {
				if p.Name != "keeper-readonly-replicas" && p.Name != "keeper-session-expired" {
					t.Error("rolling_restart offered where stuck sessions on a healthy Keeper do not justify it")
				}
				if rr.Params["require_keeper_healthy"] != "true" {
					t.Errorf("rolling_restart must require a healthy Keeper, params %v", rr.Params)
				}
			}
		})
	}
}

// TestBuiltinText checks that the runbook text carries the facts an
// engineer needs at 3 a.m.: thresholds, the order of operations, the
// recovery caution.
func TestBuiltinText(t *testing.T) {
	s := mustBuiltins(t)
	tests := []struct {
		playbook, section string
		want              []string
	}{
		{"keeper-latency-high", "meaning", []string{"10 ms", "10–100 ms", "100 ms"}},
		{"keeper-latency-high", "mitigation", []string{"Stop DDL first", "Do not restart ClickHouse", "dedicated SSD/NVMe", "GC", "ClickHouse Keeper has no JVM"}},
		{"keeper-readonly-replicas", "impact", []string{"more than 5 minutes", "SELECTs", "/ping"}},
		{"keeper-readonly-replicas", "diagnosis", []string{"system.replicas", "system.zookeeper_connection", "mntr", "ruok", "system.distributed_ddl_queue", "10 ms", "100 ms"}},
		{"keeper-readonly-replicas", "mitigation", []string{"stop all DDL first", "Do not restart ClickHouse", "rolling restart", "under 10 ms"}},
		{"keeper-session-expired", "mitigation", []string{"Do not restart ClickHouse into a struggling Keeper", "latency under 10 ms", "one node at a time"}},
		{"keeper-session-expired", "diagnosis", []string{"system.zookeeper_connection", "jute.maxbuffer", "GC"}},
		{"keeper-outstanding-requests", "diagnosis", []string{"zk_outstanding_requests", "cons", "system.replication_queue"}},
		{"distributed-ddl-stuck", "meaning", []string{"5 minutes", "/clickhouse/task_queue/ddl"}},
		{"distributed-ddl-stuck", "diagnosis", []string{"system.distributed_ddl_queue", "5 minutes", "mntr"}},
		{"keeper-exceptions", "diagnosis", []string{"ZooKeeperHardwareExceptions", "ZooKeeperUserExceptions", "system.events"}},
		{"keeper-connections", "meaning", []string{"maxClientCnxns"}},
		{"keeper-connections", "mitigation", []string{"Leak", "maxClientCnxns", "10 minutes before to 10 minutes after"}},
		{"keeper-connections", "diagnosis", []string{"cons", "zk_num_alive_connections"}},
		{"keeper-down", "mitigation", []string{"Do not restart ClickHouse", "rcvr", "--force-recovery", "back up", "log_storage_path", "snapshot_storage_path", "one at a time", "follower", "cannot come back", "Last resort"}},
		{"keeper-down", "diagnosis", []string{"ruok", "imok", "mntr", "zk_server_state", "isro"}},
		{"interserver-connections", "diagnosis", []string{"system.clusters", "system.replication_queue", "9009"}},
		{"keeper-metadata-growth", "diagnosis", []string{"zk_znode_count", "wchs", "system.replicas"}},
		{"generic", "meaning", []string{"no runbook", "cluster health"}},
		{"generic", "diagnosis", []string{"system.zookeeper_connection", "10 ms", "100 ms", "5 minutes"}},
		{"generic", "mitigation", []string{"stop DDL first", "don't restart ClickHouse"}},
	}
	for _, tt := range tests {
		p, ok := s.Get(tt.playbook)
		if !ok {
			t.Errorf("no playbook %s", tt.playbook)
			continue
		}
		text := map[string]string{
			"meaning": p.Sections.Meaning, "impact": p.Sections.Impact,
			"diagnosis": p.Sections.Diagnosis, "mitigation": p.Sections.Mitigation,
		}[tt.section]
		for _, w := range tt.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s %s does not mention %q", tt.playbook, tt.section, w)
			}
		}
	}
}

// TestBuiltinCommentsNameRuleSets checks that every public alert name a
// built-in matches is listed in the file's comments, on a line that names
// the rule set it comes from.
func TestBuiltinCommentsNameRuleSets(t *testing.T) {
	for _, tt := range publicAlertNames {
		data, err := fs.ReadFile(builtinFS, "builtin/"+tt.want+".yaml")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, line := range strings.Split(string(data), "\n") {
			text, ok := strings.CutPrefix(line, "#")
			if !ok {
				continue
			}
			text = strings.TrimSpace(text)
			if strings.HasPrefix(text, tt.alert+" ") || strings.HasPrefix(text, `"`+tt.alert+`"`) {
				found = true
				if !strings.Contains(text, tt.ruleSet) {
					t.Errorf("%s.yaml: the comment line for %q does not name %q: %s", tt.want, tt.alert, tt.ruleSet, text)
				}
			}
		}
		if !found {
			t.Errorf("%s.yaml: no comment line lists %q", tt.want, tt.alert)
		}
	}
}

func TestDescribeListsEveryPlaybook(t *testing.T) {
	s, err := LoadFS(siteFS(), "site", testValidator())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	s.Describe(&b)
	out := b.String()
	header := strings.SplitN(out, "\n", 2)[0]
	for _, col := range []string{"NAME", "PRIORITY", "PROBES", "ACTIONS", "SOURCE", "MATCHES"} {
		if !strings.Contains(header, col) {
			t.Errorf("header %q lacks %s", header, col)
		}
	}
	for _, p := range s.All() {
		for _, want := range []string{p.Name, p.Source} {
			if !strings.Contains(out, want) {
				t.Errorf("Describe output lacks %q", want)
			}
		}
		for _, m := range p.MatchText {
			if !strings.Contains(out, m) {
				t.Errorf("Describe output lacks matcher %q of %s", m, p.Name)
			}
		}
		for _, pr := range p.Probes {
			if !strings.Contains(out, pr) {
				t.Errorf("Describe output lacks probe %q of %s", pr, p.Name)
			}
		}
	}
	for _, want := range []string{"site/keeper-down.yaml", "site/site-disk-full.yml", "fallback", "ddl_freeze duration=30m"} {
		if !strings.Contains(out, want) {
			t.Errorf("Describe output lacks %q", want)
		}
	}
	for i, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("line %d has trailing blanks: %q", i+1, line)
		}
	}
}
