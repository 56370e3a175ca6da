//go:build linux

package actions

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

// detachedCommands stands for a chmedic SIGKILLed while its restart
// command runs: the command is started for real (ExecRunner, its own
// process group) but outlives the runner's context, as it outlives a
// killed process; the runner is stopped once its pid is recorded.
type detachedCommands struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (d *detachedCommands) Run(ctx context.Context, cmd Command) (CommandResult, error) {
	started := make(chan struct{})
	onStart := cmd.OnStart
	cmd.OnStart = func(pid int) {
		if onStart != nil {
			onStart(pid) // the checkpoint records the pid
		}
		close(started)
	}
	cmd.Timeout = 0 // a killed chmedic enforces no timeout
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		ExecRunner{}.Run(context.Background(), cmd)
	}()
	<-started
	d.cancel()
	<-ctx.Done()
	return CommandResult{Argv: cmd.Argv}, ctx.Err()
}

// chmedic is killed while the restart command of the first node runs (it
// restarts the node 2 s later); the resume finds the command still running,
// waits for it (its deadline is the configured timeout), and then finds the
// node restarted: it is not restarted a second time. Before the fix nothing
// recorded the command: the resume could not tell it ran.
func TestRollingRestartResumeWaitsForOrphanedCommand(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, "")
	cl := &r.cfg.Clusters[0].Actions.RollingRestart
	cl.Command = append([]string{"sh", "-c", `sleep 2; exec "$0" "$@"`}, r.rs.Command()...)
	plan := r.mustPlan(t, nil)
	first := plan.Steps[1].Node
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dc := &detachedCommands{cancel: cancel}
	reg, err := NewRegistry(r.cfg, Deps{DataDir: t.TempDir(), Diagnose: testEngine(t, env, r.cfg).Diagnose, Commands: dc})
	if err != nil {
		t.Fatal(err)
	}
	exec := newExecution(t, r.st, plan, "")
	out, err := NewRunner(r.st, reg, RunnerOptions{}).Run(rctx, exec, nil)
	if err == nil || out.State != ExecInterrupted {
		t.Fatalf("first run: %s %v", out.State, err)
	}
	if n := r.rs.Restarts(first); n != 0 {
		t.Fatalf("the orphaned command restarted %s before the kill landed (%d): the test cannot tell a wait", first, n)
	}
	out, err = NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	dc.wg.Wait()
	if err != nil || out.State != ExecSucceeded {
		t.Fatalf("resume: %s %v: %s %v", out.State, err, out.Error, stepStates(out))
	}
	var restart string
	for _, s := range out.Steps {
		t.Logf("  %s %s: %s", s.Step.ID, s.State, s.Result.Output)
		if s.Step.ID == first+"/restart" {
			restart = s.Result.Output
		}
	}
	if !strings.Contains(restart, "ended by itself before its deadline") {
		t.Errorf("the resumed restart step does not say it waited for the orphaned command: %q", restart)
	}
	for _, c := range env.ClickHouse {
		if got := r.rs.Restarts(c.Name); got != 1 {
			t.Errorf("%s restarted %d times", c.Name, got)
		}
	}
}

// chmedic is killed while a restart command that hangs runs; the resume
// waits for it up to its deadline (the configured timeout), kills its
// process group, and only then issues the restart again. Before the fix
// the hanging command ran on (nothing enforced its timeout any more) while
// the resume issued a second one beside it.
func TestRollingRestartResumeKillsHangingOrphan(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, "")
	rc := &r.cfg.Clusters[0].Actions.RollingRestart
	rc.Command = []string{"sleep", "300"}
	rc.Timeout = 3 * time.Second
	plan := r.mustPlan(t, nil)
	first := plan.Steps[1].Node
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dc := &detachedCommands{cancel: cancel}
	reg, err := NewRegistry(r.cfg, Deps{DataDir: t.TempDir(), Diagnose: testEngine(t, env, r.cfg).Diagnose, Commands: dc})
	if err != nil {
		t.Fatal(err)
	}
	exec := newExecution(t, r.st, plan, "")
	if out, err := NewRunner(r.st, reg, RunnerOptions{}).Run(rctx, exec, nil); err == nil || out.State != ExecInterrupted {
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
	if cp.Running == nil || !cp.Running.running() {
		t.Fatalf("the checkpoint records no running command: %+v", cp)
	}
	t.Cleanup(func() { syscall.Kill(-cp.Running.PID, syscall.SIGKILL) })
	out, _ := NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	dc.wg.Wait() // the orphan ended: killed
	if cp.Running.running() {
		t.Error("the orphaned command still runs after the resume")
	}
	if stepStates(out)[first+"/restart"] != StepFailed {
		t.Errorf("resume: %s %s %v", out.State, out.Error, stepStates(out))
	}
	var restart string
	for _, s := range out.Steps {
		if s.Step.ID == first+"/restart" {
			restart = s.Error + " " + s.Result.Output
		}
	}
	if !strings.Contains(out.Error, "its process group was killed") && !strings.Contains(restart, "its process group was killed") {
		t.Errorf("the outcome does not say the orphan was killed: %q / %q", out.Error, restart)
	}
	t.Logf("resume: %s: %s", out.State, out.Error)
}
