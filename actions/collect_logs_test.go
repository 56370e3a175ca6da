package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/keeper"
)

var anchor = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// logLines writes a ClickHouse-format log around anchor: one line per
// second from -30m to +30m, each padded to about size bytes, with a stack
// trace line after the line at anchor.
func writeLog(t *testing.T, path string, size int) {
	t.Helper()
	var b strings.Builder
	for s := -1800; s <= 1800; s++ {
		ts := anchor.Add(time.Duration(s) * time.Second)
		fmt.Fprintf(&b, "%s.000123 [ 42 ] {} <Information> test: second %d %s\n", ts.Format("2006.01.02 15:04:05"), s, strings.Repeat("x", max(0, size-70)))
		if s == 0 {
			b.WriteString("  0. stack frame without a timestamp\n")
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, anchor.Add(time.Hour), anchor.Add(time.Hour))
}

func logConfig(t *testing.T, extra string) *config.Config {
	return parseConfig(t, `
clusters:
  - name: lc
    clickhouse:
      nodes: [{name: a, address: 'a.example:9000'}, {name: b, address: 'b.example:9000'}]
    keeper:
      nodes: [{name: zk, address: 'zk.example:2181'}]
    actions:
      collect_logs:
        log_timezone: UTC
        sources: [server_log]
`+extra, nil)
}

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

func TestLineTime(t *testing.T) {
	ref := anchor
	tests := []struct {
		line string
		want time.Time
	}{
		{"2026.12.01 08:00:01.123456 [ 1 ] {} <Information> x", anchor.Add(time.Second)},
		{"2018.12.01 08:00:01.123 [ 1 ] <Error> x", time.Date(2018, 12, 1, 8, 0, 1, 0, time.UTC)},
		{"2026-12-01 08:00:02,345 [myid:1] - INFO  [main:QuorumPeer@1] - x", anchor.Add(2 * time.Second)},
		{"2026-12-01T09:00:03+01:00 host clickhouse-server[1]: x", anchor.Add(3 * time.Second)},
		{"2026-12-01T08:00:04.5Z x", anchor.Add(4 * time.Second)},
		{"Dec  1 08:00:05 host clickhouse-server[1]: x", anchor.Add(5 * time.Second)},
		{"Dec 31 23:59:59 host x", time.Date(2025, 12, 31, 23, 59, 59, 0, time.UTC)}, // read in January: last year
	}
	for _, tt := range tests {
		got, ok := LineTime([]byte(tt.line), time.UTC, ref.AddDate(0, 0, 0))
		if tt.line[:3] == "Dec" && tt.line[4:6] == "31" {
			got, ok = LineTime([]byte(tt.line), time.UTC, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
		}
		if !ok || !got.Equal(tt.want) {
			t.Errorf("%q → %v %v, want %v", tt.line, got, ok, tt.want)
		}
	}
	if _, ok := LineTime([]byte("  at java.lang.Thread.run(Thread.java:750)"), time.UTC, ref); ok {
		t.Error("a stack frame has a timestamp")
	}
}

func TestLogFilterWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.log")
	writeLog(t, path, 80)
	var b strings.Builder
	lf := &LogFilter{Since: anchor.Add(-2 * time.Second), Until: anchor.Add(2 * time.Second), Loc: time.UTC, Redact: &Redactor{}, W: &b, MaxBytes: 1 << 20}
	if err := readOne(path, lf); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "second -2 ") || !strings.Contains(lines[3], "stack frame") || !strings.Contains(lines[5], "second 2 ") {
		t.Fatalf("kept %d lines:\n%s", len(lines), b.String())
	}
	if lf.LinesKept != 6 || lf.LinesRead != 3602 {
		t.Errorf("read %d kept %d", lf.LinesRead, lf.LinesKept)
	}
}

// Per-source and bundle caps cut files and say so in the manifest; the
// bundle stays under its cap.
func TestCollectLogsSizeCaps(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, filepath.Join(dir, "a", "server.log"), 200) // ±10 min: ~240 KB
	writeLog(t, filepath.Join(dir, "b", "server.log"), 200)
	cfg := logConfig(t, fmt.Sprintf(`        path: '%s/{{.Name}}/server.log'
        max_source_bytes: 100KiB
        max_bundle_bytes: 150KiB
`, dir))
	out, _ := runCollect(t, cfg, Deps{DataDir: t.TempDir(), Now: fixedNow(anchor.Add(time.Hour))}, Request{Cluster: "lc", AlertStart: anchor})
	if out.State != ExecSucceeded {
		t.Fatalf("%s: %s", out.State, out.Error)
	}
	bundle := out.Artifacts[0]
	if bundle.Bytes > 150<<10 {
		t.Errorf("bundle is %d bytes, over its 150KiB cap", bundle.Bytes)
	}
	_, files := readBundle(t, bundle.Path)
	m := manifestOf(t, files)
	a, _ := sourceOf(m, "a", "server_log")
	if !a.Truncated || len(a.Files) != 1 || !strings.Contains(a.Files[0].Truncation, "max_source_bytes") || a.Files[0].Bytes > 100<<10 {
		t.Errorf("a = %+v", a)
	}
	if int64(len(files["a/server_log.log"])) != a.Files[0].Bytes {
		t.Errorf("a's file is %d bytes, the manifest says %d", len(files["a/server_log.log"]), a.Files[0].Bytes)
	}
	b, _ := sourceOf(m, "b", "server_log")
	if !b.Truncated || !strings.Contains(b.Files[0].Truncation, "max_bundle_bytes") {
		t.Errorf("b = %+v", b)
	}
	if len(m.Truncated) != 2 {
		t.Errorf("manifest truncated = %v", m.Truncated)
	}
	// The window's start is kept (the cut is at the end).
	if !strings.HasPrefix(string(files["a/server_log.log"]), "2026.12.01 07:50:00") {
		t.Errorf("a starts with %.40q", files["a/server_log.log"])
	}
}

// countingRunner is a CommandRunner that prints a log line of the window
// and counts runs per node; it blocks for node b until its context ends
// when block is set.
type countingRunner struct {
	mu    sync.Mutex
	runs  map[string]int
	block chan struct{}
}

func (c *countingRunner) Run(ctx context.Context, cmd Command) (CommandResult, error) {
	node := cmd.Argv[1]
	c.mu.Lock()
	c.runs[node]++
	block := c.block
	c.mu.Unlock()
	if node == "b" && block != nil {
		close(block)
		<-ctx.Done()
		return CommandResult{Argv: cmd.Argv}, ctx.Err()
	}
	fmt.Fprintf(cmd.Stdout, "%s.1 [ 1 ] <Information> %s: password=hunter2\n", anchor.Format("2006.01.02 15:04:05"), node)
	return CommandResult{Argv: cmd.Argv, Bytes: 10}, nil
}

// A resume does not redo a finished source: a's command ran once, b's
// twice (interrupted, then again), and the bundle holds both.
func TestCollectLogsResumeDoesNotRedoSources(t *testing.T) {
	cfg := logConfig(t, "        command: [logs-of, '{{.Name}}', '{{.Since}}', '{{.Until}}']\n")
	cr := &countingRunner{runs: map[string]int{}, block: make(chan struct{})}
	deps := Deps{DataDir: t.TempDir(), Commands: cr, Now: fixedNow(anchor.Add(time.Hour))}
	reg, err := NewRegistry(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plan, err := reg[CollectLogsKind].Plan(ctx, Request{Cluster: "lc", AlertStart: anchor})
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Steps[0].Command; !slices.Equal(got, []string{"logs-of", "a", "2026-12-01T07:50:00Z", "2026-12-01T08:10:00Z"}) {
		t.Fatalf("planned command = %v", got)
	}
	path := filepath.Join(t.TempDir(), "s.db")
	st := openStore(t, path)
	exec := newExecution(t, st, plan, "req")
	rctx, cancel := context.WithCancel(ctx)
	go func() { <-cr.block; cancel() }()
	out, err := NewRunner(st, reg, RunnerOptions{}).Run(rctx, exec, nil)
	if !errors.Is(err, context.Canceled) || out.State != ExecInterrupted {
		t.Fatalf("first run: %s %v", out.State, err)
	}
	cr.mu.Lock()
	cr.block = nil
	cr.mu.Unlock()
	var progress []string
	out, err = NewRunner(openStore(t, path), reg, RunnerOptions{}).Run(ctx, Execution{ID: exec.ID}, func(p Progress) {
		if p.State != StepRunning {
			progress = append(progress, p.Step.ID+" "+p.State)
		}
	})
	if err != nil || out.State != ExecSucceeded {
		t.Fatalf("resume: %s %v", out.State, err)
	}
	if cr.runs["a"] != 1 || cr.runs["b"] != 2 {
		t.Errorf("runs = %v, want a once, b twice", cr.runs)
	}
	if !slices.Equal(progress, []string{"a/server_log skipped", "b/server_log done", "bundle done"}) {
		t.Errorf("progress = %v", progress)
	}
	_, files := readBundle(t, out.Artifacts[0].Path)
	for _, n := range []string{"a", "b"} {
		got := string(files[n+"/server_log.log"])
		if !strings.Contains(got, n+": password=[REDACTED]") || strings.Contains(got, "hunter2") {
			t.Errorf("%s log = %q", n, got)
		}
	}
	if m := manifestOf(t, files); m.Redactions != 2 {
		t.Errorf("redactions = %d", m.Redactions)
	}
}

func TestCollectLogsPlanRefusals(t *testing.T) {
	ctx := context.Background()
	// SQL sources without actions.clickhouse: refused, naming the key.
	cfg := parseConfig(t, `
clusters:
  - name: c
    clickhouse: {nodes: [{name: a, address: 'a:9000'}]}
    keeper: {nodes: [{name: zk, address: 'zk:2181'}]}
`, nil)
	reg, _ := NewRegistry(cfg, Deps{DataDir: t.TempDir()})
	_, err := reg[CollectLogsKind].Plan(ctx, Request{Cluster: "c"})
	if !IsRefusal(err) || !strings.Contains(err.Error(), "actions.clickhouse.user") {
		t.Fatalf("err = %v", err)
	}
	// Unknown parameters are rejected.
	cfg = logConfig(t, "")
	reg, _ = NewRegistry(cfg, Deps{DataDir: t.TempDir()})
	if _, err := reg[CollectLogsKind].Plan(ctx, Request{Cluster: "lc", Params: map[string]string{"windw": "5m"}}); err == nil {
		t.Fatal("unknown parameter accepted")
	}
	// keeper only, while only server_log is configured: nothing to collect.
	if _, err := reg[CollectLogsKind].Plan(ctx, Request{Cluster: "lc", Params: map[string]string{"sources": "keeper"}}); !IsRefusal(err) {
		t.Fatalf("err = %v", err)
	}
	// A zero startsAt falls back to the reception time, and the plan says so.
	p, err := reg[CollectLogsKind].Plan(ctx, Request{Cluster: "lc", ReceivedAt: anchor, Params: map[string]string{"window": "5m"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(p.Details), "received the alert") || !strings.Contains(string(p.Details), `"since":"2026-12-01T07:55:00Z"`) {
		t.Errorf("details = %s", p.Details)
	}
}

func TestCheckNeeds(t *testing.T) {
	cfg := parseConfig(t, `
clusters:
  - name: ok
    match: ['x="1"']
    clickhouse: {nodes: [{name: a, address: 'a:9000'}]}
    keeper: {nodes: [{name: zk, address: 'zk:2181'}]}
    actions: {clickhouse: {user: act}}
  - name: lacking
    clickhouse: {nodes: [{name: a, address: 'a:9000'}]}
    keeper: {nodes: [{name: zk, address: 'zk:2181'}]}
`, nil)
	err := CheckNeeds(cfg, map[string][]string{CollectLogsKind: {"keeper-down", "generic"}, "rolling_restart": {"x"}})
	if err == nil {
		t.Fatal("no error")
	}
	// rolling_restart needs the actions user too: one error per kind.
	for _, want := range []string{
		":8:5: clusters[1].actions.clickhouse.user: required by action collect_logs, offered by playbook generic, keeper-down",
		":8:5: clusters[1].actions.clickhouse.user: required by action rolling_restart, offered by playbook x",
	} {
		if !strings.Contains(err.Error(), want) || strings.Count(err.Error(), "\n") != 1 {
			t.Errorf("error = %v\nwant it to contain %q", err, want)
		}
	}
	if err := CheckNeeds(cfg, map[string][]string{"no_such_kind": {"x"}}); err != nil {
		t.Errorf("a kind without needs: %v", err)
	}
	// ddl_freeze's needs count once a policy enables it.
	if err := CheckNeeds(cfg, map[string][]string{DDLFreezeKind: {"x"}}); err != nil {
		t.Errorf("ddl_freeze without a policy: %v", err)
	}
	cfg.Approvals.Policies.DDLFreeze = &config.ApprovalPolicy{}
	if err := CheckNeeds(cfg, map[string][]string{DDLFreezeKind: {"keeper-down"}}); err == nil || !strings.Contains(err.Error(), "clusters[0].actions.ddl_freeze.targets: required by action ddl_freeze") {
		t.Errorf("ddl_freeze with a policy and no targets: %v", err)
	}
}

func TestExecRunner(t *testing.T) {
	ctx := context.Background()
	// Arguments are never split or interpreted by a shell.
	argv, err := RenderArgv([]string{"printf", "%s|", "{{.Host}}", "{{.Name}}"}, NodeFields{Host: "h; rm -rf /", Name: "$(id)"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ExecRunner{}.Run(ctx, Command{Argv: argv, Timeout: 5 * time.Second})
	if err != nil || string(res.Output) != "h; rm -rf /|$(id)|" {
		t.Fatalf("output %q, %v", res.Output, err)
	}
	// Output is capped, and the cut recorded.
	res, err = ExecRunner{}.Run(ctx, Command{Argv: []string{"head", "-c", "100000", "/dev/zero"}, MaxOutput: 1000})
	if err != nil || len(res.Output) != 1000 || !res.Truncated || res.Bytes != 100000 {
		t.Fatalf("capped: %d bytes, truncated %v, read %d, %v", len(res.Output), res.Truncated, res.Bytes, err)
	}
	// A timeout kills the command.
	res, err = ExecRunner{}.Run(ctx, Command{Argv: []string{"sleep", "10"}, Timeout: 100 * time.Millisecond})
	if err == nil || !res.TimedOut {
		t.Fatalf("timeout: %+v %v", res, err)
	}
	// A failing command says why, with its stderr.
	_, err = ExecRunner{}.Run(ctx, Command{Argv: []string{"cat", "/nonexistent/x"}})
	if err == nil || !strings.Contains(err.Error(), "No such file") {
		t.Fatalf("failure: %v", err)
	}
	if _, err := RenderArgv([]string{"x", "{{.Nope}}"}, NodeFields{}); err == nil {
		t.Fatal("unknown field rendered")
	}
}

// fakeKeeper answers every four-letter word with text holding a secret.
func fakeKeeper(secret string) *keeper.Client {
	return &keeper.Client{Timeout: time.Second, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, s := net.Pipe()
		go func() {
			defer s.Close()
			buf := make([]byte, 4)
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			switch string(buf) {
			case "mntr":
				fmt.Fprintf(s, "zk_version\t3.8.0\nzk_avg_latency\t0\nzk_outstanding_requests\t0\nzk_server_state\tstandalone\n")
			default:
				fmt.Fprintf(s, "%s output\nsuperDigest=super:%s\nurl=http://u:%s@h/\n", buf, secret, secret)
			}
		}()
		return c, nil
	}}
}

// Known secrets fed through every non-SQL source (the four-letter words,
// the keeper log by command, the server log by path) do not survive; the
// SQL sources are proven on the real servers (TestCollectLogsRealCluster).
func TestCollectLogsRedactsEverySource(t *testing.T) {
	const secret = "Sekr3t-zk"
	dir := t.TempDir()
	line := anchor.Format("2006.01.02 15:04:05")
	os.MkdirAll(filepath.Join(dir, "a"), 0o750)
	os.WriteFile(filepath.Join(dir, "a", "s.log"), []byte(line+".1 [ 1 ] <Debug> executeQuery: CREATE USER x IDENTIFIED WITH sha256_password BY '"+secret+"'\n"+
		line+".2 [ 1 ] <Debug> executeQuery: SELECT * FROM s3('https://b/k', 'AKIA1', '"+secret+"')\n"), 0o600)
	cfg := parseConfig(t, fmt.Sprintf(`
clusters:
  - name: r
    clickhouse: {nodes: [{name: a, address: 'a:9000'}]}
    keeper: {nodes: [{name: zk, address: 'zk:2181'}]}
    actions:
      collect_logs:
        log_timezone: UTC
        sources: [keeper_4lw, server_log, keeper_log]
        path: '%s/{{.Name}}/s.log'
        keeper_command: [zk-logs, '{{.Name}}']
`, dir), nil)
	cr := &secretRunner{secret: secret}
	out, _ := runCollect(t, cfg, Deps{DataDir: t.TempDir(), Keeper: fakeKeeper(secret), Commands: cr, Now: fixedNow(anchor.Add(time.Hour))}, Request{Cluster: "r", AlertStart: anchor})
	if out.State != ExecSucceeded {
		t.Fatalf("%s: %s", out.State, out.Error)
	}
	names, files := readBundle(t, out.Artifacts[0].Path)
	for name, b := range files {
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret:\n%s", name, b)
		}
	}
	m := manifestOf(t, files)
	for _, want := range []struct {
		node, source string
		n            int
	}{{"zk", "keeper_4lw", 10}, {"a", "server_log", 3}, {"zk", "keeper_log", 2}} {
		if s, _ := sourceOf(m, want.node, want.source); s.Status != StatusCollected || s.Redactions != want.n {
			t.Errorf("%s/%s: %s, %d redactions, want %d", want.node, want.source, s.Status, s.Redactions, want.n)
		}
	}
	if m.Redactions != 15 {
		t.Errorf("manifest redactions = %d (files %v)", m.Redactions, names)
	}
}

type secretRunner struct{ secret string }

func (s *secretRunner) Run(ctx context.Context, cmd Command) (CommandResult, error) {
	fmt.Fprintf(cmd.Stdout, "%s,000 [myid:] - WARN  [x] - auth failed for digest admin:%s Authorization: Bearer %s\n", anchor.Format("2006-01-02 15:04:05"), s.secret, s.secret)
	return CommandResult{Argv: cmd.Argv}, nil
}

// Older bundles of the cluster beyond keep_bundles, or older than
// retention, are deleted; other clusters' are not.
func TestCollectLogsRetention(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, filepath.Join(dir, "a", "server.log"), 80)
	data := t.TempDir()
	bdir := BundleDir(data)
	os.MkdirAll(bdir, 0o750)
	now := anchor.Add(time.Hour)
	old := map[string]time.Duration{
		"lc-20261130T080000Z-aaaaaaaa.tar.gz":    2 * time.Hour,
		"lc-20261130T090000Z-bbbbbbbb.tar.gz":    time.Hour,
		"lc-20261101T080000Z-cccccccc.tar.gz":    30 * 24 * time.Hour, // over retention
		"lc-prod-20261101T080000Z-dd.tar.gz":     40 * 24 * time.Hour, // cluster lc-prod's
		"other-20261101T080000Z-eeeeeeee.tar.gz": 40 * 24 * time.Hour,
	}
	for name, age := range old {
		p := filepath.Join(bdir, name)
		os.WriteFile(p, []byte("x"), 0o600)
		os.Chtimes(p, now.Add(-age), now.Add(-age))
	}
	cfg := logConfig(t, fmt.Sprintf("        path: '%s/{{.Name}}/server.log'\n        keep_bundles: 2\n        retention: 168h\n", dir))
	out, _ := runCollect(t, cfg, Deps{DataDir: data, Now: fixedNow(now)}, Request{Cluster: "lc", AlertStart: anchor})
	if out.State != ExecSucceeded {
		t.Fatal(out.Error)
	}
	entries, _ := os.ReadDir(bdir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"lc-20261130T090000Z-bbbbbbbb.tar.gz", "lc-prod-20261101T080000Z-dd.tar.gz", out.Artifacts[0].Name, "other-20261101T080000Z-eeeeeeee.tar.gz"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("bundles left:\n%v\nwant\n%v", names, want)
	}
}

func TestWritePlan(t *testing.T) {
	cfg := logConfig(t, "        command: [ssh, '{{.Host}}', journalctl, --since, '@{{.SinceUnix}}']\n")
	reg, _ := NewRegistry(cfg, Deps{DataDir: t.TempDir(), Now: fixedNow(anchor)})
	p, err := reg[CollectLogsKind].Plan(context.Background(), Request{Cluster: "lc", AlertStart: anchor})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WritePlan(&b, p)
	for _, want := range []string{"collect_logs on lc: Collect logs of 2 ClickHouse and 1 coordination nodes from 2026-12-01 07:50:00 to 08:10:00",
		"1. a/server_log — server log of a via command", "command: ssh a.example journalctl --since @1796111400", "3. bundle", "plan hash: " + p.Hash()} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("plan text lacks %q:\n%s", want, b.String())
		}
	}
}

// A request without an alert (the CLI) gives a stable plan with the around
// parameter: re-planning at approval hashes the same.
func TestCollectLogsAroundParam(t *testing.T) {
	cfg := logConfig(t, "")
	clock := anchor
	reg, _ := NewRegistry(cfg, Deps{DataDir: t.TempDir(), Now: func() time.Time { return clock }})
	req := Request{Cluster: "lc", Params: map[string]string{"around": "2026-11-30T22:00:00+01:00", "window": "1h"}}
	p1, err := reg[CollectLogsKind].Plan(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute)
	p2, _ := reg[CollectLogsKind].Plan(context.Background(), req)
	if p1.Hash() != p2.Hash() {
		t.Error("re-planning an around request changed its hash")
	}
	if !strings.Contains(string(p1.Details), `"since":"2026-11-30T20:00:00Z","until":"2026-11-30T22:00:00Z"`) || !strings.Contains(string(p1.Details), "the around parameter") {
		t.Errorf("details = %s", p1.Details)
	}
	if _, err := reg[CollectLogsKind].Plan(context.Background(), Request{Cluster: "lc", Params: map[string]string{"around": "noon"}}); err == nil {
		t.Error("a bad around accepted")
	}
}
