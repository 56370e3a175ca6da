package main

import (
	"bytes"
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

// The whole flow through the real binary on the real replicas: `chmedic
// request --action rolling_restart` by one user, `chmedic approve --wait`
// by a second; both servers restarted one at a time (their start times
// change one after the other, and a watcher sampling every 0.2 s never
// sees both down); the audit shows each step. A request while the
// coordination latency is above the stress threshold exits 1 with the
// figures.
func TestRollingRestartThroughTheBinary(t *testing.T) {
	env := testenv.Shared(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is needed by the restart command")
	}
	ctx := t.Context()
	if err := env.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	rs, err := env.StartRestarter()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	cmdJSON, _ := json.Marshal(rs.Command())
	dir := t.TempDir()
	write := func(name, maxLatency string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(fmt.Sprintf(`store: {path: %s/chmedic.db}
clusters:
  - name: test
    clickhouse:
      user: %s
      password_env: CHMEDIC_TEST_PROBE_PASSWORD
      nodes:
        - {name: %s, address: '%s', shard: 1}
        - {name: %s, address: '%s', shard: 1}
    keeper:
      nodes: [{name: zk-1, address: '%s'}]
    actions:
      clickhouse: {user: %s, password_env: CHMEDIC_TEST_ACTIONS_PASSWORD}
      rolling_restart:
        command: %s
        poll_interval: 200ms
        max_keeper_latency: %s
        timeouts: {before: 20s, up: 60s, tables: 30s, catch_up: 30s}
approvals:
  policies:
    rolling_restart:
      requesters: [U0BOB]
      approvers: [U0ALICE]
`, dir, env.ProbeUser, env.ClickHouse[0].Name, env.ClickHouse[0].Addr(), env.ClickHouse[1].Name, env.ClickHouse[1].Addr(),
			env.ZooKeeper.Addr, env.AdminUser, cmdJSON, maxLatency)), 0o600)
		return p
	}
	cfg := write("chmedic.yaml", "2s")
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "CHMEDIC_TEST_ACTIONS_PASSWORD="+env.AdminPassword, "CHMEDIC_TEST_PROBE_PASSWORD="+env.ProbePassword)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}

	// Refused at plan time: any latency is above a 1µs stress threshold.
	code, out, errOut := run("request", "--config", write("strict.yaml", "1us"), "--cluster", "test", "--action", "rolling_restart", "--as", "U0BOB")
	if code != 1 || !strings.Contains(errOut, "coordination latency is ") || !strings.Contains(errOut, "above the stress threshold 1µs") {
		t.Fatalf("strict request: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("refused: %s", strings.TrimSpace(errOut))

	code, out, errOut = run("request", "--config", cfg, "--cluster", "test", "--action", "rolling_restart", "--param", "alert_node="+env.ClickHouse[0].Name, "--as", "U0BOB")
	if code != 0 {
		t.Fatalf("request: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("request:\n%s", out)
	a, b := env.ClickHouse[0].Name, env.ClickHouse[1].Name
	for _, w := range []string{"pending", b + " → " + a, "estimated 1m0s", "coordination latency", b + "/restart", a + "/after"} {
		if !strings.Contains(out, w) {
			t.Errorf("request output lacks %q", w)
		}
	}
	id := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "request ") {
			id = strings.TrimSuffix(strings.Fields(l)[1], ":")
			break
		}
	}

	before := map[string]int64{}
	for _, c := range env.ClickHouse {
		v, err := env.StartTime(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		before[c.Name] = v
	}
	w := env.WatchStartTimes(200 * time.Millisecond)
	t0 := time.Now()
	code, out, errOut = run("approve", "--config", cfg, id, "--as", "U0ALICE", "--wait")
	took := time.Since(t0)
	time.Sleep(time.Second)
	samples := w.Stop()
	if code != 0 || !strings.Contains(out, "request "+id+": succeeded") {
		t.Fatalf("approve: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("approve --wait (%s):\n%s", took.Round(time.Millisecond), out)

	// The watcher: never both down; the start times changed b then a.
	changedAt := map[string]time.Time{}
	var degradedSince time.Time
	var longest time.Duration
	for _, s := range samples {
		if len(s.Down) == 2 {
			t.Errorf("at %s both replicas were down", s.At.Format("15:04:05.000"))
		}
		if len(s.Start) < 2 && degradedSince.IsZero() {
			degradedSince = s.At
		} else if len(s.Start) == 2 && !degradedSince.IsZero() {
			longest = max(longest, s.At.Sub(degradedSince))
			degradedSince = time.Time{}
		}
		for n, v := range s.Start {
			if _, ok := changedAt[n]; !ok && v >= before[n]+2 {
				changedAt[n] = s.At
			}
		}
	}
	if changedAt[a].IsZero() || changedAt[b].IsZero() || !changedAt[b].Before(changedAt[a]) {
		t.Errorf("start times changed at %v, want %s then %s", changedAt, b, a)
	}
	t.Logf("through the binary: the roll took %s; the shard had one replica answering for at most %s (%d samples at 0.2 s)", took.Round(time.Millisecond), longest.Round(time.Millisecond), len(samples))
	for _, n := range []string{a, b} {
		if rs.Restarts(n) != 1 {
			t.Errorf("%s restarted %d times", n, rs.Restarts(n))
		}
	}

	code, out, _ = run("audit", "--config", cfg)
	if code != 0 {
		t.Fatalf("audit: exit %d", code)
	}
	for _, step := range []string{"preflight", b + "/before", b + "/restart", b + "/after", a + "/before", a + "/restart", a + "/after"} {
		if !strings.Contains(out, `outcome="done" detail="`+step+": ") {
			t.Errorf("audit lacks step %s:\n%s", step, out)
		}
	}
	for _, wnt := range []string{"requested actor=U0BOB via=cli request=" + id, "vote_approve actor=U0ALICE via=cli", `outcome="succeeded"`} {
		if !strings.Contains(out, wnt) {
			t.Errorf("audit lacks %q:\n%s", wnt, out)
		}
	}
}
