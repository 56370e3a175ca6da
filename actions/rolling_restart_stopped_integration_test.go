package actions

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/chmedic/chmedic/internal/testenv"
)

// Abort of a roll stopped at a failed restart: the roll ends there, what
// the stopped step recorded is taken back (its silence, which the stop
// already expired, is checked; merges were started again at the stop), the
// cleanup says the next node was not touched, and neither node restarted.
// Before, a roll stopped at a gate ended failed/partial and could not be
// aborted ("only an interrupted or pending execution can be aborted").
func TestRollingRestartAbortStopped(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, `        stop_merges: true
        silence: {matchers: ['instance="{{.Name}}"']}
`)
	r.cfg.Clusters[0].Actions.RollingRestart.Command = []string{"sh", "-c", "echo unit failed >&2; exit 3"}
	plan := r.mustPlan(t, nil)
	first, next := plan.Steps[1].Node, plan.Steps[4].Node
	before := startTimes(ctx, env)
	exec := newExecution(t, r.st, plan, "")
	runner := NewRunner(r.st, r.reg, RunnerOptions{})
	out, err := runner.Run(ctx, exec, nil)
	if err != nil || out.State != ExecStopped {
		t.Fatalf("run: %s %v: %s", out.State, err, out.Error)
	}
	var cp restartData
	recs, _ := r.st.Steps(ctx, exec.ID)
	for _, rec := range recs {
		if rec.StepID == first+"/restart" {
			var res StepResult
			if err := jsonUnmarshal(rec.Result, &res); err == nil {
				jsonUnmarshal(res.Data, &cp)
			}
		}
	}
	if cp.SilenceID == "" || !cp.NotRestarted {
		t.Fatalf("the stopped restart step recorded %+v", cp)
	}
	// Nothing waits for the decision: the silence ended at the stop.
	if st, err := (&SilenceClient{URL: env.Alertmanager.URL}).State(ctx, cp.SilenceID); err != nil || st != "expired" {
		t.Errorf("silence of the stopped node while it waits: %s %v, want expired", st, err)
	}

	rep, err := runner.AbortAndCleanUp(ctx, exec.ID, "aborted by U1")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(rep.Lines, "\n")
	t.Logf("cleanup: %s", text)
	for _, w := range []string{first + "/restart: aborted; cleaned up", "silence " + cp.SilenceID + " had already ended", "the roll ends at " + first + ": " + next + " not touched"} {
		if !strings.Contains(text, w) {
			t.Errorf("cleanup %q lacks %q", text, w)
		}
	}
	if rep.Failed {
		t.Error("cleanup failed")
	}
	recs, _ = r.st.Steps(ctx, exec.ID)
	for _, rec := range recs {
		if rec.StepID == first+"/restart" && rec.State != StepCleanedUp {
			t.Errorf("stopped step recorded %s after the abort", rec.State)
		}
	}
	if rec, _ := r.st.Execution(ctx, exec.ID); rec.State != ExecAborted {
		t.Errorf("execution %s", rec.State)
	}
	if _, err := runner.Run(ctx, exec, nil); !errors.Is(err, ErrNotRunnable) {
		t.Errorf("run after the abort: %v", err)
	}
	now := startTimes(ctx, env)
	for _, c := range env.ClickHouse {
		if now[c.Name] >= before[c.Name]+2 || r.rs.Restarts(c.Name) != 0 {
			t.Errorf("%s was restarted: %d → %d", c.Name, before[c.Name], now[c.Name])
		}
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
