package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/testenv"
)

// These tests drive the real chmedic binary against the real servers of
// internal/testenv (ZooKeeper, two ClickHouse replicas, Alertmanager) and
// the Slack fake.

var binary string

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(withBinary(m)))
}

// withBinary builds the binary once for the package's tests.
func withBinary(m *testing.M) *testing.M {
	dir, err := os.MkdirTemp("", "chmedic-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "chmedic")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building chmedic: %v\n%s", err, out)
		os.Exit(1)
	}
	return m
}

const (
	webhookToken = "am-token-123"
	slackChannel = "C0CHMEDIC1"
)

type chmedic struct {
	t       *testing.T
	dir     string
	cfgPath string
	addr    string
	cmd     *exec.Cmd
	logs    *syncBuffer
	exited  chan struct{}
}

// syncBuffer is a bytes.Buffer safe for the process's writes and the test's reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// writeConfig writes a config for the test environment and the Slack fake.
func writeConfig(t *testing.T, dir string, env *testenv.Env, slackURL string, extra string) string {
	t.Helper()
	var nodes strings.Builder
	for _, c := range env.ClickHouse {
		fmt.Fprintf(&nodes, "        - {name: %s, address: %q, replica: %s}\n", c.Name, c.Addr(), c.Replica)
	}
	cfg := fmt.Sprintf(`listen_address: 127.0.0.1:9135
shutdown_timeout: 5s
log: {level: debug, format: json}
store: {path: chmedic.db}
webhook:
  dedup_window: 5m
  auth: {bearer_token_env: CHMEDIC_TEST_WEBHOOK_TOKEN}
diagnosis:
  probe_timeout: 2s
  budget: 5s
  cache_ttl: 2s
  # Loopback latency on a loaded 2-core CI machine reaches ~150 ms; the
  # tests that mean to show saturation stop ZooKeeper outright.
  thresholds: {keeper_latency_warn: 500ms, keeper_latency_crit: 2s}
clusters:
  - name: test
    match: ['cluster="chmedic_test"']
    clickhouse:
      user: %s
      password_env: CHMEDIC_TEST_CH_PASSWORD
      nodes:
%s    keeper:
      nodes:
        - {name: zk-1, address: %q}
slack:
  bot_token_env: CHMEDIC_TEST_SLACK_TOKEN
  channel: %s
  api_url: %s
  storm_threshold: 50
%s`, env.ProbeUser, nodes.String(), env.ZooKeeper.Addr, slackChannel, slackURL, extra)
	path := filepath.Join(dir, "chmedic.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startChmedic(t *testing.T, dir, cfgPath string, env *testenv.Env) *chmedic {
	t.Helper()
	c := &chmedic{t: t, dir: dir, cfgPath: cfgPath, addr: freeAddr(t), logs: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(binary, "serve", "--config", cfgPath, "--web.listen-address", c.addr)
	c.cmd.Env = append(os.Environ(),
		"CHMEDIC_TEST_WEBHOOK_TOKEN="+webhookToken,
		"CHMEDIC_TEST_CH_PASSWORD="+env.ProbePassword,
		"CHMEDIC_TEST_SLACK_TOKEN="+slackfake.DefaultToken)
	c.cmd.Stdout = c.logs
	c.cmd.Stderr = c.logs
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.exited) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + c.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-c.exited:
			t.Fatalf("chmedic exited at start: %v\n%s", c.cmd.ProcessState, c.logs)
		default:
		}
		if time.Now().After(deadline) {
			c.kill()
			t.Fatalf("chmedic did not become ready: %v\n%s", err, c.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("chmedic log:\n%s", c.logs)
		}
	})
	return c
}

func (c *chmedic) url(path string) string { return "http://" + c.addr + path }

// stop sends SIGTERM and waits for a graceful exit.
func (c *chmedic) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		<-c.exited
	}
}

// kill is a crash: SIGKILL, no shutdown.
func (c *chmedic) kill() {
	select {
	case <-c.exited:
		return
	default:
	}
	c.cmd.Process.Kill()
	<-c.exited
}

func (c *chmedic) post(t *testing.T, body []byte, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.url("/webhook"), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the sum of a metric's samples whose label set contains sel.
func (c *chmedic) metric(t *testing.T, name, sel string) float64 {
	t.Helper()
	resp, err := http.Get(c.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) || (sel != "" && !strings.Contains(line, sel)) {
			continue
		}
		rest := strings.TrimPrefix(line, name)
		if rest != "" && rest[0] != '{' && rest[0] != ' ' {
			continue
		}
		var v float64
		fields := strings.Fields(line)
		fmt.Sscan(fields[len(fields)-1], &v)
		sum += v
	}
	return sum
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func alert(name string, extra map[string]string) testenv.PostableAlert {
	labels := map[string]string{"alertname": name, "cluster": "chmedic_test", "severity": "critical"}
	for k, v := range extra {
		labels[k] = v
	}
	return testenv.PostableAlert{
		Labels:      labels,
		Annotations: map[string]string{"summary": name + " on the test cluster", "runbook_url": "https://runbooks.example.com/" + name},
		StartsAt:    time.Now().Add(-time.Minute),
	}
}

// e2e is one end-to-end scenario: the shared servers, a Slack fake, a
// running chmedic with its own store, and Alertmanager pointed at it.
type e2e struct {
	env *testenv.Env
	slk *slackfake.Server
	dir string
	cfg string
	ch  *chmedic
	ctx context.Context
}

func newE2E(t *testing.T, timeout time.Duration) *e2e {
	t.Helper()
	env := testenv.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	e := &e2e{env: env, slk: slackfake.New(t, slackfake.Options{}), dir: t.TempDir(), ctx: ctx}
	e.cfg = writeConfig(t, e.dir, env, e.slk.URL(), "")
	e.restart(t)
	return e
}

// restart starts (another) chmedic on the same store and points
// Alertmanager at it.
func (e *e2e) restart(t *testing.T) {
	t.Helper()
	e.ch = startChmedic(t, e.dir, e.cfg, e.env)
	if err := e.env.Alertmanager.SetWebhook(e.ctx, e.ch.url("/webhook"), webhookToken); err != nil {
		t.Fatal(err)
	}
}

// TestAlertmanagerToChmedic: a real Alertmanager delivers a webhook to the
// running binary, which stores it, processes it and posts one message;
// duplicates are collapsed; a bad token is refused.
func TestAlertmanagerToChmedic(t *testing.T) {
	e := newE2E(t, 2*time.Minute)
	env, slk, ch, ctx := e.env, e.slk, e.ch, e.ctx
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{alert("ClickHouseReadonlyReplica", map[string]string{"e2e": "accept"})}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a processed notification", 30*time.Second, func() bool {
		return ch.metric(t, "chmedic_notifications_processed_total", `result="done"`) >= 1
	})
	waitUntil(t, "the Slack message", 30*time.Second, func() bool { return len(slk.Messages(slackChannel)) >= 1 })
	msg := slk.Messages(slackChannel)[0]
	for _, want := range []string{"ClickHouseReadonlyReplica", "Live findings", "keeper-readonly-replicas"} {
		if !strings.Contains(string(msg.Blocks), want) {
			t.Errorf("posted blocks lack %q:\n%s", want, msg.Blocks)
		}
	}

	// The same payload twice: one event.
	payload := []byte(`{"version":"4","groupKey":"{}:{alertname=\"X\"}","status":"firing","receiver":"chmedic",
		"alerts":[{"status":"firing","labels":{"alertname":"X","cluster":"elsewhere"},"annotations":{},"startsAt":"2026-11-23T03:00:00Z","fingerprint":"0123456789abcdef"}],
		"groupLabels":{"alertname":"X"},"commonLabels":{"alertname":"X","cluster":"elsewhere"},"commonAnnotations":{},"externalURL":"http://am"}`)
	code1, body1 := ch.post(t, payload, webhookToken)
	code2, body2 := ch.post(t, payload, webhookToken)
	if code1 != 200 || !strings.Contains(body1, `"accepted"`) || code2 != 200 || !strings.Contains(body2, `"duplicate"`) {
		t.Fatalf("first %d %s, second %d %s: want accepted then duplicate", code1, body1, code2, body2)
	}
	// A bad token is refused, directly and from the real Alertmanager.
	if code, body := ch.post(t, payload, "wrong"); code != 401 || !strings.Contains(body, "credentials") {
		t.Fatalf("bad token: %d %s", code, body)
	}
	before := ch.metric(t, "chmedic_webhook_rejected_total", `reason="unauthorized"`)
	if err := env.Alertmanager.SetWebhook(ctx, ch.url("/webhook"), "not-the-token"); err != nil {
		t.Fatal(err)
	}
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{alert("ClickHouseReadonlyReplica", map[string]string{"e2e": "refused"})}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "Alertmanager's request to be refused", 30*time.Second, func() bool {
		return ch.metric(t, "chmedic_webhook_rejected_total", `reason="unauthorized"`) > before
	})
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
}

// messagesAbout returns the top-level messages whose text mentions s.
func messagesAbout(slk *slackfake.Server, s string) []slackfake.Message {
	var out []slackfake.Message
	for _, m := range slk.Messages(slackChannel) {
		if m.ThreadTS == "" && strings.Contains(m.Text, s) {
			out = append(out, m)
		}
	}
	return out
}

// TestResolveUpdatesTheSameMessage: the posted message carries live
// findings from the real cluster; the resolve updates it in place and says
// so in its thread.
func TestResolveUpdatesTheSameMessage(t *testing.T) {
	e := newE2E(t, 2*time.Minute)
	env, slk, ctx := e.env, e.slk, e.ctx
	a := alert("ClickHouseReplicasInReadOnly", nil)
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{a}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the firing message", 30*time.Second, func() bool { return len(messagesAbout(slk, "ClickHouseReplicasInReadOnly")) == 1 })
	first := messagesAbout(slk, "ClickHouseReplicasInReadOnly")[0]
	if !strings.HasPrefix(first.Text, "[FIRING]") {
		t.Fatalf("text %q", first.Text)
	}
	// Live findings from the real servers: the checks ran on ch-1 and ch-2.
	for _, want := range []string{"checks on cluster test", "How to confirm", "Mitigation", `"action_id":"chmedic:ddl_freeze`} {
		if !strings.Contains(string(first.Blocks), want) {
			t.Errorf("blocks lack %q", want)
		}
	}
	a.EndsAt = time.Now()
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{a}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the message to be updated as resolved", 30*time.Second, func() bool {
		m, ok := slk.Message(slackChannel, first.TS)
		return ok && strings.HasPrefix(m.Text, "[RESOLVED]")
	})
	if n := len(messagesAbout(slk, "ClickHouseReplicasInReadOnly")); n != 1 {
		t.Fatalf("%d top-level messages for the group, want 1 updated in place", n)
	}
	m, _ := slk.Message(slackChannel, first.TS)
	if strings.Contains(string(m.Blocks), `"type":"actions"`) {
		t.Error("the resolved message still offers actions")
	}
	waitUntil(t, "a resolved note in the thread", 10*time.Second, func() bool {
		for _, r := range slk.Replies(slackChannel, first.TS) {
			if strings.Contains(r.Text, "Resolved at") {
				return true
			}
		}
		return false
	})
}

// TestSlackOutageAndRestartDeliverOnce: Slack answers 429s, then is down;
// chmedic is killed mid-outage and restarted; once Slack is back the message
// is posted exactly once.
func TestSlackOutageAndRestartDeliverOnce(t *testing.T) {
	e := newE2E(t, 3*time.Minute)
	env, slk, ch, ctx := e.env, e.slk, e.ch, e.ctx

	// A 429 storm: every post is rate limited five times over.
	slk.FailNext("chat.postMessage", 5, slackfake.Failure{Status: 429, RetryAfter: time.Second})
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{alert("ClickhouseZookeeperConnectionIssues", nil)}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the rate-limited message", 60*time.Second, func() bool {
		return len(messagesAbout(slk, "ClickhouseZookeeperConnectionIssues")) >= 1
	})
	if ch.metric(t, "chmedic_slack_rate_limited_total", "") < 1 {
		t.Error("no 429 was counted")
	}

	// An outage, and a crash in the middle of it.
	slk.SetOutage(true)
	if err := env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{alert("ClickHouseZooKeeperHardwareExceptions", nil)}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the notification to be processed into the outbox", 30*time.Second, func() bool {
		return ch.metric(t, "chmedic_notifications_processed_total", `result="done"`) >= 2
	})
	waitUntil(t, "a failed Slack call", 30*time.Second, func() bool {
		return ch.metric(t, "chmedic_slack_errors_total", `class="transient"`) >= 1
	})
	ch.kill()
	e.restart(t)                // same store
	time.Sleep(2 * time.Second) // Slack still down after the restart
	slk.SetOutage(false)
	waitUntil(t, "the message after the outage", 60*time.Second, func() bool {
		return len(messagesAbout(slk, "ClickHouseZooKeeperHardwareExceptions")) >= 1
	})
	// Let any duplicate that would come, come.
	time.Sleep(3 * time.Second)
	for _, name := range []string{"ClickhouseZookeeperConnectionIssues", "ClickHouseZooKeeperHardwareExceptions"} {
		if n := len(messagesAbout(slk, name)); n != 1 {
			t.Errorf("%s: %d messages, want exactly 1", name, n)
		}
	}
}

// TestDiagnoseAndRenderAgainstTheRealCluster runs the diagnose and render
// commands of the binary against the real servers.
func TestDiagnoseAndRenderAgainstTheRealCluster(t *testing.T) {
	env := testenv.Shared(t)
	dir := t.TempDir()
	slk := slackfake.New(t, slackfake.Options{})
	cfg := writeConfig(t, dir, env, slk.URL(), "")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "CHMEDIC_TEST_CH_PASSWORD="+env.ProbePassword,
			"CHMEDIC_TEST_SLACK_TOKEN="+slackfake.DefaultToken, "CHMEDIC_TEST_WEBHOOK_TOKEN="+webhookToken)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String()
	}
	var d struct {
		Cluster string `json:"cluster"`
		Verdict string `json:"verdict"`
		Results []struct {
			Probe  string `json:"probe"`
			Node   string `json:"node"`
			Status string `json:"status"`
		} `json:"results"`
	}
	decodeJSON(t, []byte(run("diagnose", "--config", cfg, "--cluster", "test", "--format", "json")), &d)
	seen := map[string]string{}
	for _, r := range d.Results {
		seen[r.Probe+"@"+r.Node] = r.Status
	}
	for _, want := range []string{"clickhouse.ping@ch-1", "clickhouse.ping@ch-2", "clickhouse.replicas@ch-2", "keeper.mntr@zk-1"} {
		if seen[want] != "ok" {
			t.Errorf("%s: %q", want, seen[want])
		}
	}
	if d.Cluster != "test" || d.Verdict == "" {
		t.Errorf("cluster %q verdict %q", d.Cluster, d.Verdict)
	}
	text := run("diagnose", "--config", cfg)
	if !strings.Contains(text, "== All checks ==") || !strings.Contains(text, "keeper.ruok") {
		t.Errorf("text diagnosis:\n%s", text)
	}
	payload := filepath.Join(dir, "alert.json")
	os.WriteFile(payload, []byte(`{"version":"4","groupKey":"k","status":"firing","receiver":"chmedic","alerts":[{"status":"firing","labels":{"alertname":"ZookeeperHighLatency","cluster":"chmedic_test"},"annotations":{},"startsAt":"2026-11-23T03:00:00Z"}],"groupLabels":{"alertname":"ZookeeperHighLatency"},"commonLabels":{"alertname":"ZookeeperHighLatency","cluster":"chmedic_test"},"commonAnnotations":{},"externalURL":"http://am"}`), 0o600)
	blocks := run("render", "--config", cfg, "--alert", payload, "--format", "blocks")
	if !strings.Contains(blocks, "keeper-latency-high") || !strings.Contains(blocks, "checks on cluster test") {
		t.Errorf("rendered blocks:\n%s", blocks)
	}
}
