package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/internal/testenv"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// roll is one rolling_restart set-up on a real environment: the config
// (a command executor restarting the real servers through a Restarter),
// the registry with a real diagnosis engine, a store.
type roll struct {
	env *testenv.Env
	rs  *testenv.Restarter
	cfg *config.Config
	reg Registry
	st  *store.Store
}

// rollConfig is the YAML of the rolling_restart section; %s is replaced by
// the command.
func newRoll(t testing.TB, env *testenv.Env, section string) *roll {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is needed by the restart command")
	}
	rs, err := env.StartRestarter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	cmd, _ := json.Marshal(rs.Command())
	commandLine := "        command: " + string(cmd)
	if strings.Contains(section, "executor: sql") {
		commandLine = "        executor: sql"
		section = strings.ReplaceAll(section, "        executor: sql\n", "")
	}
	am := ""
	if env.Alertmanager != nil {
		am = env.Alertmanager.URL
	}
	src := fmt.Sprintf(`
alertmanager: {url: '%s'}
clusters:
  - name: test
    clickhouse:
      nodes:
        - {name: %s, address: '%s', shard: 1, replica: %s}
        - {name: %s, address: '%s', shard: 1, replica: %s}
    keeper:
      nodes: [{name: zk-1, address: '%s'}]
    actions:
      clickhouse: {user: %s, password_env: CH_ACTIONS_PW}
      rolling_restart:
%s
        timeout: 60s
        poll_interval: 200ms
        max_keeper_latency: 2s
        timeouts: {before: 10s, drain: 10s, up: 30s, tables: 30s, catch_up: 30s}
%s`, am, env.ClickHouse[0].Name, env.ClickHouse[0].Addr(), env.ClickHouse[0].Replica,
		env.ClickHouse[1].Name, env.ClickHouse[1].Addr(), env.ClickHouse[1].Replica,
		env.ZooKeeper.Addr, env.AdminUser, commandLine, section)
	path := filepath.Join(t.TempDir(), "chmedic.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(path, []byte(src), func(k string) (string, bool) { return env.AdminPassword, k == "CH_ACTIONS_PW" }, nil)
	if err != nil {
		t.Fatalf("config:\n%v\n%s", err, src)
	}
	engine := testEngine(t, env, cfg)
	reg, err := NewRegistry(cfg, Deps{DataDir: t.TempDir(), Diagnose: engine.Diagnose})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &roll{env: env, rs: rs, cfg: cfg, reg: reg, st: st}
}

// testEngine is the diagnosis engine chmedic builds (internal/app), with
// the probe user and no cache.
func testEngine(t testing.TB, env *testenv.Env, cfg *config.Config) *diagnose.Engine {
	t.Helper()
	dc := &diagnose.Cluster{Name: "test", KeeperCommands: config.DefaultKeeperCommands(), KeeperKind: config.KeeperKindZooKeeper,
		Keeper: []diagnose.KeeperNode{{Name: "zk-1", Addr: env.ZooKeeper.Addr}}}
	for _, c := range env.ClickHouse {
		n, err := clickhouse.Open(clickhouse.NodeConfig{Name: c.Name, Addr: c.Addr(), User: env.ProbeUser, Password: env.ProbePassword,
			Database: "default", DialTimeout: 2 * time.Second, MaxConns: 2, MaxExecutionTime: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		dc.ClickHouse = append(dc.ClickHouse, diagnose.ClickHouseNode{Name: c.Name, Addr: c.Addr(), Conn: n, Shard: 1, Replica: c.Replica})
	}
	return diagnose.New([]*diagnose.Cluster{dc}, diagnose.Options{CacheTTL: -1, Thresholds: probe.FromConfig(cfg.Diagnosis), Keeper: &keeper.Client{Timeout: 2 * time.Second}})
}

func (r *roll) plan(t testing.TB, params map[string]string) (Plan, error) {
	t.Helper()
	return r.reg[RollingRestartKind].Plan(t.Context(), Request{Cluster: "test", Params: WithDefaults(RollingRestartKind, params), RequestedBy: "cli:test"})
}

func (r *roll) mustPlan(t testing.TB, params map[string]string) Plan {
	t.Helper()
	p, err := r.plan(t, params)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

// startTimes reads the start times of the servers that answer
// (testenv.Env.StartTimes).
func startTimes(ctx context.Context, env *testenv.Env) map[string]int64 {
	out, _ := env.StartTimes(ctx)
	return out
}

// watch samples both servers every 0.2 s: which answer, and their start
// times.
func watch(env *testenv.Env) *testenv.StartWatch { return env.WatchStartTimes(200 * time.Millisecond) }

// analyse checks the samples: never both down; returns the longest time
// the shard had fewer than all its replicas answering, and the order in
// which the start times changed.
func analyse(t testing.TB, samples []testenv.StartSample, names []string) (longest time.Duration, changes []string) {
	t.Helper()
	first := samples[0].Start
	changed := map[string]bool{}
	var since time.Time
	for _, s := range samples {
		if len(s.Down) == len(names) {
			t.Errorf("at %s no replica was up: both were down", s.At.Format("15:04:05.000"))
		}
		if len(s.Start) < len(names) {
			if since.IsZero() {
				since = s.At
			}
		} else if !since.IsZero() {
			longest = max(longest, s.At.Sub(since))
			since = time.Time{}
		}
		for _, n := range names {
			if v, ok := s.Start[n]; ok && v >= first[n]+2 && !changed[n] {
				changed[n] = true
				changes = append(changes, n)
			}
		}
	}
	if !since.IsZero() {
		longest = max(longest, samples[len(samples)-1].At.Sub(since))
	}
	return longest, changes
}

func stepStates(out Outcome) map[string]string {
	m := map[string]string{}
	for _, s := range out.Steps {
		m[s.Step.ID] = s.State
	}
	return m
}

// A roll on the real replicas: both restarted, one at a time, each waited
// for; the store and the outcome show every step; the silence of each node
// is created on the real Alertmanager and expired when its step ends;
// SYSTEM STOP MERGES is accepted by 18.16.
func TestRollingRestartRealCluster(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, `        stop_merges: true
        silence: {matchers: ['instance="{{.Name}}"', 'cluster="test"']}
`)
	a, b := env.ClickHouse[0].Name, env.ClickHouse[1].Name
	plan := r.mustPlan(t, map[string]string{"alert_node": a})
	// The alert's node goes last.
	var order []string
	for _, s := range plan.Steps {
		order = append(order, s.ID)
	}
	want := []string{"preflight", b + "/before", b + "/restart", b + "/after", a + "/before", a + "/restart", a + "/after"}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Fatalf("steps %v, want %v", order, want)
	}
	if again := r.mustPlan(t, map[string]string{"alert_node": a}); again.Hash() != plan.Hash() {
		t.Fatalf("re-planning changed the plan: %v", plan.Steps)
	}
	if !strings.Contains(plan.Summary, "estimated 1m0s") || !strings.Contains(plan.Summary, b+" → "+a) {
		t.Errorf("summary %q", plan.Summary)
	}
	t.Logf("plan: %s\nmethod: %s", plan.Summary, plan.Method)
	for _, s := range plan.Steps {
		t.Logf("  %s: %s", s.ID, s.Title)
	}

	var silencesSeen []string
	var smu sync.Mutex
	var reported []string
	progress := func(p Progress) {
		if p.State == StepRunning && p.Output != "" {
			smu.Lock()
			reported = append(reported, fmt.Sprintf("%d/%d %s: %s (%s)", p.Index, p.Total, p.Step.ID, p.Output, p.Elapsed.Round(time.Millisecond)))
			smu.Unlock()
		}
		if p.State == StepRunning && p.Output == "" && strings.HasSuffix(p.Step.ID, "/after") {
			smu.Lock()
			silencesSeen = append(silencesSeen, activeSilences(t, env, p.Step.Node)...)
			smu.Unlock()
		}
	}
	w := watch(env)
	t0 := time.Now()
	exec := newExecution(t, r.st, plan, "")
	out, err := NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, progress)
	took := time.Since(t0)
	time.Sleep(time.Second) // the watcher sees the last node back
	samples := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	if out.State != ExecSucceeded {
		t.Fatalf("outcome %s: %s\n%v", out.State, out.Error, stepStates(out))
	}
	longest, changes := analyse(t, samples, []string{a, b})
	if strings.Join(changes, ",") != b+","+a {
		t.Errorf("start times changed in the order %v, want %s then %s", changes, b, a)
	}
	t.Logf("roll of 2 nodes took %s; the longest moment the shard had fewer than 2 replicas answering: %s (%d samples at 0.2 s)", took.Round(time.Millisecond), longest.Round(time.Millisecond), len(samples))
	for _, n := range []string{a, b} {
		if got := r.rs.Restarts(n); got != 1 {
			t.Errorf("%s restarted %d times", n, got)
		}
	}
	recs, err := r.st.Steps(ctx, exec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(want) {
		t.Fatalf("store has %d steps, want %d", len(recs), len(want))
	}
	for i, rec := range recs {
		if rec.StepID != want[i] || rec.State != StepDone {
			t.Errorf("store step %d: %s %s, want %s done", i, rec.StepID, rec.State, want[i])
		}
	}
	for _, s := range out.Steps {
		t.Logf("  %s %s: %s", s.Step.ID, s.State, s.Result.Output)
	}
	// The current gate is reported while a step runs (the thread's
	// progress message shows it).
	live := strings.Join(reported, "\n")
	for _, w := range []string{"2/7 " + b + "/before: waiting for the other replicas of shard 1 to be healthy (up to 10s)", "3/7 " + b + "/restart: restarting " + b,
		"4/7 " + b + "/after: waiting for " + b + " to answer with a new start time (up to 30s)", "waiting for " + a + " to catch up"} {
		if !strings.Contains(live, w) {
			t.Errorf("progress reported lacks %q:\n%s", w, live)
		}
	}
	if o := out.Steps[3].Result.Output; !strings.Contains(o, "restarted (start time") || !strings.Contains(o, "expired") {
		t.Errorf("after step output %q", o)
	}
	// Each node was silenced during its checks, and no silence is left.
	if len(silencesSeen) != 2 {
		t.Errorf("silences seen during the after steps: %v", silencesSeen)
	}
	for _, id := range silencesSeen {
		st, err := (&SilenceClient{URL: env.Alertmanager.URL}).State(ctx, id)
		if err != nil || st != "expired" {
			t.Errorf("silence %s: %s %v, want expired", id, st, err)
		}
	}
}

// activeSilences returns the ids of the active silences matching
// instance=node.
func activeSilences(t *testing.T, env *testenv.Env, node string) []string {
	resp, err := http.Get(env.Alertmanager.URL + "/api/v2/silences")
	if err != nil {
		t.Error(err)
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ss []apiSilence
	if err := json.Unmarshal(body, &ss); err != nil {
		t.Error(err)
		return nil
	}
	var ids []string
	for _, s := range ss {
		if s.Status == nil || s.Status.State != "active" {
			continue
		}
		for _, m := range s.Matchers {
			if m.Name == "instance" && m.Value == node && m.IsEqual && !m.IsRegex {
				ids = append(ids, s.ID)
			}
		}
	}
	return ids
}

// The other replica down: refused at plan time with the reason; and when it
// goes down after the plan was made, the gate before the first restart
// refuses and nothing is restarted.
func TestRollingRestartOtherReplicaDown(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, "")
	a, b := env.ClickHouse[0], env.ClickHouse[1]
	plan := r.mustPlan(t, nil)
	before := startTimes(ctx, env)

	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.Start(context.Background())
		env.WaitHealthy(context.Background())
	})
	_, err := r.plan(t, nil)
	if !IsRefusal(err) || !strings.Contains(err.Error(), b.Name+" is down") {
		t.Fatalf("plan with %s down: %v, want a refusal naming it", b.Name, err)
	}
	t.Logf("refusal: %v", err)

	exec := newExecution(t, r.st, plan, "")
	out, err := NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != ExecFailed {
		t.Fatalf("outcome %s, want failed: %s", out.State, out.Error)
	}
	// The preflight sees b down, before any node is touched.
	st := stepStates(out)
	if st["preflight"] != StepFailed || st[a.Name+"/restart"] != StepNotRun {
		t.Errorf("steps %v", st)
	}
	if !strings.Contains(out.Error, b.Name+" is down") || !strings.Contains(out.Error, "no node touched") {
		t.Errorf("outcome error %q", out.Error)
	}
	t.Logf("outcome: %s", out.Error)

	// The per-node gate on its own: a plan whose preflight passed, b
	// stopping right after it.
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	plan = r.mustPlan(t, nil)
	exec = newExecution(t, r.st, plan, "")
	stopped := make(chan struct{})
	progress := func(p Progress) {
		if p.Step.ID == "preflight" && p.State == StepDone {
			if err := b.Stop(context.Background()); err != nil {
				t.Error(err)
			}
			close(stopped)
		}
	}
	out, err = NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, progress)
	if err != nil {
		t.Fatal(err)
	}
	st = stepStates(out)
	if out.State != ExecStopped || st[a.Name+"/before"] != StepFailed || st[a.Name+"/restart"] != StepNotRun {
		t.Fatalf("outcome %s %v: %s", out.State, st, out.Error)
	}
	for _, w := range []string{"gate before " + a.Name + " failed", "replica " + b.Name + " of shard 1 is down", "node 1 of 2 (" + a.Name + ")", "not touched: " + b.Name} {
		if !strings.Contains(out.Error, w) {
			t.Errorf("outcome error %q lacks %q", out.Error, w)
		}
	}
	t.Logf("outcome: %s", out.Error)
	if r.rs.Restarts(a.Name) != 0 || r.rs.Restarts(b.Name) != 0 {
		t.Error("a node was restarted")
	}
	// now()-uptime() of one process differs by up to 1 s between reads.
	if now := startTimes(ctx, env); now[a.Name] >= before[a.Name]+2 {
		t.Errorf("%s start time changed %d → %d", a.Name, before[a.Name], now[a.Name])
	}

	// The roll is stopped, resumable. A Resume while b is still down is
	// refused with the figures, and the roll stays stopped, nothing run.
	out, err = NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	if !IsResumeRefused(err) || out.State != ExecStopped {
		t.Fatalf("resume with %s down: %s %v, want refused and stopped", b.Name, out.State, err)
	}
	for _, w := range []string{"the roll stays stopped at node 1 of 2 (" + a.Name + ")", "the gate before " + a.Name + "'s restart still fails", "replica " + b.Name + " of shard 1 is down"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q lacks %q", err, w)
		}
	}
	t.Logf("resume refused: %v", err)
	if rec, _ := r.st.Execution(ctx, exec.ID); rec.State != ExecStopped || !strings.Contains(rec.Error, "resume refused") {
		t.Errorf("recorded %s %q", rec.State, rec.Error)
	}
	if r.rs.Restarts(a.Name) != 0 {
		t.Error("a refused resume restarted a node")
	}
	// b back: the Resume re-checks the gate and completes the roll.
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	restartedB := startTimes(ctx, env)[b.Name]
	out, err = NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	if err != nil || out.State != ExecSucceeded {
		t.Fatalf("resume with %s back: %s %v: %s %v", b.Name, out.State, err, out.Error, stepStates(out))
	}
	if st := stepStates(out); st["preflight"] != StepSkipped || st[a.Name+"/before"] != StepDone {
		t.Errorf("resumed steps %v", st)
	}
	for _, c := range env.ClickHouse {
		if got := r.rs.Restarts(c.Name); got != 1 {
			t.Errorf("%s restarted %d times by the resumed roll", c.Name, got)
		}
	}
	if now := startTimes(ctx, env); now[a.Name] < before[a.Name]+2 || now[b.Name] < restartedB+2 {
		t.Errorf("not restarted: %v (before %v, %s back at %d)", now, before, b.Name, restartedB)
	}
}

// A node that does not come back within the timeout aborts the roll there;
// the next node is untouched.
func TestRollingRestartNodeDoesNotComeBack(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, `        silence: {matchers: ['instance="{{.Name}}"']}
`)
	a, b := env.ClickHouse[0], env.ClickHouse[1]
	plan := r.mustPlan(t, map[string]string{"wait_healthy": "5s"})
	before := startTimes(ctx, env)
	r.rs.HoldDown(a.Name, 9*time.Second)
	t.Cleanup(func() {
		r.rs.Wait()
		env.WaitHealthy(context.Background())
	})
	exec := newExecution(t, r.st, plan, "")
	out, err := NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := stepStates(out)
	if out.State != ExecStopped || st[a.Name+"/after"] != StepFailed || st[b.Name+"/before"] != StepNotRun || st[b.Name+"/restart"] != StepNotRun {
		t.Fatalf("outcome %s %v: %s", out.State, st, out.Error)
	}
	for _, w := range []string{`gate "up with a new start time" of ` + a.Name + " failed", "it does not answer", "timeout 5s", "node 1 of 2 (" + a.Name + ") after its restart", "not touched: " + b.Name} {
		if !strings.Contains(out.Error, w) {
			t.Errorf("outcome error %q lacks %q", out.Error, w)
		}
	}
	t.Logf("outcome: %s", out.Error)
	if r.rs.Restarts(b.Name) != 0 {
		t.Errorf("%s was restarted", b.Name)
	}
	if now := startTimes(ctx, env); now[b.Name] >= before[b.Name]+2 {
		t.Errorf("%s start time changed %d → %d", b.Name, before[b.Name], now[b.Name])
	}

	// Nothing waits for the decision: the node's silence ended at the stop.
	var cp restartData
	recs, _ := r.st.Steps(ctx, exec.ID)
	for _, rec := range recs {
		if rec.StepID == a.Name+"/restart" {
			var res StepResult
			json.Unmarshal(rec.Result, &res)
			json.Unmarshal(res.Data, &cp)
		}
	}
	if cp.SilenceID == "" {
		t.Fatalf("no silence recorded: %+v", cp)
	}
	if st, err := (&SilenceClient{URL: env.Alertmanager.URL}).State(ctx, cp.SilenceID); err != nil || st != "expired" {
		t.Errorf("silence of the stopped node: %s %v, want expired", st, err)
	}

	// The node comes back by itself; Resume (a new runner on the same
	// store) goes on with its checks — it is not restarted again, its
	// alerts silenced again meanwhile — and then restarts the other node.
	r.rs.Wait()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	back := startTimes(ctx, env)
	if back[a.Name] < before[a.Name]+2 {
		t.Fatalf("%s did not come back restarted: %d → %d", a.Name, before[a.Name], back[a.Name])
	}
	out, err = NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	if err != nil || out.State != ExecSucceeded {
		t.Fatalf("resume: %s %v: %s %v", out.State, err, out.Error, stepStates(out))
	}
	for _, s := range out.Steps {
		t.Logf("  %s %s: %s", s.Step.ID, s.State, s.Result.Output)
	}
	if st := stepStates(out); st[a.Name+"/restart"] != StepSkipped || st[a.Name+"/after"] != StepDone {
		t.Errorf("resumed steps %v", st)
	}
	for _, s := range out.Steps {
		if s.Step.ID == a.Name+"/after" && (!strings.Contains(s.Result.Output, "expired") || strings.Contains(s.Result.Output, cp.SilenceID)) {
			t.Errorf("the resumed checks of %s did not silence it again (and expire it): %q", a.Name, s.Result.Output)
		}
	}
	if got := r.rs.Restarts(a.Name); got != 1 {
		t.Errorf("%s restarted %d times", a.Name, got)
	}
	if got := r.rs.Restarts(b.Name); got != 1 {
		t.Errorf("%s restarted %d times by the resume", b.Name, got)
	}
	now := startTimes(ctx, env)
	if d := now[a.Name] - back[a.Name]; d > 1 || d < -1 {
		t.Errorf("%s start time changed by the resume: %d → %d", a.Name, back[a.Name], now[a.Name])
	}
	if now[b.Name] < before[b.Name]+2 {
		t.Errorf("%s was not restarted: %d → %d", b.Name, before[b.Name], now[b.Name])
	}
}

// Kill chmedic mid-roll (cancel the runner; a new runner on the same
// store): the resume finishes without restarting any node twice, and the
// silence of the interrupted node is expired by the resumed step.
func TestRollingRestartResumeAfterKill(t *testing.T) {
	env := testenv.Shared(t)
	for _, kill := range []string{"/restart", "/after"} {
		t.Run(strings.TrimPrefix(kill, "/"), func(t *testing.T) {
			ctx := t.Context()
			if err := env.WaitHealthy(ctx); err != nil {
				t.Fatal(err)
			}
			r := newRoll(t, env, `        silence: {matchers: ['instance="{{.Name}}"']}
`)
			plan := r.mustPlan(t, nil)
			first := plan.Steps[1].Node
			exec := newExecution(t, r.st, plan, "")
			before := startTimes(ctx, env)
			if kill == "/after" {
				// The server comes back 3 s after it stopped: the kill
				// lands while the checks after the restart wait for it.
				r.rs.HoldDown(first, 3*time.Second)
			}
			rctx, cancel := context.WithCancel(ctx)
			progress := func(p Progress) {
				if p.State == StepRunning && p.Step.ID == first+kill {
					// Mid-step: the restart command in flight, or the
					// checks after it waiting.
					time.AfterFunc(300*time.Millisecond, cancel)
				}
			}
			out, err := NewRunner(r.st, r.reg, RunnerOptions{}).Run(rctx, exec, progress)
			cancel()
			if err == nil || out.State != ExecInterrupted {
				t.Fatalf("first run: %s %v", out.State, err)
			}
			t.Logf("killed: %s", out.Error)
			recs, _ := r.st.Steps(ctx, exec.ID)
			var cp restartData
			for _, rec := range recs {
				if rec.StepID == first+"/restart" {
					var res StepResult
					json.Unmarshal(rec.Result, &res)
					json.Unmarshal(res.Data, &cp)
				}
			}
			if cp.StartBefore == 0 || cp.SilenceID == "" {
				t.Fatalf("the restart step recorded no start time or silence: %+v", cp)
			}

			out, err = NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
			if err != nil || out.State != ExecSucceeded {
				t.Fatalf("resume: %s %v: %s %v", out.State, err, out.Error, stepStates(out))
			}
			for _, s := range out.Steps {
				t.Logf("  %s %s: %s", s.Step.ID, s.State, s.Result.Output)
			}
			for _, c := range env.ClickHouse {
				if got := r.rs.Restarts(c.Name); got != 1 {
					t.Errorf("%s restarted %d times", c.Name, got)
				}
			}
			now := startTimes(ctx, env)
			for n, s := range before {
				if now[n] < s+2 {
					t.Errorf("%s was not restarted: start %d → %d", n, s, now[n])
				}
			}
			if st, err := (&SilenceClient{URL: env.Alertmanager.URL}).State(ctx, cp.SilenceID); err != nil || st != "expired" {
				t.Errorf("silence of the interrupted step: %s %v, want expired", st, err)
			}
		})
	}
}

// A restart command that fails leaves the node as it was: merges started
// again, the silence expired, the outcome says it was not restarted.
func TestRollingRestartCommandFails(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, "        stop_merges: true\n")
	// The first attempt fails; a later one restarts the node for real.
	marker := filepath.Join(t.TempDir(), "failed-once")
	r.cfg.Clusters[0].Actions.RollingRestart.Command = append([]string{"sh", "-c", `if [ -e ` + marker + ` ]; then exec "$0" "$@"; fi; touch ` + marker + `; echo no such unit >&2; exit 5`}, r.rs.Command()...)
	plan := r.mustPlan(t, nil)
	before := startTimes(ctx, env)
	exec := newExecution(t, r.st, plan, "")
	out, err := NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	if err != nil {
		t.Fatal(err)
	}
	first := plan.Steps[1].Node
	if st := stepStates(out); out.State != ExecStopped || st[first+"/restart"] != StepFailed {
		t.Fatalf("outcome %s %v", out.State, st)
	}
	for _, w := range []string{"restart of " + first + " failed", "no such unit", "it was not restarted (start time unchanged", "merges started again"} {
		if !strings.Contains(out.Error, w) {
			t.Errorf("outcome error %q lacks %q", out.Error, w)
		}
	}
	t.Logf("outcome: %s", out.Error)

	// Resume: the restart never happened (the command failed, the start
	// time unchanged), so it is issued again — once — and the roll ends.
	out, err = NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
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
	if !strings.Contains(restart, "failed and "+first+" kept its start time") || !strings.Contains(restart, "issued again") {
		t.Errorf("the resumed restart step does not say why it issued the restart again: %q", restart)
	}
	now := startTimes(ctx, env)
	for _, c := range env.ClickHouse {
		if got := r.rs.Restarts(c.Name); got != 1 {
			t.Errorf("%s restarted %d times", c.Name, got)
		}
		if now[c.Name] < before[c.Name]+2 {
			t.Errorf("%s not restarted: %d → %d", c.Name, before[c.Name], now[c.Name])
		}
	}
}

// ZooKeeper stopped: the replicas turn read-only; the roll is refused at
// plan time with the figures, and a plan made before refuses at its
// preflight. Its own environment, so that the shared one never sees every
// session reconnect at once.
func TestRollingRestartZooKeeperStopped(t *testing.T) {
	testenv.Require(t)
	ctx := t.Context()
	env, err := testenv.Start(ctx, testenv.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Close() })
	r := newRoll(t, env, "")
	plan := r.mustPlan(t, nil)
	if err := env.ZooKeeper.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// Wait for the replicas to turn read-only (~2.3 s).
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := env.ClickHouse[0].QueryInt(ctx, "SELECT count() FROM system.replicas WHERE is_readonly")
		if err == nil && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replicas did not turn read-only")
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, err = r.plan(t, nil)
	if !IsRefusal(err) {
		t.Fatalf("plan with ZooKeeper stopped: %v, want a refusal", err)
	}
	for _, w := range []string{"no quorum", "0 of 1 coordination nodes answer", "no replica of shard 1 is healthy", "read-only: " + testenv.EventsTable} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal %q lacks %q", err, w)
		}
	}
	t.Logf("refusal: %v", err)
	exec := newExecution(t, r.st, plan, "")
	out, err := NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := stepStates(out); out.State != ExecFailed || st["preflight"] != StepFailed {
		t.Fatalf("outcome %s %v: %s", out.State, st, out.Error)
	}
	t.Logf("outcome: %s", out.Error)
	for _, c := range env.ClickHouse {
		if r.rs.Restarts(c.Name) != 0 {
			t.Errorf("%s restarted", c.Name)
		}
	}

	// ZooKeeper back: every session reconnects at once.
	if err := env.ZooKeeper.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = r.plan(t, nil)
	t.Logf("plan right after ZooKeeper came back: %v", err)
}

// With discovery, the nodes the config does not list come from
// system.clusters with their shard, and the plan shows them.
func TestRollingRestartPlanDiscovers(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, "")
	cl := &r.cfg.Clusters[0]
	cl.ClickHouse.Discover, cl.ClickHouse.ClusterName = true, env.Cluster
	cl.ClickHouse.Nodes = cl.ClickHouse.Nodes[:1]
	plan := r.mustPlan(t, nil)
	var d RollingRestartDetails
	if err := json.Unmarshal(plan.Details, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Nodes) != 2 || !d.Nodes[1].Discovered || d.Nodes[1].Address != env.ClickHouse[1].Addr() || d.Nodes[1].Shard != 1 || len(d.Shards[1]) != 2 {
		t.Fatalf("nodes %+v shards %v", d.Nodes, d.Shards)
	}
}

// The silence client against the real Alertmanager 0.25: created active
// with the matchers, expired, and expiring it again is not an error.
func TestSilenceClientRealAlertmanager(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	m1, _ := config.RenderMatcher(`instance=~"{{.Host}}:.*"`, config.CommandFields{Host: "10.0.0.7"})
	m2, _ := config.RenderMatcher(`cluster!="other"`, config.CommandFields{})
	c := &SilenceClient{URL: env.Alertmanager.URL}
	now := time.Now()
	id, err := c.Create(ctx, Silence{Matchers: []*labels.Matcher{m1, m2}, StartsAt: now, EndsAt: now.Add(time.Hour), CreatedBy: "chmedic", Comment: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(ctx, id); err != nil || st != "active" {
		t.Fatalf("state %q %v", st, err)
	}
	resp, err := http.Get(env.Alertmanager.URL + "/api/v2/silence/" + id)
	if err != nil {
		t.Fatal(err)
	}
	var s apiSilence
	json.NewDecoder(resp.Body).Decode(&s)
	resp.Body.Close()
	if len(s.Matchers) != 2 || s.Matchers[0] != (apiMatcher{Name: "instance", Value: "10.0.0.7:.*", IsRegex: true, IsEqual: true}) ||
		s.Matchers[1] != (apiMatcher{Name: "cluster", Value: "other", IsEqual: false}) || s.CreatedBy != "chmedic" {
		t.Errorf("stored silence %+v", s)
	}
	if err := c.Expire(ctx, id); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.State(ctx, id); st != "expired" {
		t.Errorf("state after expiry %q", st)
	}
	if err := c.Expire(ctx, id); err != nil {
		t.Errorf("expiring again: %v", err)
	}
	if _, err := (&SilenceClient{URL: env.Alertmanager.URL}).Create(ctx, Silence{StartsAt: now, EndsAt: now.Add(time.Hour)}); err == nil || !strings.Contains(err.Error(), "HTTP 422: {\"code\":602,\"message\":\"matchers in body is required\"}") {
		t.Errorf("a silence without matchers: %v", err)
	}
}

// The sql executor: SYSTEM SHUTDOWN with the actions credentials, and a
// supervisor (here a loop of the test, as systemd's Restart=always) that
// starts the server again.
func TestRollingRestartSQLExecutor(t *testing.T) {
	env := testenv.Shared(t)
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	r := newRoll(t, env, "        executor: sql\n")
	var mu sync.Mutex
	started := map[string]int{}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			for _, c := range env.ClickHouse {
				if !c.Running() {
					if err := c.Start(context.Background()); err != nil {
						t.Errorf("supervisor: start %s: %v", c.Name, err)
						continue
					}
					mu.Lock()
					started[c.Name]++
					mu.Unlock()
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	plan := r.mustPlan(t, nil)
	if !strings.Contains(plan.Method, "SYSTEM SHUTDOWN") || !slices.Contains(plan.Steps[2].SQL, "SYSTEM SHUTDOWN") {
		t.Fatalf("plan %s %v", plan.Method, plan.Steps[2])
	}
	exec := newExecution(t, r.st, plan, "")
	out, err := NewRunner(r.st, r.reg, RunnerOptions{}).Run(ctx, exec, nil)
	if err != nil || out.State != ExecSucceeded {
		t.Fatalf("%s %v: %s %v", out.State, err, out.Error, stepStates(out))
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range env.ClickHouse {
		if started[c.Name] != 1 {
			t.Errorf("%s started again %d times by the supervisor", c.Name, started[c.Name])
		}
	}
	for _, s := range out.Steps {
		t.Logf("  %s %s: %s", s.Step.ID, s.State, s.Result.Output)
	}
}

// One roll of both real replicas per iteration: its duration, and the
// longest moment the shard had fewer than all its replicas answering
// (sampled every 0.2 s):
//
//	go test ./actions/ -run '^$' -bench RollingRestart -benchtime 1x
func BenchmarkRollingRestart(b *testing.B) {
	env := testenv.Shared(b)
	r := newRoll(b, env, "")
	var total, degraded time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := env.WaitHealthy(b.Context()); err != nil {
			b.Fatal(err)
		}
		plan := r.mustPlan(b, nil)
		data, _ := json.Marshal(plan)
		id, _, err := r.st.CreateExecution(b.Context(), store.ExecutionRecord{Cluster: plan.Cluster, Kind: plan.Kind, Plan: data, PlanHash: plan.Hash()})
		if err != nil {
			b.Fatal(err)
		}
		w := watch(env)
		b.StartTimer()
		t0 := time.Now()
		out, err := NewRunner(r.st, r.reg, RunnerOptions{}).Run(b.Context(), Execution{ID: id, Plan: plan}, nil)
		took := time.Since(t0)
		b.StopTimer()
		time.Sleep(time.Second)
		samples := w.Stop()
		if err != nil || out.State != ExecSucceeded {
			b.Fatalf("%s %v: %s", out.State, err, out.Error)
		}
		longest, _ := analyse(b, samples, []string{env.ClickHouse[0].Name, env.ClickHouse[1].Name})
		total += took
		degraded = max(degraded, longest)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/roll")
	b.ReportMetric(degraded.Seconds(), "s_one_replica_max")
}
