package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chmedic/chmedic/internal/store"
)

// fakeAction records what ran; failAt makes a step fail, blockAt blocks a
// step until its context ends.
type fakeAction struct {
	mu       sync.Mutex
	executed []string
	undone   []string
	failAt   string
	verifyAt string
	blockAt  string
	blocked  chan struct{}
	undoErr  error
}

func (f *fakeAction) Kind() string { return "fake" }

func (f *fakeAction) Plan(ctx context.Context, req Request) (Plan, error) {
	return fakePlan("a", "b", "c"), nil
}

func fakePlan(ids ...string) Plan {
	p := Plan{Kind: "fake", Cluster: "c1", Params: json.RawMessage(`{}`), Summary: "fake"}
	for _, id := range ids {
		p.Steps = append(p.Steps, Step{ID: id, Title: "step " + id})
	}
	return p
}

func (f *fakeAction) Execute(ctx context.Context, plan Plan, step Step, prior map[string]StepResult) (StepResult, error) {
	f.mu.Lock()
	f.executed = append(f.executed, step.ID)
	f.mu.Unlock()
	if step.ID == f.blockAt {
		if f.blocked != nil {
			close(f.blocked)
		}
		<-ctx.Done()
		return StepResult{}, ctx.Err()
	}
	if step.ID == f.failAt {
		return StepResult{}, fmt.Errorf("boom at %s", step.ID)
	}
	return StepResult{Output: "did " + step.ID + fmt.Sprintf(" (%d before)", len(prior)), Data: json.RawMessage(`{"n":1}`)}, nil
}

func (f *fakeAction) Verify(ctx context.Context, plan Plan, step Step, res StepResult) error {
	if step.ID == f.verifyAt {
		return errors.New("not in effect")
	}
	return nil
}

type undoableFake struct{ *fakeAction }

func (u undoableFake) Undo(ctx context.Context, plan Plan, step Step, res StepResult) error {
	u.mu.Lock()
	u.undone = append(u.undone, step.ID)
	u.mu.Unlock()
	return u.undoErr
}

func openStore(t *testing.T, path string) *store.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "s.db")
	}
	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newExecution(t *testing.T, st *store.Store, plan Plan, requestID string) Execution {
	t.Helper()
	data, _ := json.Marshal(plan)
	id, _, err := st.CreateExecution(context.Background(), store.ExecutionRecord{RequestID: requestID, Cluster: plan.Cluster, Kind: plan.Kind, Plan: data, PlanHash: plan.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	return Execution{ID: id, RequestID: requestID, Plan: plan}
}

func states(out Outcome) []string {
	var s []string
	for _, st := range out.Steps {
		s = append(s, st.Step.ID+":"+st.State)
	}
	return s
}

func TestRunnerOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		fake     *fakeAction
		undoable bool
		want     string
		steps    []string
		undone   []string
	}{
		{name: "success", fake: &fakeAction{}, want: ExecSucceeded, steps: []string{"a:done", "b:done", "c:done"}},
		{name: "first fails", fake: &fakeAction{failAt: "a"}, want: ExecFailed, steps: []string{"a:failed", "b:not_run", "c:not_run"}},
		{name: "partial", fake: &fakeAction{failAt: "c"}, want: ExecPartial, steps: []string{"a:done", "b:done", "c:failed"}},
		{name: "verify fails", fake: &fakeAction{verifyAt: "b"}, want: ExecPartial, steps: []string{"a:done", "b:failed", "c:not_run"}},
		{name: "rolled back", fake: &fakeAction{failAt: "c"}, undoable: true, want: ExecRolledBack, steps: []string{"a:undone", "b:undone", "c:failed"}, undone: []string{"c", "b", "a"}},
		{name: "undo fails", fake: &fakeAction{failAt: "b", undoErr: errors.New("stuck")}, undoable: true, want: ExecPartial, steps: []string{"a:undo_failed", "b:failed", "c:not_run"}, undone: []string{"b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := openStore(t, "")
			var act Action = tt.fake
			if tt.undoable {
				act = undoableFake{tt.fake}
			}
			r := NewRunner(st, Registry{"fake": act}, RunnerOptions{})
			exec := newExecution(t, st, fakePlan("a", "b", "c"), "req-"+tt.name)
			var progress []string
			out, err := r.Run(context.Background(), exec, func(p Progress) {
				progress = append(progress, fmt.Sprintf("%d/%d %s %s", p.Index, p.Total, p.Step.ID, p.State))
			})
			if err != nil {
				t.Fatal(err)
			}
			if out.State != tt.want || !slices.Equal(states(out), tt.steps) {
				t.Fatalf("outcome %s %v, want %s %v", out.State, states(out), tt.want, tt.steps)
			}
			if !slices.Equal(tt.fake.undone, tt.undone) {
				t.Errorf("undone %v, want %v", tt.fake.undone, tt.undone)
			}
			if len(progress) == 0 || progress[0] != "1/3 a running" {
				t.Errorf("progress = %v", progress)
			}
			rec, _ := st.Execution(context.Background(), exec.ID)
			if rec.State != tt.want {
				t.Errorf("recorded state %s", rec.State)
			}
			// The lease is released.
			if _, held, _ := r.LeaseHolder(context.Background(), "c1"); held {
				t.Error("lease still held after the run")
			}
			// Running an ended execution again runs nothing.
			n := len(tt.fake.executed)
			again, err := r.Run(context.Background(), exec, nil)
			if err != nil || again.State != tt.want || len(tt.fake.executed) != n {
				t.Errorf("second run: %s %v, executed %v", again.State, err, tt.fake.executed)
			}
		})
	}
}

// A crash after step a was recorded done and during step b: the execution
// is marked interrupted at start-up, and Resume runs b and c only.
func TestRunnerInterruptedAndResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	st := openStore(t, path)
	ctx := context.Background()
	fake := &fakeAction{blockAt: "b", blocked: make(chan struct{})}
	r1 := NewRunner(st, Registry{"fake": fake}, RunnerOptions{Holder: "gone-host/1/aa", LeaseTTL: time.Hour})
	exec := newExecution(t, st, fakePlan("a", "b", "c"), "req")
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan Outcome)
	go func() {
		out, _ := r1.Run(rctx, exec, nil)
		done <- out
	}()
	<-fake.blocked
	// Simulate the crash: the process dies with the step running and the
	// lease held. Its state as the store has it:
	cur, _ := st.Execution(ctx, exec.ID)
	if cur.State != ExecRunning {
		t.Fatalf("state while running = %s", cur.State)
	}
	// A second runner (another process) cannot take the lease meanwhile.
	other := NewRunner(st, Registry{"fake": &fakeAction{}}, RunnerOptions{})
	if _, err := other.Run(ctx, exec, nil); !errors.As(err, new(*LeaseHeldError)) {
		t.Fatalf("second process ran a leased execution: %v", err)
	}
	if l, held, _ := other.LeaseHolder(ctx, "c1"); !held || l.Holder != "gone-host/1/aa" {
		t.Fatalf("LeaseHolder = %+v %v", l, held)
	}
	// MarkInterrupted leaves an execution whose holder is live alone.
	if got, _ := other.MarkInterrupted(ctx); len(got) != 0 {
		t.Fatalf("marked a live execution interrupted: %+v", got)
	}
	cancel() // the "crash": stop r1
	if out := <-done; out.State != ExecInterrupted {
		t.Fatalf("cancelled run: %s", out.State)
	}
	// r1 recorded interrupted itself here; a real crash leaves running.
	// Put the store back in the crash's state: running, lease expired.
	st.SetExecutionStateIf(ctx, exec.ID, ExecRunning, "", ExecInterrupted)
	st.AcquireLease(ctx, "c1", "gone-host/1/aa", exec.ID, -time.Second)

	fresh := NewRunner(st, Registry{"fake": &fakeAction{}}, RunnerOptions{})
	got, err := fresh.MarkInterrupted(ctx)
	if err != nil || len(got) != 1 || got[0].ID != exec.ID {
		t.Fatalf("MarkInterrupted = %+v, %v", got, err)
	}
	rec, _ := st.Execution(ctx, exec.ID)
	if rec.State != ExecInterrupted {
		t.Fatalf("state after start-up = %s", rec.State)
	}
	// Resume (after a restart: a new store handle on the same file).
	st2 := openStore(t, path)
	fake2 := &fakeAction{}
	r2 := NewRunner(st2, Registry{"fake": fake2}, RunnerOptions{})
	var progress []string
	out, err := r2.Run(ctx, Execution{ID: exec.ID}, func(p Progress) { progress = append(progress, p.Step.ID+" "+p.State) })
	if err != nil {
		t.Fatal(err)
	}
	if out.State != ExecSucceeded || !slices.Equal(fake2.executed, []string{"b", "c"}) {
		t.Fatalf("resume: %s, executed %v", out.State, fake2.executed)
	}
	if !slices.Equal(progress, []string{"a skipped", "b running", "b done", "c running", "c done"}) {
		t.Fatalf("progress = %v", progress)
	}
	// c saw a's and b's results.
	if out.Steps[2].Result.Output != "did c (2 before)" {
		t.Errorf("c output = %q", out.Steps[2].Result.Output)
	}
	steps, _ := st2.Steps(ctx, exec.ID)
	if steps[1].Attempts != 2 || steps[0].Attempts != 1 {
		t.Errorf("attempts a=%d b=%d, want 1 2", steps[0].Attempts, steps[1].Attempts)
	}
}

// A lease held by a process of this host that is gone is taken over at once.
func TestRunnerTakesOverDeadLocalHolder(t *testing.T) {
	st := openStore(t, "")
	ctx := context.Background()
	exec := newExecution(t, st, fakePlan("a"), "")
	dead := deadHolder(t)
	if _, ok, _ := st.AcquireLease(ctx, "c1", dead, "other-exec", time.Hour); !ok {
		t.Fatal("setup")
	}
	r := NewRunner(st, Registry{"fake": &fakeAction{}}, RunnerOptions{})
	if _, held, _ := r.LeaseHolder(ctx, "c1"); held {
		t.Fatal("a dead holder's lease counts as held")
	}
	out, err := r.Run(ctx, exec, nil)
	if err != nil || out.State != ExecSucceeded {
		t.Fatalf("run: %s %v", out.State, err)
	}
}

func deadHolder(t *testing.T) string {
	t.Helper()
	h := HolderID()
	// host/pid/rand with a pid that does not exist.
	for pid := 4000000; pid > 3000000; pid -= 7919 {
		if !processAlive(pid) {
			host := h[:indexByteFrom(h, '/')]
			return fmt.Sprintf("%s/%d/dead", host, pid)
		}
	}
	t.Skip("no free pid found")
	return ""
}

func indexByteFrom(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return len(s)
}

func TestRunnerRefusesChangedPlan(t *testing.T) {
	st := openStore(t, "")
	exec := newExecution(t, st, fakePlan("a", "b"), "")
	exec.Plan = fakePlan("a", "b", "extra")
	r := NewRunner(st, Registry{"fake": &fakeAction{}}, RunnerOptions{})
	if _, err := r.Run(context.Background(), exec, nil); err == nil {
		t.Fatal("ran a plan that differs from the recorded hash")
	}
}

func TestRunnerAbort(t *testing.T) {
	st := openStore(t, "")
	ctx := context.Background()
	exec := newExecution(t, st, fakePlan("a"), "")
	r := NewRunner(st, Registry{"fake": &fakeAction{}}, RunnerOptions{})
	if err := r.Abort(ctx, exec.ID, "no"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx, exec, nil); !errors.Is(err, ErrNotRunnable) {
		t.Fatalf("aborted execution ran: %v", err)
	}
}

// The lease is renewed while a long step runs: a second holder cannot take
// it although the TTL has passed several times.
func TestRunnerRenewsLease(t *testing.T) {
	st := openStore(t, "")
	ctx := context.Background()
	fake := &fakeAction{blockAt: "a", blocked: make(chan struct{})}
	r := NewRunner(st, Registry{"fake": fake}, RunnerOptions{LeaseTTL: 300 * time.Millisecond})
	exec := newExecution(t, st, fakePlan("a"), "")
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx, exec, nil); close(done) }()
	<-fake.blocked
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, ok, _ := st.AcquireLease(ctx, "c1", "intruder/1/x", "e", time.Second); ok {
			cancel()
			t.Fatal("lease expired while its holder was running")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestRunnerMetrics(t *testing.T) {
	st := openStore(t, "")
	reg := prometheus.NewRegistry()
	r := NewRunner(st, Registry{"fake": &fakeAction{failAt: "b"}}, RunnerOptions{Registerer: reg})
	NewRunner(st, Registry{}, RunnerOptions{Registerer: reg}) // a second Runner shares them
	if _, err := r.Run(context.Background(), newExecution(t, st, fakePlan("a", "b"), ""), nil); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(r.metrics.executions.WithLabelValues("fake", ExecPartial)); got != 1 {
		t.Errorf("executions{partial} = %v", got)
	}
	if got := testutil.ToFloat64(r.metrics.steps.WithLabelValues("fake", StepDone)); got != 1 {
		t.Errorf("steps{done} = %v", got)
	}
	if got := testutil.ToFloat64(r.metrics.steps.WithLabelValues("fake", StepFailed)); got != 1 {
		t.Errorf("steps{failed} = %v", got)
	}
}

// Two Runs in one process (a double click): the second is refused although
// the holder is the same.
func TestRunnerOneAtATimeInProcess(t *testing.T) {
	st := openStore(t, "")
	ctx := context.Background()
	fake := &fakeAction{blockAt: "a", blocked: make(chan struct{})}
	r := NewRunner(st, Registry{"fake": fake}, RunnerOptions{})
	first := newExecution(t, st, fakePlan("a"), "r1")
	second := newExecution(t, st, fakePlan("a", "b"), "r2")
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx, first, nil); close(done) }()
	<-fake.blocked
	var held *LeaseHeldError
	if _, err := r.Run(ctx, second, nil); !errors.As(err, &held) || held.Lease.ExecutionID != first.ID {
		t.Fatalf("second run: %v", err)
	}
	if _, err := r.Run(ctx, first, nil); !errors.As(err, &held) {
		t.Fatalf("same execution twice: %v", err)
	}
	cancel()
	<-done
}

// An execution left running by a process that is gone is not resumed
// silently: it must be marked interrupted first.
func TestRunnerRefusesStaleRunning(t *testing.T) {
	st := openStore(t, "")
	ctx := context.Background()
	exec := newExecution(t, st, fakePlan("a"), "")
	st.StartExecution(ctx, exec.ID, "elsewhere/1/x")
	fake := &fakeAction{}
	r := NewRunner(st, Registry{"fake": fake}, RunnerOptions{})
	if _, err := r.Run(ctx, exec, nil); !errors.Is(err, ErrNotRunnable) || len(fake.executed) != 0 {
		t.Fatalf("stale running execution: %v, executed %v", err, fake.executed)
	}
	if got, _ := r.MarkInterrupted(ctx); len(got) != 1 {
		t.Fatalf("MarkInterrupted = %v", got)
	}
	if out, err := r.Run(ctx, exec, nil); err != nil || out.State != ExecSucceeded {
		t.Fatalf("resume: %s %v", out.State, err)
	}
}
