//go:build linux

package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
)

// orphanConfig is a config with one cluster whose rolling_restart runs a
// command (nothing is contacted: MarkInterrupted reads the store only).
func orphanConfig(t *testing.T) *config.Config {
	t.Helper()
	src := `
clusters:
  - name: test
    clickhouse:
      nodes:
        - {name: ch-1, address: '127.0.0.1:1', shard: 1, replica: r1}
        - {name: ch-2, address: '127.0.0.1:2', shard: 1, replica: r2}
    keeper:
      nodes: [{name: zk-1, address: '127.0.0.1:3'}]
    actions:
      clickhouse: {user: admin}
      rolling_restart:
        command: [sleep, "300"]
        timeout: 60s
`
	path := filepath.Join(t.TempDir(), "chmedic.yaml")
	os.WriteFile(path, []byte(src), 0o600)
	cfg, err := config.Parse(path, []byte(src), func(string) (string, bool) { return "", false }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// leftRunning records an execution of a roll as a killed chmedic leaves
// it: running, held by a dead process, its restart step running with the
// pid and deadline of a real command still running in its own process
// group.
func leftRunning(t *testing.T, st *store.Store, holder string, deadline time.Time) (string, *exec.Cmd) {
	t.Helper()
	ctx := context.Background()
	d := RollingRestartDetails{Nodes: []RestartNode{{Name: "ch-1", Address: "127.0.0.1:1", Shard: 1}, {Name: "ch-2", Address: "127.0.0.1:2", Shard: 1}}, CommandTimeout: time.Minute}
	details, _ := json.Marshal(d)
	plan := Plan{Kind: RollingRestartKind, Cluster: "test", Params: json.RawMessage(`{}`), Details: details,
		Steps: []Step{{ID: "preflight"}, {ID: "ch-1/before", Node: "ch-1"}, {ID: "ch-1/restart", Node: "ch-1"}}}
	exe := newExecution(t, st, plan, "")
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { cmd.Wait(); close(waited) }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-waited })
	pid := cmd.Process.Pid
	if err := st.StartExecution(ctx, exe.ID, holder); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"preflight", "ch-1/before"} {
		st.StartStep(ctx, exe.ID, i, id)
		st.FinishStep(ctx, exe.ID, id, StepDone, []byte(`{}`), "")
	}
	st.StartStep(ctx, exe.ID, 2, "ch-1/restart")
	rd := restartData{StartBefore: 1, RecordedAt: time.Now().UTC(), IssuedAt: time.Now().UTC(),
		Running: &orphanCommand{PID: pid, Ticks: processStartTicks(pid), Deadline: deadline}}
	b, _ := json.Marshal(rd)
	res, _ := json.Marshal(StepResult{Output: "in progress", Data: b})
	if err := st.CheckpointStep(ctx, exe.ID, "ch-1/restart", res); err != nil {
		t.Fatal(err)
	}
	return exe.ID, cmd
}

// At start-up (MarkInterrupted), a restart command left running by the
// killed chmedic is killed — its whole process group — once past its
// recorded deadline, and one still within it is named in the interrupted
// execution's error with its pid and deadline. Before, nothing looked at
// it before the operator's Resume or Abort: the command past its deadline
// ran on, and the interrupted message did not say it ran.
func TestMarkInterruptedReapsOrphanedCommands(t *testing.T) {
	st := openStore(t, "")
	reg, err := NewRegistry(orphanConfig(t), Deps{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	holder := deadHolder(t)
	pastID, past := leftRunning(t, st, holder, time.Now().Add(-time.Second))
	future := time.Now().Add(10 * time.Minute).UTC()
	liveID, live := leftRunning(t, st, holder, future)

	marked, err := NewRunner(st, reg, RunnerOptions{}).MarkInterrupted(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(marked) != 2 {
		t.Fatalf("marked %d executions", len(marked))
	}
	// The one past its deadline: killed (the child's wait returns).
	gone := (orphanCommand{PID: past.Process.Pid}).running()
	if gone {
		t.Errorf("the command past its deadline (pid %d) still runs", past.Process.Pid)
	}
	rec, _ := st.Execution(t.Context(), pastID)
	if rec.State != ExecInterrupted || !strings.Contains(rec.Error, fmt.Sprintf("restart command pid %d passed its deadline", past.Process.Pid)) || !strings.Contains(rec.Error, "its process group was killed") {
		t.Errorf("past deadline: %s %q", rec.State, rec.Error)
	}
	// The one within it: still running, reported.
	if !(orphanCommand{PID: live.Process.Pid}).running() {
		t.Errorf("the command within its deadline was killed")
	}
	rec, _ = st.Execution(t.Context(), liveID)
	want := fmt.Sprintf("restart command pid %d still running, deadline %s", live.Process.Pid, future.Format("15:04:05"))
	if rec.State != ExecInterrupted || !strings.Contains(rec.Error, want) || !strings.Contains(rec.Error, StartupNoteSep) {
		t.Errorf("within deadline: %s %q, want %q", rec.State, rec.Error, want)
	}
	t.Logf("past: %s", func() string { r, _ := st.Execution(t.Context(), pastID); return r.Error }())
	t.Logf("live: %s", rec.Error)
}
