package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
)

// grantsNode is a recording fake of a ClickHouse 23.8 node with SQL access
// control: SHOW GRANTS FOR app answers the current lines; a statement that
// the test maps to new lines changes them (as the server would), any other
// statement is recorded and changes nothing.
type grantsNode struct {
	name    string
	storage string
	mu      sync.Mutex
	lines   []string
	after   map[string][]string
	log     []string
	down    bool
	// running answers system.processes; queued distributed_ddl_queue.
	running, queued []string
	// execErr, if set, fails the statements it returns an error for.
	execErr func(stmt string) error
}

func (g *grantsNode) Name() string { return g.name }
func (g *grantsNode) Close() error { return nil }

func (g *grantsNode) Exec(_ context.Context, stmt string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.log = append(g.log, stmt)
	if g.execErr != nil {
		if err := g.execErr(stmt); err != nil {
			return err
		}
	}
	if l, ok := g.after[stmt]; ok {
		g.lines = l
	}
	return nil
}

func (g *grantsNode) QueryStrings(_ context.Context, q string) ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case q == "SELECT version()":
		return []string{"23.8.2.7"}, nil
	case q == "SHOW GRANTS":
		return []string{"GRANT ALL ON *.* TO chmedic_actions WITH GRANT OPTION"}, nil
	case strings.HasPrefix(q, "SELECT concat(name, '\\t', storage) FROM system.users"):
		return []string{"app\t" + g.storage}, nil
	case q == "SHOW GRANTS FOR `app`":
		return append([]string(nil), g.lines...), nil
	case strings.Contains(q, "system.processes"):
		return append([]string(nil), g.running...), nil
	case strings.Contains(q, "system.distributed_ddl_queue"):
		return append([]string(nil), g.queued...), nil
	}
	return nil, &proto.Exception{Code: 62, Message: "fake: unexpected query " + q}
}

func (g *grantsNode) sent() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.log...)
}

func grantsConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := parseConfig(t, `
clusters:
  - name: test
    clickhouse:
      nodes: [{name: ch-1, address: 'ch-1:9000'}, {name: ch-2, address: 'ch-2:9000'}]
    keeper: {nodes: [{name: zk-1, address: 'zk:2181'}]}
    actions:
      clickhouse: {user: chmedic_actions}
      ddl_freeze:
        method: grants
        targets: [{user: app}]
        verify_timeout: 2s
`, nil)
	cfg.Store.Path = filepath.Join(t.TempDir(), "s.db")
	return cfg
}

const (
	grantsBefore1 = "GRANT SELECT, INSERT ON shop.* TO app"
	grantsBefore2 = "GRANT CREATE TABLE, DROP TABLE ON shop.* TO app WITH GRANT OPTION"
	grantsBefore3 = "REVOKE DROP TABLE ON shop.orders FROM app"
	grantsBefore4 = "GRANT ALTER UPDATE(status) ON shop.orders TO app"
	grantsRole    = "GRANT reader TO app"
	revokeApp     = "REVOKE CREATE, ALTER, DROP ON *.* FROM `app`"
)

func grantsRig(t *testing.T, nodes map[string]*grantsNode) (*freezeRig, Registry) {
	t.Helper()
	cfg := grantsConfig(t)
	st := openStore(t, cfg.Store.Path)
	reg, err := NewRegistry(cfg, Deps{DataDir: t.TempDir(), Freezes: st, FreezeConns: func(cl *config.Cluster, n config.ClickHouseNode, _ time.Duration) (FreezeConn, error) {
		g := nodes[n.Name]
		if g.down {
			return nil, fmt.Errorf("clickhouse node %q: dial tcp: connection refused", n.Name)
		}
		return g, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	reg[DDLFreezeKind].(*DDLFreeze).Poll = 10 * time.Millisecond
	return &freezeRig{cfg: cfg, st: st, reg: reg, runner: NewRunner(st, reg, RunnerOptions{})}, reg
}

// The grants method through the action: the snapshot is stored before the
// REVOKE, one REVOKE per node (never ON CLUSTER), and the unfreeze
// re-grants exactly what was taken, keeping (and reporting) a grant added
// during the freeze.
func TestDDLFreezeGrantsSnapshotRevokeRestore(t *testing.T) {
	before := []string{grantsBefore1, grantsBefore2, grantsBefore3, grantsBefore4, grantsRole}
	frozen := []string{grantsBefore1, grantsRole}
	nodes := map[string]*grantsNode{}
	for _, n := range []string{"ch-1", "ch-2"} {
		nodes[n] = &grantsNode{name: n, storage: "local_directory", lines: before, after: map[string][]string{revokeApp: frozen}}
	}
	rig, _ := grantsRig(t, nodes)
	plan, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "20m"}})
	if out.State != ExecSucceeded {
		t.Fatalf("freeze %s %s %v", out.State, out.Error, states(out))
	}
	if !strings.HasPrefix(plan.Method, "grants (configured)") {
		t.Errorf("method %q", plan.Method)
	}
	for _, s := range plan.Steps {
		if s.ID == "ch-1/freeze" && !reflect.DeepEqual(s.SQL, []string{revokeApp}) {
			t.Errorf("planned SQL %q", s.SQL)
		}
	}
	f, ok, _ := rig.st.OpenFreeze(t.Context(), "test")
	if !ok || f.State != store.FreezeActive {
		t.Fatalf("record %+v", f)
	}
	var snaps map[string]struct{ Lines []string }
	json.Unmarshal(f.Node("ch-2").Snapshot, &snaps)
	if !reflect.DeepEqual(snaps["app"].Lines, before) {
		t.Errorf("stored snapshot %v", snaps)
	}
	for name, g := range nodes {
		if got := g.sent(); !reflect.DeepEqual(got, []string{revokeApp}) {
			t.Errorf("%s: sent %q", name, got)
		}
	}

	// During the freeze someone grants CREATE TABLE on scratch.* on ch-1.
	added := "GRANT CREATE TABLE ON scratch.* TO app"
	nodes["ch-1"].lines = []string{grantsBefore1, added, grantsRole}
	restore := []string{
		"GRANT CREATE TABLE, DROP TABLE ON `shop`.* TO `app` WITH GRANT OPTION",
		"REVOKE DROP TABLE ON `shop`.`orders` FROM `app`",
		"GRANT ALTER UPDATE(`status`) ON `shop`.`orders` TO `app`",
	}
	nodes["ch-1"].after[restore[2]] = []string{grantsBefore1, grantsBefore2, grantsBefore3, grantsBefore4, added, grantsRole}
	nodes["ch-2"].after[restore[2]] = before
	_, out = rig.run(t, DDLUnfreezeKind, Request{Cluster: "test"})
	if out.State != ExecSucceeded {
		t.Fatalf("unfreeze %s %s %v", out.State, out.Error, states(out))
	}
	for name, g := range nodes {
		if got := g.sent()[1:]; !reflect.DeepEqual(got, restore) {
			t.Errorf("%s: restore sent\n got  %q\n want %q", name, got, restore)
		}
		for _, s := range g.sent() {
			if strings.Contains(s, "ON CLUSTER") {
				t.Errorf("ON CLUSTER sent: %s", s)
			}
		}
	}
	var ch1 string
	for _, s := range out.Steps {
		if s.Step.ID == "ch-1/unfreeze" {
			ch1 = s.Result.Output
		}
	}
	if !strings.Contains(ch1, "kept grants added during the freeze: user app: CREATE TABLE ON `scratch`.*") {
		t.Errorf("ch-1 output %q", ch1)
	}
	f, _ = rig.st.Freeze(t.Context(), f.ID)
	if f.State != store.FreezeLifted {
		t.Errorf("state %s", f.State)
	}
}

// A target with ALL or access management is refused at plan time.
func TestDDLFreezeGrantsRefusesAccessManagement(t *testing.T) {
	for _, line := range []string{"GRANT ALL ON *.* TO app", "GRANT CREATE USER ON *.* TO app"} {
		nodes := map[string]*grantsNode{}
		for _, n := range []string{"ch-1", "ch-2"} {
			nodes[n] = &grantsNode{name: n, storage: "local_directory", lines: []string{line}}
		}
		_, reg := grantsRig(t, nodes)
		_, err := reg[DDLFreezeKind].Plan(t.Context(), Request{Cluster: "test", Params: map[string]string{"duration": "10m"}})
		if !IsRefusal(err) || !strings.Contains(err.Error(), "cannot be a DDL freeze target") {
			t.Errorf("%s: %v", line, err)
		}
	}
}

// Replicated access storage: the REVOKE is sent once (first node) and
// verified on the others.
func TestDDLFreezeGrantsReplicatedAppliedOnce(t *testing.T) {
	before := []string{grantsBefore1, grantsBefore2}
	frozen := []string{grantsBefore1}
	n1 := &grantsNode{name: "ch-1", storage: "replicated", lines: before, after: map[string][]string{}}
	n2 := &grantsNode{name: "ch-2", storage: "replicated", lines: before}
	// Replication: the change made on ch-1 shows on ch-2.
	rev := "REVOKE CREATE, DROP ON *.* FROM `app`"
	n1.after[rev] = frozen
	rig, _ := grantsRig(t, map[string]*grantsNode{"ch-1": n1, "ch-2": n2})
	go func() {
		for range 200 {
			if len(n1.sent()) > 0 {
				n2.mu.Lock()
				n2.lines = frozen
				n2.mu.Unlock()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	plan, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "10m"}})
	if out.State != ExecSucceeded {
		t.Fatalf("freeze %s %s %v", out.State, out.Error, states(out))
	}
	if !strings.Contains(strings.Join(plan.Notes, "\n"), "replicated access storage") {
		t.Errorf("notes %q", plan.Notes)
	}
	if got := n2.sent(); len(got) != 0 {
		t.Errorf("ch-2 was sent %q", got)
	}
	if got := n1.sent(); !reflect.DeepEqual(got, []string{rev}) {
		t.Errorf("ch-1 was sent %q", got)
	}
}

// One node down: the other is frozen and the freeze is partial; a second
// ddl_freeze retries the node and extends the timer.
func TestDDLFreezePartialThenRetry(t *testing.T) {
	before := []string{grantsBefore1, grantsBefore2}
	rev := "REVOKE CREATE, DROP ON *.* FROM `app`"
	nodes := map[string]*grantsNode{
		"ch-1": {name: "ch-1", storage: "local_directory", lines: before, after: map[string][]string{rev: {grantsBefore1}}},
		"ch-2": {name: "ch-2", storage: "local_directory", lines: before, after: map[string][]string{rev: {grantsBefore1}}, down: true},
	}
	rig, _ := grantsRig(t, nodes)
	plan, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "10m"}})
	if out.State != ExecPartial || !strings.Contains(out.Error, "ch-2 failed") {
		t.Fatalf("freeze %s %q", out.State, out.Error)
	}
	for _, s := range plan.Steps {
		if s.ID == "ch-2/freeze" && !strings.Contains(s.Title, "did not answer at plan time") {
			t.Errorf("ch-2's step: %q", s.Title)
		}
	}
	f, _, _ := rig.st.OpenFreeze(t.Context(), "test")
	if f.State != store.FreezePartial || f.Node("ch-1").State != NodeFrozen || f.Node("ch-2").State != NodeFailed || len(f.Node("ch-2").Snapshot) != 0 {
		t.Fatalf("record %+v", f)
	}
	nodes["ch-2"].down = false
	plan, out = rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "30m"}})
	if out.State != ExecSucceeded || !strings.Contains(plan.Summary, "Extend") || !strings.Contains(plan.Summary, "freeze again on ch-2") {
		t.Fatalf("retry %s %s %q", out.State, out.Error, plan.Summary)
	}
	for _, s := range plan.Steps {
		if s.ID == "ch-2/freeze" && !strings.Contains(s.Title, "computed from the node's SHOW GRANTS when it runs") {
			t.Errorf("ch-2's retry step: %q", s.Title)
		}
	}
	g, _ := rig.st.Freeze(t.Context(), f.ID)
	if g.State != store.FreezeActive || len(g.Extensions) != 1 || g.ExpiresAt.Sub(f.ExpiresAt) < 19*time.Minute {
		t.Errorf("after retry %+v", g)
	}
	if got := nodes["ch-1"].sent(); len(got) != 1 {
		t.Errorf("ch-1 frozen again: %q", got)
	}
}

// What the freeze will not stop is shown, observed at plan time, outside
// the hash: DDL finishing between the approval and the run is no reason
// to refuse the approved plan.
func TestDDLFreezeObservedDDLIsNotHashed(t *testing.T) {
	before := []string{grantsBefore1, grantsBefore2}
	n1 := &grantsNode{name: "ch-1", storage: "local_directory", lines: before,
		running: []string{"etl q-17 (340s): ALTER TABLE shop.orders ADD COLUMN x UInt8"},
		queued:  []string{"query-0000000042 Active: CREATE TABLE shop.t ON CLUSTER c (x UInt8) ENGINE = Memory"}}
	n2 := &grantsNode{name: "ch-2", storage: "local_directory", lines: before}
	_, reg := grantsRig(t, map[string]*grantsNode{"ch-1": n1, "ch-2": n2})
	req := Request{Cluster: "test", Params: map[string]string{"duration": "10m"}}
	p1, err := reg[DDLFreezeKind].Plan(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	obs := strings.Join(p1.Observed, "\n")
	for _, w := range []string{"ch-1: DDL running (not stopped by the freeze): etl q-17", "ch-1: distributed DDL queued (not stopped by the freeze): query-0000000042", "ch-2: no DDL running", "ch-2: no unfinished distributed DDL"} {
		if !strings.Contains(obs, w) {
			t.Errorf("observed lacks %q:\n%s", w, obs)
		}
	}
	n1.mu.Lock()
	n1.running, n1.queued = nil, nil
	n1.mu.Unlock()
	p2, _ := reg[DDLFreezeKind].Plan(t.Context(), req)
	if p1.Hash() != p2.Hash() || strings.Join(p2.Observed, "\n") == obs {
		t.Errorf("hashes %s %s, observed %q", p1.Hash(), p2.Hash(), p2.Observed)
	}
	// The grants themselves are part of the hash.
	n2.mu.Lock()
	n2.lines = []string{grantsBefore1}
	n2.mu.Unlock()
	if p3, _ := reg[DDLFreezeKind].Plan(t.Context(), req); p3.Hash() == p1.Hash() {
		t.Error("a change of grants did not change the hash")
	}
}
