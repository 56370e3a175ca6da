package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

// chdbDir holds the node script and its pinned chdb (scripts/chdb/install.sh).
var chdbDir = filepath.Join("..", "..", "scripts", "chdb")

type chdbResult struct {
	Probe    string `json:"probe"`
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
	Executed bool   `json:"executed"`
	Stubbed  []string
	Columns  []struct{ Name, Type string }
	Rows     []map[string]any `json:"rows"`
}

// runChdb sends queries to scripts/chdb/check.js, or skips (fails with
// CHMEDIC_REQUIRE_INTEGRATION=1) when node or the installed chdb is missing.
func runChdb(t *testing.T, check, parse []NamedQuery) (string, map[string]chdbResult) {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		msg := fmt.Sprintf("ClickHouse 26 check needs %s: run scripts/chdb/install.sh (node + npm, ~550 MB, ~10 s)", why)
		if os.Getenv(testenv.EnvRequire) == "1" {
			t.Fatalf("%s; %s=1 requires it", msg, testenv.EnvRequire)
		}
		t.Skipf("skipping: %s, or set %s=1 to fail instead", msg, testenv.EnvRequire)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node (Debian package nodejs)")
	}
	if _, err := os.Stat(filepath.Join(chdbDir, "node_modules", "chdb", "package.json")); err != nil {
		missing("the chdb package in scripts/chdb/node_modules")
	}
	type item struct {
		NamedQuery
		Mode string `json:"mode"`
	}
	var in struct {
		Queries []item `json:"queries"`
	}
	for _, q := range check {
		in.Queries = append(in.Queries, item{q, "check"})
	}
	for _, q := range parse {
		in.Queries = append(in.Queries, item{q, "parse"})
	}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.js")
	cmd.Dir = chdbDir
	cmd.Stdin = bytes.NewReader(body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node check.js: %v\n%s", err, stderr.String())
	}
	var res struct {
		Engine  string       `json:"engine"`
		Stubbed []string     `json:"stubbed"`
		Results []chdbResult `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("check.js output: %v\n%s", err, out)
	}
	t.Logf("engine ClickHouse %s (chdb); stand-ins for system.%s", res.Engine, strings.Join(res.Stubbed, ", system."))
	got := map[string]chdbResult{}
	for _, r := range res.Results {
		got[r.Probe+"/"+r.Name] = r
	}
	if len(got) != len(in.Queries) {
		t.Fatalf("%d results for %d queries", len(got), len(in.Queries))
	}
	return res.Engine, got
}

// TestModernQueriesOnClickHouse26 runs every statement the probes send to a
// current server through ClickHouse 26's parser and analyser (chdb), and runs
// it where no coordination service is needed; the variants for servers
// between 18.16 and 26 are parsed.
func TestModernQueriesOnClickHouse26(t *testing.T) {
	modern, older := ModernQueries(), IntermediateQueries()
	engine, got := runChdb(t, modern, older)
	if v := mustVersion(engine); !v.AtLeast(26, 1) {
		t.Errorf("chdb engine %s, want 26.x", engine)
	}
	for _, q := range append(modern, older...) {
		r := got[q.Probe+"/"+q.Name]
		if !r.OK {
			t.Errorf("%s/%s fails on ClickHouse %s: %s\n%s", q.Probe, q.Name, engine, r.Error, q.SQL)
			continue
		}
		how := "parsed"
		switch {
		case r.Executed:
			how = fmt.Sprintf("analysed and run (%d rows)", len(r.Rows))
		case len(r.Columns) > 0:
			how = "analysed (needs a coordination service to run)"
		}
		if len(r.Stubbed) > 0 {
			how += " against the documented schema of " + strings.Join(r.Stubbed, ", ")
		}
		t.Logf("%s/%s: %s", q.Probe, q.Name, how)
		if !q.Keeper && len(r.Columns) > 0 && !r.Executed {
			t.Errorf("%s/%s was not run", q.Probe, q.Name)
		}
	}

	// The filters mean what the probes think on the real engine: the
	// stand-in query_log holds one DDL start in the window, its finish, a
	// SELECT and a two-day-old DROP.
	storm := got["clickhouse.ddl_storm/query_kind"]
	if len(storm.Rows) != 1 || fmt.Sprint(storm.Rows[0]["kind"]) != "Create" || fmt.Sprint(storm.Rows[0]["user"]) != "etl" ||
		fmt.Sprint(storm.Rows[0]["n"]) != "1" {
		t.Errorf("ddl_storm on the stand-in query_log: %v, want one Create by etl", storm.Rows)
	}
	children := got["clickhouse.metadata/children"]
	found := false
	for _, row := range children.Rows {
		if row["name"] == "tables" && fmt.Sprint(row["numChildren"]) == "3" {
			found = true
		}
	}
	if !found {
		t.Errorf("metadata children of /clickhouse: %v, want tables with 3", children.Rows)
	}
	if rows := got["clickhouse.keeper_sessions/zookeeper_connection"].Rows; len(rows) != 1 || fmt.Sprint(rows[0]["session_timeout_ms"]) != "30000" {
		t.Errorf("zookeeper_connection rows: %v", rows)
	}
	// On an idle engine nothing is read-only or queued.
	if rows := got["clickhouse.replicas/summary"].Rows; len(rows) != 1 || fmt.Sprint(rows[0]["replicated_tables"]) != "0" {
		t.Errorf("replicas summary on chdb: %v", rows)
	}
}

// The check itself catches what it is for: each bad query fails for its
// own reason (not merely "not ok": a check.js that failed everything, or
// answered nothing useful, must not pass), and a good control query
// passes, so the check can say yes as well as no.
func TestChdbCheckCatchesBadQueries(t *testing.T) {
	bad := []NamedQuery{
		{Probe: "bad", Name: "column", SQL: "SELECT no_such_column FROM system.replicas"},
		{Probe: "bad", Name: "result", SQL: "SELECT count() AS n FROM system.replicas", Columns: []string{"replicated_tables"}},
		{Probe: "bad", Name: "stub_column", SQL: "SELECT session_uptime FROM system.zookeeper_connection", Keeper: true},
		{Probe: "bad", Name: "enum", SQL: "SELECT count() FROM system.query_log WHERE type = 'QueryBegin'"},
		{Probe: "bad", Name: "table", SQL: "SELECT 1 FROM system.no_such_table"},
	}
	good := NamedQuery{Probe: "good", Name: "control", SQL: "SELECT count() AS replicated_tables FROM system.replicas", Columns: []string{"replicated_tables"}}
	parseBad := NamedQuery{Probe: "bad", Name: "syntax", SQL: "SELEC 1"}
	parseGood := NamedQuery{Probe: "good", Name: "parse", SQL: "SELECT name FROM system.no_such_table_in_this_engine"}
	_, got := runChdb(t, append(bad, good), []NamedQuery{parseBad, parseGood})
	why := map[string]string{
		"bad/column":      "no_such_column",
		"bad/result":      "replicated_tables",
		"bad/stub_column": "session_uptime",
		"bad/enum":        "QueryBegin",
		"bad/table":       "no_such_table",
		"bad/syntax":      "Syntax error",
	}
	for k, want := range why {
		r, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: no result from the check", k)
		case r.OK:
			t.Errorf("%s passed the check", k)
		case !strings.Contains(r.Error, want):
			t.Errorf("%s failed for another reason than %q: %q", k, want, r.Error)
		default:
			t.Logf("%s: %s", k, r.Error)
		}
	}
	for _, k := range []string{"good/control", "good/parse"} {
		if r, ok := got[k]; !ok || !r.OK {
			t.Errorf("%s: the check rejects a good query: %+v", k, r)
		}
	}
	if r := got["good/control"]; !r.Executed || len(r.Columns) != 1 || r.Columns[0].Name != "replicated_tables" {
		t.Errorf("good/control was not analysed and run: %+v", r)
	}
}
