package actions

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stoppableFake is a fakeAction that declares itself resumable after a
// failure: its failed steps stop the run; ResumeCheck refuses while
// refuse is set; Cleanup records what it was given.
type stoppableFake struct {
	*fakeAction
	refuse   string
	checked  []string
	cleaned  []string
	cleanCP  []string
	undoable bool
}

func (f *stoppableFake) StopsAt(_ Plan, step Step) bool { return step.ID != "a" }

func (f *stoppableFake) ResumeCheck(_ context.Context, _ Plan, step Step, cp json.RawMessage, prior map[string]StepResult) error {
	f.checked = append(f.checked, step.ID+":"+string(cp)+":"+strings.Join(sortedKeys(prior), ","))
	if f.refuse != "" {
		return &Refusal{Reason: f.refuse}
	}
	return nil
}

func (f *stoppableFake) Cleanup(_ context.Context, _ Plan, step Step, cp json.RawMessage, _ map[string]StepResult) (string, error) {
	f.cleaned = append(f.cleaned, step.ID)
	f.cleanCP = append(f.cleanCP, string(cp))
	return "took back " + step.ID, nil
}

func (f *stoppableFake) Undo(context.Context, Plan, Step, StepResult) error {
	f.undone = append(f.undone, "undo")
	return nil
}

func sortedKeys(m map[string]StepResult) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

// A failed step of an action that declares StopResumer stops the run
// (state stopped, no undo in reverse, the later steps not run); a resume
// is re-checked by the action first, and a refusal leaves it stopped with
// nothing run; the stopped state survives a new Runner on the same store,
// and the resume continues from the stopped step. Before: the run ended
// failed/partial with its undo run, and Run of it returned the recorded
// outcome without running anything (terminal).
func TestRunnerStopsAndResumesAStoppableAction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st := openStore(t, path)
	f := &stoppableFake{fakeAction: &fakeAction{failAt: "b"}}
	reg := Registry{"fake": f}
	exec := newExecution(t, st, fakePlan("a", "b", "c"), "")
	out, err := NewRunner(st, reg, RunnerOptions{}).Run(t.Context(), exec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != ExecStopped || !slices.Equal(states(out), []string{"a:done", "b:failed", "c:not_run"}) {
		t.Fatalf("outcome %s %v", out.State, states(out))
	}
	if len(f.undone) != 0 {
		t.Errorf("a stopped run was undone: %v", f.undone)
	}
	if !strings.Contains(out.Error, "stopped at step b: boom at b") {
		t.Errorf("error %q", out.Error)
	}
	if Terminal(ExecStopped) {
		t.Error("stopped is terminal")
	}
	rec, _ := st.Execution(t.Context(), exec.ID)
	if rec.State != ExecStopped {
		t.Fatalf("stored state %s", rec.State)
	}

	// Resume refused: nothing runs, still stopped, the refusal recorded.
	f.refuse = "the other replica is down: 0 of 1 healthy"
	f.executed = nil
	out, err = NewRunner(st, reg, RunnerOptions{}).Run(t.Context(), exec, nil)
	if !IsResumeRefused(err) || !IsRefusal(err) || out.State != ExecStopped {
		t.Fatalf("refused resume: %s %v", out.State, err)
	}
	if len(f.executed) != 0 {
		t.Errorf("a refused resume ran %v", f.executed)
	}
	if want := []string{`b:{"n":0}:a`}; len(f.checked) != 1 || !strings.HasPrefix(f.checked[0], "b:") || !strings.HasSuffix(f.checked[0], ":a") {
		t.Errorf("ResumeCheck got %v, want the stopped step b with a's result (%v)", f.checked, want)
	}
	rec, _ = st.Execution(t.Context(), exec.ID)
	if rec.State != ExecStopped || !strings.Contains(rec.Error, "0 of 1 healthy") {
		t.Errorf("after a refused resume: %s %q", rec.State, rec.Error)
	}

	// chmedic restarts: a new store handle and runner; the resume goes on
	// from b, a is not run again.
	st.Close()
	st2 := openStore(t, path)
	f.refuse, f.failAt, f.executed = "", "", nil
	out, err = NewRunner(st2, reg, RunnerOptions{}).Run(t.Context(), exec, nil)
	if err != nil || out.State != ExecSucceeded {
		t.Fatalf("resume: %s %v", out.State, err)
	}
	if !slices.Equal(f.executed, []string{"b", "c"}) || !slices.Equal(states(out), []string{"a:skipped", "b:done", "c:done"}) {
		t.Errorf("resume ran %v: %v", f.executed, states(out))
	}
}

// Abort of a stopped run marks it aborted and runs the action's Cleanup
// for the stopped step (recorded failed); another kind's failed step (not
// a StopResumer) still ends its run failed, undone as before.
func TestRunnerAbortStoppedCleansUp(t *testing.T) {
	st := openStore(t, "")
	f := &stoppableFake{fakeAction: &fakeAction{failAt: "b"}}
	r := NewRunner(st, Registry{"fake": f}, RunnerOptions{})
	exec := newExecution(t, st, fakePlan("a", "b", "c"), "")
	if out, _ := r.Run(t.Context(), exec, nil); out.State != ExecStopped {
		t.Fatalf("outcome %s", out.State)
	}
	rep, err := r.AbortAndCleanUp(t.Context(), exec.ID, "aborted by U1")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.cleaned, []string{"b"}) || len(rep.Lines) != 1 || !strings.Contains(rep.Lines[0], "took back b") {
		t.Errorf("cleanup %v: %v", f.cleaned, rep.Lines)
	}
	rec, _ := st.Execution(t.Context(), exec.ID)
	if rec.State != ExecAborted {
		t.Errorf("state %s", rec.State)
	}
	if _, err := r.Run(t.Context(), exec, nil); !errors.Is(err, ErrNotRunnable) {
		t.Errorf("run after abort: %v", err)
	}

	plain := &fakeAction{failAt: "b"}
	exec = newExecution(t, st, fakePlan("a", "b", "c"), "")
	out, err := NewRunner(st, Registry{"fake": undoableFake{plain}}, RunnerOptions{}).Run(t.Context(), exec, nil)
	if err != nil || out.State != ExecRolledBack {
		t.Errorf("a kind without StopResumer: %s %v, want rolled_back", out.State, err)
	}
}
