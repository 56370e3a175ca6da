package actions

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/chmedic/chmedic/internal/testenv"
)

// crashingCommands stands for a chmedic killed just before its restart
// command runs: it ends the runner's context and returns without running
// anything.
type crashingCommands struct{ cancel context.CancelFunc }

func (c crashingCommands) Run(ctx context.Context, cmd Command) (CommandResult, error) {
	c.cancel()
	<-ctx.Done()
	return CommandResult{Argv: cmd.Argv}, ctx.Err()
}

// mergesStopped tells whether SYSTEM STOP MERGES is in effect on c: an
// OPTIMIZE FINAL of a table with two parts is refused while it is. The
// table must exist before the STOP MERGES (18.16 stops the merges of the
// tables that exist then).
func mergesStopped(t *testing.T, ctx context.Context, c *testenv.ClickHouse) bool {
	t.Helper()
	for _, q := range []string{
		"INSERT INTO default.chmedic_merge_probe VALUES (1)",
		"INSERT INTO default.chmedic_merge_probe VALUES (2)",
	} {
		if _, err := c.Query(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Query(ctx, "OPTIMIZE TABLE default.chmedic_merge_probe FINAL")
	t.Logf("OPTIMIZE on %s: %v", c.Name, err)
	return err != nil
}

// A chmedic crash after the restart step created its silence and stopped
// the node's merges, before the restart was issued; the roll is then
// aborted, not resumed: the abort expires the silence on the real
// Alertmanager and starts the merges again on the real server (it did not
// restart), and records it on the step. Before the fix the abort did
// nothing: the silence stayed active and merges stopped.
func TestRollingRestartAbortAfterCrashCleansUp(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, `        stop_merges: true
        silence: {matchers: ['instance="{{.Name}}"']}
`)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg, err := NewRegistry(r.cfg, Deps{DataDir: t.TempDir(), Diagnose: testEngine(t, env, r.cfg).Diagnose, Commands: crashingCommands{cancel}})
	if err != nil {
		t.Fatal(err)
	}
	plan := r.mustPlan(t, nil)
	first := plan.Steps[1].Node
	var node *testenv.ClickHouse
	for _, c := range env.ClickHouse {
		if c.Name == first {
			node = c
		}
	}
	t.Cleanup(func() {
		node.Query(context.Background(), "SYSTEM START MERGES")
		node.Query(context.Background(), "DROP TABLE IF EXISTS default.chmedic_merge_probe")
	})
	if _, err := node.Query(ctx, "CREATE TABLE IF NOT EXISTS default.chmedic_merge_probe (x UInt8) ENGINE = MergeTree ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	if mergesStopped(t, ctx, node) {
		t.Fatal("merges are stopped before the roll")
	}
	exec := newExecution(t, r.st, plan, "")
	out, err := NewRunner(r.st, reg, RunnerOptions{}).Run(rctx, exec, nil)
	if err == nil || out.State != ExecInterrupted {
		t.Fatalf("first run: %s %v", out.State, err)
	}
	var cp restartData
	recs, _ := r.st.Steps(ctx, exec.ID)
	for _, rec := range recs {
		if rec.StepID == first+"/restart" {
			var res StepResult
			json.Unmarshal(rec.Result, &res)
			json.Unmarshal(res.Data, &cp)
		}
	}
	if cp.SilenceID == "" || !cp.MergesStopped {
		t.Fatalf("the crash did not land after the silence and STOP MERGES: %+v", cp)
	}
	sc := &SilenceClient{URL: env.Alertmanager.URL}
	if st, err := sc.State(ctx, cp.SilenceID); err != nil || st != "active" {
		t.Fatalf("silence before the abort: %s %v", st, err)
	}
	if !mergesStopped(t, ctx, node) {
		t.Fatal("merges are not stopped after the crash: the test cannot tell a cleanup")
	}

	if err := NewRunner(r.st, reg, RunnerOptions{}).Abort(ctx, exec.ID, "aborted by test"); err != nil {
		t.Fatal(err)
	}
	if st, err := sc.State(ctx, cp.SilenceID); err != nil || st != "expired" {
		t.Errorf("silence after the abort: %s %v, want expired", st, err)
	}
	if mergesStopped(t, ctx, node) {
		t.Error("merges are still stopped after the abort")
	}
	recs, _ = r.st.Steps(ctx, exec.ID)
	var got string
	for _, rec := range recs {
		if rec.StepID == first+"/restart" {
			got = rec.State + ": " + rec.Error
		}
	}
	for _, w := range []string{StepCleanedUp, "silence " + cp.SilenceID + " expired", "merges started again on " + first} {
		if !strings.Contains(got, w) {
			t.Errorf("the step's record %q lacks %q", got, w)
		}
	}
	if n := r.rs.Restarts(first); n != 0 {
		t.Errorf("%s restarted %d times", first, n)
	}
	// A second cleanup finds nothing left to do.
	rep, err := NewRunner(r.st, reg, RunnerOptions{}).CleanUp(ctx, exec.ID)
	if err != nil || len(rep.Lines) != 0 {
		t.Errorf("second cleanup: %v %v", rep, err)
	}
}
