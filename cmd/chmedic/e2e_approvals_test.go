package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/internal/testenv"
)

// End to end through the real binary, the real cluster and the Slack fake:
// a click on an alert's Collect logs button, the plan in the thread, an
// approval by a second user, the collection on the real servers, the
// bundle in the thread, the audit. With restarts and a crash in between.

const (
	requester = "U0ALICE"
	approver  = "U0BOB"
)

// flow is one approval scenario: a chmedic with actions and a
// collect_logs policy, on its own store.
type flow struct {
	env     *testenv.Env
	slk     *slackfake.Server
	dir     string
	cfg     string
	ch      *chmedic
	actions string // the clusters[].actions block, as written
	socket  bool
}

// flowOptions shape the config.
type flowOptions struct {
	// command is collect_logs' server log command (default: cat the
	// node's real log file).
	command string
	// sources is collect_logs' sources (default: all).
	sources string
	// noServer leaves chmedic stopped (the CLI's break-glass path).
	noServer bool
	// socket receives clicks over Socket Mode instead of HTTP.
	socket bool
}

func actionsBlock(env *testenv.Env, o flowOptions) string {
	cmd := o.command
	if cmd == "" {
		cmd = fmt.Sprintf("[cat, '%s/{{.Name}}/clickhouse-server.log']", env.Dir)
	}
	b := fmt.Sprintf(`    actions:
      clickhouse: {user: %s, password_env: CHMEDIC_TEST_ACTIONS_PASSWORD}
      collect_logs:
        command: %s
        keeper_command: [cat, '%s']
        query_timeout: 5s
`, testenv.DefaultActionsUser, cmd, env.ZooKeeper.LogPath)
	if o.sources != "" {
		b += "        sources: " + o.sources + "\n"
	}
	return b
}

// writeFlowConfig writes the e2e config with the actions block in the
// cluster, a signing secret and the collect_logs policy.
func (f *flow) writeConfig(t *testing.T, o flowOptions) {
	t.Helper()
	transport := "  public_url: https://chmedic.example.com\n  signing_secret_file: signing-secret\n"
	if o.socket {
		transport = "  socket_mode: true\n  app_token_file: app-token\n"
	}
	f.socket = o.socket
	path := writeConfig(t, f.dir, f.env, f.slk.URL(), transport+`approvals:
  policies:
    collect_logs:
      requesters: [`+requester+`, `+approver+`]
      approvers: [`+requester+`, `+approver+`]
`)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keeper := fmt.Sprintf("    keeper:\n      nodes:\n        - {name: zk-1, address: %q}\n", f.env.ZooKeeper.Addr)
	if !bytes.Contains(b, []byte(keeper)) {
		t.Fatalf("config has no keeper block %q:\n%s", keeper, b)
	}
	f.actions = actionsBlock(f.env, o)
	b = bytes.Replace(b, []byte(keeper), []byte(keeper+f.actions), 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f.cfg = path
}

func newFlow(t *testing.T, o flowOptions) *flow {
	t.Helper()
	env := testenv.Shared(t)
	_, pw, err := env.ActionsUser(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// For the binary (startChmedic passes the environment on) and for
	// the commands run in this process (run()).
	t.Setenv("CHMEDIC_TEST_ACTIONS_PASSWORD", pw)
	t.Setenv("CHMEDIC_TEST_CH_PASSWORD", env.ProbePassword)
	t.Setenv("CHMEDIC_TEST_SLACK_TOKEN", slackfake.DefaultToken)
	t.Setenv("CHMEDIC_TEST_WEBHOOK_TOKEN", webhookToken)
	f := &flow{env: env, slk: slackfake.New(t, slackfake.Options{}), dir: t.TempDir()}
	if err := os.WriteFile(filepath.Join(f.dir, "signing-secret"), []byte(e2eSigningSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "app-token"), []byte(slackfake.DefaultAppToken), 0o600); err != nil {
		t.Fatal(err)
	}
	f.writeConfig(t, o)
	if !o.noServer {
		f.ch = startChmedic(t, f.dir, f.cfg, env)
	}
	return f
}

// restart stops chmedic gracefully and starts it again on the same store.
func (f *flow) restart(t *testing.T) {
	t.Helper()
	f.ch.stop()
	f.ch = startChmedic(t, f.dir, f.cfg, f.env)
}

// alert posts a firing alert (generic playbook: a Collect logs button)
// and returns its message once posted.
func (f *flow) alert(t *testing.T, name string) slackfake.Message {
	t.Helper()
	start := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	payload := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"%s\"}","status":"firing","receiver":"chmedic",
		"alerts":[{"status":"firing","labels":{"alertname":"%s","cluster":"chmedic_test"},"annotations":{"summary":"approval flow"},"startsAt":"%s","fingerprint":"00000000000e2e01"}],
		"groupLabels":{"alertname":"%s"},"commonLabels":{"alertname":"%s","cluster":"chmedic_test"},"commonAnnotations":{},"externalURL":"http://am"}`,
		name, name, start, name, name)
	if code, body := f.ch.post(t, []byte(payload), webhookToken); code != 200 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	waitUntil(t, "the alert's message", 30*time.Second, func() bool { return len(messagesAbout(f.slk, name)) == 1 })
	return messagesAbout(f.slk, name)[0]
}

// click sends Slack's signed click on the button actionID of the message
// ts, as user, and returns the private reply it got.
func (f *flow) click(t *testing.T, ts, actionID, user string) string {
	t.Helper()
	return f.clickAs(t, slackfake.ClickSpec{Channel: slackChannel, TS: ts, ActionID: actionID, UserID: user})
}

// doubleClick is a user's two clicks on one button in quick succession:
// both payloads are made from the message as it is now (Slack delivers the
// second even when the first has already changed the message, as a real
// double click does); the replies to both.
func (f *flow) doubleClick(t *testing.T, ts, actionID, user string) (string, string) {
	t.Helper()
	first, second := f.prepare(t, ts, actionID, user), f.prepare(t, ts, actionID, user)
	return f.send(t, first, user), f.send(t, second, user)
}

// prepare makes a click's payload from the message as it is now, to be sent
// later with send.
func (f *flow) prepare(t *testing.T, ts, actionID, user string) []byte {
	t.Helper()
	p, err := f.slk.BlockActions(slackfake.ClickSpec{Channel: slackChannel, TS: ts, ActionID: actionID, UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// send delivers a prepared click (signed now, or over Socket Mode) and
// returns the private reply to user.
func (f *flow) send(t *testing.T, payload []byte, user string) string {
	t.Helper()
	before := len(f.slk.Ephemerals())
	if f.socket {
		waitUntil(t, "the Socket Mode connection", 15*time.Second, func() bool { return f.slk.SocketConnections() == 1 })
		if _, err := f.slk.SendEnvelope("interactive", json.RawMessage(payload)); err != nil {
			t.Fatal(err)
		}
	} else {
		req, err := slackfake.InteractionRequest(f.ch.url("/slack/interactions"), e2eSigningSecret, payload)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(req.Body)
		if code, text := f.ch.sendRaw(t, "/slack/interactions", req.Header, body); code != 200 {
			t.Fatalf("click by %s: %d %s", user, code, text)
		}
	}
	waitUntil(t, "the private reply to "+user, 10*time.Second, func() bool { return len(f.slk.Ephemerals()) > before })
	return f.slk.Ephemerals()[before].Text
}

func (f *flow) clickAs(t *testing.T, spec slackfake.ClickSpec) string {
	t.Helper()
	before := len(f.slk.Ephemerals())
	if f.socket {
		waitUntil(t, "the Socket Mode connection", 15*time.Second, func() bool { return f.slk.SocketConnections() == 1 })
		id, err := f.slk.SendClick(spec)
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the envelope's ack", 10*time.Second, func() bool { a, ok := f.slk.AckFor(id); return ok && a.Known })
	} else {
		req, err := f.slk.ClickRequest(f.ch.url("/slack/interactions"), e2eSigningSecret, spec)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(req.Body)
		if code, text := f.ch.sendRaw(t, "/slack/interactions", req.Header, body); code != 200 {
			t.Fatalf("click %s by %s: %d %s", spec.ActionID, spec.UserID, code, text)
		}
	}
	waitUntil(t, "the private reply to "+spec.UserID, 10*time.Second, func() bool { return len(f.slk.Ephemerals()) > before })
	e := f.slk.Ephemerals()[before]
	if e.User != spec.UserID {
		t.Fatalf("the reply went to %s, not %s: %q", e.User, spec.UserID, e.Text)
	}
	return e.Text
}

var collectButtonRE = regexp.MustCompile(`"action_id":"(chmedic:collect_logs:[0-9]+)"`)

func collectButton(t *testing.T, m slackfake.Message) string {
	t.Helper()
	mm := collectButtonRE.FindSubmatch(m.Blocks)
	if mm == nil {
		t.Fatalf("no Collect logs button on the message:\n%s", m.Blocks)
	}
	return string(mm[1])
}

// requestMessage waits for the thread's reply that holds a button
// (the request's Approve, Resume, …) and returns it.
func (f *flow) requestMessage(t *testing.T, thread, button string) slackfake.Message {
	t.Helper()
	var found slackfake.Message
	waitUntil(t, "a reply with "+button+" in the alert's thread", 60*time.Second, func() bool {
		for _, r := range f.slk.Replies(slackChannel, thread) {
			if bytes.Contains(r.Blocks, []byte(`"action_id":"`+button+`"`)) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// message returns the channel's message with ts as it is now.
func (f *flow) message(t *testing.T, ts string) slackfake.Message {
	t.Helper()
	m, ok := f.slk.Message(slackChannel, ts)
	if !ok {
		t.Fatalf("no message %s", ts)
	}
	return m
}

// requestState lists the store's requests (through the CLI, in this
// process).
func (f *flow) requestState(t *testing.T) string {
	t.Helper()
	code, out, errOut := runCLI(t, "requests", "--config", f.cfg)
	if code != 0 {
		t.Fatalf("requests: exit %d %s", code, errOut)
	}
	return out
}

func (f *flow) openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(f.dir, "chmedic.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// onlyRequest returns the one request of the store.
func onlyRequest(t *testing.T, st *store.Store) store.ApprovalRequest {
	t.Helper()
	rs, err := st.ApprovalRequests(context.Background(), nil, "", 10)
	if err != nil || len(rs) != 1 {
		t.Fatalf("%d requests, %v", len(rs), err)
	}
	return rs[0]
}

// bundleEntries lists a tar.gz's entries.
func bundleEntries(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the uploaded file is no gzip: %v", err)
	}
	tr := tar.NewReader(gz)
	out := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		out[h.Name] = c
	}
}

// TestApprovalFlowEndToEnd: click → plan in the alert's thread → approval
// by a second user → collect_logs on the real cluster → the bundle in the
// right thread, the result per step on the request's message, the state on
// the alert message → the audit shows every step with the plan hash.
func TestApprovalFlowEndToEnd(t *testing.T) {
	f := newFlow(t, flowOptions{})
	// An unrelated thread first, so that "the right thread" means
	// something.
	other := f.alert(t, "ChmedicFlowOther")
	alert := f.alert(t, "ChmedicFlowE2E")

	// A click from another workspace, and one from a user the policy does
	// not name: refused, nothing requested.
	if txt := f.clickAs(t, slackfake.ClickSpec{Channel: slackChannel, TS: alert.TS, ActionID: collectButton(t, alert), UserID: requester, TeamID: "T0OTHER"}); !strings.Contains(txt, "another Slack workspace") {
		t.Errorf("other team: %q", txt)
	}
	if txt := f.click(t, alert.TS, collectButton(t, alert), "U0MALLORY"); !strings.Contains(txt, "not allowed to request collect_logs") {
		t.Errorf("stranger: %q", txt)
	}
	if out := f.requestState(t); strings.Contains(out, "collect_logs") {
		t.Fatalf("a refused click made a request:\n%s", out)
	}

	txt := f.click(t, alert.TS, collectButton(t, alert), requester)
	if !strings.Contains(txt, "computing the plan") {
		t.Fatalf("request click: %q", txt)
	}
	req := f.requestMessage(t, alert.TS, "chmedic:approve")
	// A second click on the button (by anyone) requests nothing more.
	if txt := f.click(t, alert.TS, collectButton(t, alert), approver); !strings.Contains(txt, "already requested") {
		t.Errorf("second click on Collect logs: %q", txt)
	}
	for _, want := range []string{"collect_logs", "ch-1", "ch-2", "zk-1", "server log of ch-2", "query_log of ch-2", "upload the bundle into the alert's thread"} {
		if !strings.Contains(string(req.Blocks), want) {
			t.Errorf("the plan posted lacks %q:\n%s", want, req.Blocks)
		}
	}
	if len(f.slk.Replies(slackChannel, other.TS)) != 0 {
		t.Errorf("the other alert's thread got replies: %+v", f.slk.Replies(slackChannel, other.TS))
	}

	// The requester cannot approve; a stranger cannot; the approver's
	// double click is one vote.
	if txt := f.click(t, req.TS, "chmedic:approve", requester); !strings.Contains(txt, "another approver must approve") {
		t.Errorf("self-approval: %q", txt)
	}
	if txt := f.click(t, req.TS, "chmedic:approve", "U0MALLORY"); !strings.Contains(txt, "not an approver") {
		t.Errorf("stranger's approval: %q", txt)
	}
	first, second := f.doubleClick(t, req.TS, "chmedic:approve", approver)
	if !strings.Contains(first, "Approved (1 of 1)") {
		t.Errorf("approval: %q", first)
	}
	if !strings.Contains(second, "already voted") {
		t.Errorf("double click: %q", second)
	}

	// The bundle arrives in the alert's thread.
	waitUntil(t, "the bundle upload", 90*time.Second, func() bool { return len(f.slk.Files()) >= 1 })
	files := f.slk.Files()
	if len(files) != 1 {
		t.Fatalf("%d files uploaded, want 1", len(files))
	}
	file := files[0]
	if file.Channel != slackChannel || file.ThreadTS != alert.TS {
		t.Errorf("bundle shared to %s thread %q, want %s thread %s", file.Channel, file.ThreadTS, slackChannel, alert.TS)
	}
	for _, w := range []string{"Logs of test from ", "sources collected", "not available", "secrets redacted"} {
		if !strings.Contains(file.InitialComment, w) {
			t.Errorf("the upload's message lacks %q: %q", w, file.InitialComment)
		}
	}
	entries := bundleEntries(t, file.Content)
	if l := entries["ch-1/server_log.log"]; !bytes.Contains(l, []byte("<Information>")) && !bytes.Contains(l, []byte("<Debug>")) {
		t.Errorf("ch-1's server log in the bundle holds no ClickHouse log line (%d bytes)", len(l))
	}
	for _, want := range []string{"manifest.json", "ch-1/server_log.log", "ch-2/replicas.jsonl", "zk-1/mntr.txt"} {
		if _, ok := entries[want]; !ok {
			names := []string{}
			for n := range entries {
				names = append(names, n)
			}
			t.Errorf("bundle lacks %s: %v", want, names)
		}
	}

	// The request's message shows the result per step, the alert message
	// the request's state.
	waitUntil(t, "the request's message to show the result", 30*time.Second, func() bool {
		return strings.Contains(string(f.message(t, req.TS).Blocks), "succeeded")
	})
	final := string(f.message(t, req.TS).Blocks)
	for _, want := range []string{"ch-1/query_log: collected", "ch-2/server_log: collected", "uploaded to the thread"} {
		if !strings.Contains(final, want) {
			t.Errorf("the request's final message lacks %q:\n%s", want, final)
		}
	}
	if strings.Contains(final, `"chmedic:approve"`) {
		t.Error("the final request message still offers Approve")
	}
	waitUntil(t, "the alert message to show the request's state", 30*time.Second, func() bool {
		b := string(f.message(t, alert.TS).Blocks)
		return strings.Contains(b, "collect_logs") && strings.Contains(b, "succeeded")
	})

	// The audit, through the command.
	st := f.openStore(t)
	r := onlyRequest(t, st)
	if r.State != store.ReqSucceeded || r.RequestedBy != requester || len(r.PlanHash) != 64 {
		t.Fatalf("request %+v", r)
	}
	code, out, errOut := runCLI(t, "audit", "--config", f.cfg)
	if code != 0 {
		t.Fatalf("audit: exit %d %s", code, errOut)
	}
	for _, want := range []string{
		"requested actor=" + requester + " via=slack request=" + r.ID,
		"planned actor=chmedic request=" + r.ID,
		"vote_approve actor=" + approver + " via=slack request=" + r.ID,
		"approved actor=chmedic request=" + r.ID,
		"execution_started actor=server ",
		"execution_finished actor=server ",
		"plan=" + r.PlanHash,
		`outcome="succeeded"`,
		"refused actor=U0MALLORY",
		`outcome="self-approval"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("audit lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "vote_approve actor="+approver); n != 1 {
		t.Errorf("%d approve votes by %s in the audit, want 1 (double click)", n, approver)
	}
	for _, ev := range []string{"planned", "approved", "execution_started", "execution_finished"} {
		if !auditHasHash(out, ev, r.PlanHash) {
			t.Errorf("audit event %s lacks the plan hash %s:\n%s", ev, r.PlanHash, out)
		}
	}
}

// auditHasHash reports whether a line of the text audit for event carries
// the plan hash (in full or abbreviated).
func auditHasHash(out, event, hash string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " "+event+" ") || strings.Contains(line, event+" actor=") {
			if strings.Contains(line, "plan="+hash) {
				return true
			}
		}
	}
	return false
}

// waitShowing is waitUntil that shows what it last saw when it times out.
func waitShowing(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen:\n%s", timeout, what, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitRequest waits until the store's only request is in state.
func waitRequest(t *testing.T, st *store.Store, state string, timeout time.Duration) store.ApprovalRequest {
	t.Helper()
	var r store.ApprovalRequest
	waitUntil(t, "the request to be "+state, timeout, func() bool {
		rs, err := st.ApprovalRequests(context.Background(), nil, "", 10)
		if err != nil || len(rs) == 0 {
			return false
		}
		r = rs[0]
		return r.State == state
	})
	return r
}

// TestApprovalFlowRestartBeforeApproval: a request made before a restart
// is approved after it, and runs.
func TestApprovalFlowRestartBeforeApproval(t *testing.T) {
	f := newFlow(t, flowOptions{})
	alert := f.alert(t, "ChmedicFlowRestart")
	f.click(t, alert.TS, collectButton(t, alert), requester)
	req := f.requestMessage(t, alert.TS, "chmedic:approve")

	f.restart(t)
	if txt := f.click(t, req.TS, "chmedic:approve", approver); !strings.Contains(txt, "Approved (1 of 1)") {
		t.Fatalf("approval after the restart: %q", txt)
	}
	waitUntil(t, "the bundle upload", 90*time.Second, func() bool { return len(f.slk.Files()) >= 1 })
	if fl := f.slk.Files()[0]; fl.Channel != slackChannel || fl.ThreadTS != alert.TS {
		t.Errorf("bundle shared to %s thread %q, want thread %s", fl.Channel, fl.ThreadTS, alert.TS)
	}
	st := f.openStore(t)
	waitRequest(t, st, store.ReqSucceeded, 30*time.Second)
	waitUntil(t, "the request's message to show the result", 30*time.Second, func() bool {
		return strings.Contains(string(f.message(t, req.TS).Blocks), "done: succeeded")
	})
}

// slowCommand is a server log command that, the first time it runs on a
// node, marks that it started and waits for the test's release file, and
// afterwards reads the log at once: the crash lands mid-step
// deterministically, and the resumed step does not wait.
func slowCommand(env *testenv.Env, marks string) string {
	return fmt.Sprintf(`[sh, -c, 'if [ ! -e "$0.started" ]; then touch "$0.started"; i=0; while [ ! -e "%s/release" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; fi; cat "$1"', '%s/{{.Name}}', '%s/{{.Name}}/clickhouse-server.log']`,
		marks, marks, env.Dir)
}

// TestApprovalFlowCrashAndResume: chmedic is killed (SIGKILL) while
// collect_logs runs; at the next start the execution is interrupted,
// reported in its thread with Resume / Abort; Resume finishes it without
// repeating a step recorded done.
func TestApprovalFlowCrashAndResume(t *testing.T) {
	env := testenv.Shared(t)
	marks := t.TempDir()
	f := newFlow(t, flowOptions{command: slowCommand(env, marks)})
	alert := f.alert(t, "ChmedicFlowCrash")
	f.click(t, alert.TS, collectButton(t, alert), requester)
	req := f.requestMessage(t, alert.TS, "chmedic:approve")
	f.click(t, req.TS, "chmedic:approve", approver)

	started := filepath.Join(marks, "ch-1.started")
	waitUntil(t, "ch-1's server log step to start", 60*time.Second, func() bool { _, err := os.Stat(started); return err == nil })
	// While it runs, the request's message shows the progress per step
	// (one message updated in place) and the alert message says running.
	waitUntil(t, "the progress on the request's message", 30*time.Second, func() bool {
		b := string(f.message(t, req.TS).Blocks)
		return strings.Contains(b, "*State:* running") && strings.Contains(b, "ch-1/query_log: collected") && strings.Contains(b, "server log of ch-1 via command, lines of the window on *ch-1* — running")
	})
	waitShowing(t, "the alert message to say running", 30*time.Second, func() (bool, string) {
		b := string(f.message(t, alert.TS).Blocks)
		return strings.Contains(b, "*collect_logs* requested by \\u003c@"+requester+"\\u003e: running"), b
	})
	f.ch.kill()
	// Let the orphaned command end (it is no child of the killed process's
	// group here, and must not outlive the test).
	if err := os.WriteFile(filepath.Join(marks, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	st := f.openStore(t)
	r := onlyRequest(t, st)
	if r.State != store.ReqRunning {
		t.Fatalf("after the crash the request is %s, want running", r.State)
	}
	exec, err := st.ExecutionForRequest(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Steps(context.Background(), exec.ID)
	if err != nil {
		t.Fatal(err)
	}
	doneBefore := map[string]bool{}
	for _, s := range before {
		if s.State == "done" {
			doneBefore[s.StepID] = true
		}
	}
	if len(doneBefore) == 0 || doneBefore["ch-1/server_log"] {
		t.Fatalf("steps before the crash: %+v", before)
	}

	f.ch = startChmedic(t, f.dir, f.cfg, f.env)
	waitRequest(t, st, store.ReqInterrupted, 60*time.Second)
	resume := f.requestMessage(t, alert.TS, "chmedic:resume")
	if !bytes.Contains(resume.Blocks, []byte(`"chmedic:abort"`)) {
		t.Errorf("the interrupted request offers no Abort:\n%s", resume.Blocks)
	}
	waitUntil(t, "the interruption notice in the thread", 30*time.Second, func() bool {
		for _, m := range f.slk.Replies(slackChannel, alert.TS) {
			if strings.Contains(m.Text, "was interrupted") && strings.Contains(m.Text, "Resume") {
				return true
			}
		}
		return false
	})
	if n := len(f.slk.Files()); n != 0 {
		t.Fatalf("%d files uploaded before the resume", n)
	}
	if v := f.ch.metric(t, "chmedic_approval_requests", `state="interrupted"`); v != 1 {
		t.Errorf("chmedic_approval_requests{state=\"interrupted\"} = %v, want 1", v)
	}

	if txt := f.click(t, resume.TS, "chmedic:resume", approver); !strings.Contains(txt, "Resuming") {
		t.Fatalf("resume: %q", txt)
	}
	waitRequest(t, st, store.ReqSucceeded, 90*time.Second)
	waitUntil(t, "the bundle upload", 30*time.Second, func() bool { return len(f.slk.Files()) >= 1 })
	if fl := f.slk.Files()[0]; fl.ThreadTS != alert.TS {
		t.Errorf("bundle in thread %q, want %s", fl.ThreadTS, alert.TS)
	}
	after, err := st.Steps(context.Background(), exec.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range after {
		switch {
		case doneBefore[s.StepID] && s.Attempts != 1:
			t.Errorf("step %s, done before the crash, was attempted %d times", s.StepID, s.Attempts)
		case s.StepID == "ch-1/server_log" && (s.Attempts != 2 || s.State != "done"):
			t.Errorf("the step the crash cut: %+v, want done at the second attempt", s)
		case s.State != "done":
			t.Errorf("step %s is %s", s.StepID, s.State)
		}
	}
	waitUntil(t, "the request's message to show skipped steps", 30*time.Second, func() bool {
		b := string(f.message(t, resume.TS).Blocks)
		return strings.Contains(b, "done: succeeded") && strings.Contains(b, "skipped")
	})
	code, out, _ := runCLI(t, "audit", "--config", f.cfg)
	for _, w := range []string{"execution_interrupted actor=chmedic request=" + r.ID, "resumed actor=" + approver + " via=slack request=" + r.ID, `detail="resumed; steps recorded as done are skipped"`} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("audit lacks %q:\n%s", w, out)
		}
	}
}

// TestApprovalFlowPlanChanged: the config's collect_logs sources change
// between request and approval (across a restart): the re-computed plan's
// hash differs, nothing runs, the thread says what changed and offers a
// fresh request.
func TestApprovalFlowPlanChanged(t *testing.T) {
	f := newFlow(t, flowOptions{})
	alert := f.alert(t, "ChmedicFlowStale")
	f.click(t, alert.TS, collectButton(t, alert), requester)
	req := f.requestMessage(t, alert.TS, "chmedic:approve")

	f.ch.stop()
	f.writeConfig(t, flowOptions{sources: "[query_log, replicas, server_log, keeper_4lw]"})
	f.ch = startChmedic(t, f.dir, f.cfg, f.env)
	f.click(t, req.TS, "chmedic:approve", approver)

	st := f.openStore(t)
	r := waitRequest(t, st, store.ReqStale, 60*time.Second)
	if !strings.Contains(r.Reason, "differs from the approved one") {
		t.Errorf("reason %q", r.Reason)
	}
	var m slackfake.Message
	waitUntil(t, "the request's message to say what changed", 30*time.Second, func() bool {
		m = f.message(t, req.TS)
		return strings.Contains(string(m.Blocks), "What changed")
	})
	for _, w := range []string{"ch-1/text_log", "removed", `"chmedic:collect_logs:0"`, "Request again"} {
		if !strings.Contains(string(m.Blocks), w) {
			t.Errorf("the stale request's message lacks %q:\n%s", w, m.Blocks)
		}
	}
	if _, err := st.ExecutionForRequest(context.Background(), r.ID); err == nil {
		t.Error("a stale request has an execution")
	}
	// What changed here is chmedic's config, not the cluster (collect_logs'
	// plan does not read the cluster): nothing may say the cluster changed.
	waitShowing(t, "the notice in the thread", 30*time.Second, func() (bool, string) {
		var texts []string
		for _, m := range f.slk.Replies(slackChannel, alert.TS) {
			if strings.Contains(m.Text, "did not run") {
				return strings.Contains(m.Text, "differs from the approved one") && strings.Contains(m.Text, "ch-1/text_log"), m.Text
			}
			texts = append(texts, m.Text)
		}
		return false, strings.Join(texts, "\n")
	})
	for _, m := range append(f.slk.Replies(slackChannel, alert.TS), f.message(t, alert.TS)) {
		if strings.Contains(string(m.Blocks)+m.Text, "cluster changed") {
			t.Errorf("message %s says the cluster changed:\n%s", m.TS, m.Text)
		}
	}
	// The fresh request computes the plan anew and posts it.
	if txt := f.click(t, req.TS, "chmedic:collect_logs:0", requester); !strings.Contains(txt, "computing the plan") {
		t.Fatalf("request again: %q", txt)
	}
	waitUntil(t, "a fresh request in the thread", 60*time.Second, func() bool {
		n := 0
		for _, r := range f.slk.Replies(slackChannel, alert.TS) {
			if bytes.Contains(r.Blocks, []byte(`"action_id":"chmedic:approve"`)) {
				n++
			}
		}
		return n == 1 && !bytes.Contains(f.message(t, req.TS).Blocks, []byte(`"chmedic:approve"`))
	})
	if len(f.slk.Files()) != 0 {
		t.Error("something was uploaded")
	}
	code, out, _ := runCLI(t, "audit", "--config", f.cfg)
	if code != 0 || !strings.Contains(out, "refused_plan_changed actor=server ") {
		t.Errorf("audit lacks the refusal:\n%s", out)
	}
}

// TestApprovalFlowCLIBreakGlass: chmedic request, then chmedic approve
// --wait by a second user: with no server running it executes in-process
// and prints the outcome; with one running, the server executes it.
func TestApprovalFlowCLIBreakGlass(t *testing.T) {
	f := newFlow(t, flowOptions{noServer: true})
	code, out, errOut := runCLI(t, "request", "--config", f.cfg, "--cluster", "test", "--action", "collect_logs", "--as", requester, "--format", "json")
	if code != 0 {
		t.Fatalf("request: exit %d\n%s%s", code, out, errOut)
	}
	id := requestID(t, out)
	code, out, errOut = runCLI(t, "approve", "--config", f.cfg, id, "--as", approver, "--wait")
	if code != 0 {
		t.Fatalf("approve: exit %d\n%s%s", code, out, errOut)
	}
	for _, w := range []string{"no chmedic server is running: executing in this process", "request " + id + ": succeeded", "ch-1/server_log ch-1: done: ch-1/server_log: collected", "zk-1/keeper_4lw zk-1: done", "artifact "} {
		if !strings.Contains(out, w) {
			t.Errorf("approve output lacks %q:\n%s", w, out)
		}
	}

	// One action at a time per cluster: while another process holds the
	// cluster's lease, the approved request waits, and runs once it is
	// free.
	code, out, errOut = runCLI(t, "request", "--config", f.cfg, "--cluster", "test", "--action", "collect_logs", "--param", "window=2m", "--as", requester, "--format", "json")
	if code != 0 {
		t.Fatalf("request: exit %d\n%s%s", code, out, errOut)
	}
	busyID := requestID(t, out)
	st := f.openStore(t)
	if _, ok, err := st.AcquireLease(context.Background(), "test", "cli elsewhere:1", "another-execution", time.Minute); !ok || err != nil {
		t.Fatalf("holding the lease: %v %v", ok, err)
	}
	code, out, errOut = runCLI(t, "approve", "--config", f.cfg, busyID, "--as", approver)
	if code != 0 || !strings.Contains(out, "request "+busyID+": approved") || !strings.Contains(out, "waiting: cluster test is busy: cli elsewhere:1 runs another action") {
		t.Fatalf("approve while busy: exit %d\n%s%s", code, out, errOut)
	}
	if err := st.ReleaseLease(context.Background(), "test", "cli elsewhere:1"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "approve", "--config", f.cfg, busyID, "--as", approver, "--wait")
	if code != 0 || !strings.Contains(out, "You already voted") || !strings.Contains(out, "request "+busyID+": succeeded") {
		t.Fatalf("approve once free: exit %d\n%s%s", code, out, errOut)
	}

	f.ch = startChmedic(t, f.dir, f.cfg, f.env)
	code, out, errOut = runCLI(t, "request", "--config", f.cfg, "--cluster", "test", "--action", "collect_logs", "--param", "window=5m", "--as", requester, "--format", "json")
	if code != 0 {
		t.Fatalf("second request: exit %d\n%s%s", code, out, errOut)
	}
	id = requestID(t, out)
	code, out, errOut = runCLI(t, "approve", "--config", f.cfg, id, "--as", approver, "--wait")
	if code != 0 {
		t.Fatalf("approve with a server: exit %d\n%s%s", code, out, errOut)
	}
	for _, w := range []string{"the running server (server ", "executes it within a few seconds", "request " + id + ": succeeded"} {
		if !strings.Contains(out, w) {
			t.Errorf("approve output lacks %q:\n%s", w, out)
		}
	}
	e, err := st.ApprovalExecutionOf(context.Background(), id)
	if err != nil || !strings.HasPrefix(e.Runner, "server ") || e.State != "succeeded" {
		t.Fatalf("execution %+v %v: want run by the server", e, err)
	}
}

// TestApprovalFlowStopDuringExecution: a graceful stop (SIGTERM) while
// collect_logs runs records the execution interrupted and says so in the
// thread; after the restart, Abort ends it: nothing more runs.
func TestApprovalFlowStopDuringExecution(t *testing.T) {
	env := testenv.Shared(t)
	marks := t.TempDir()
	f := newFlow(t, flowOptions{command: slowCommand(env, marks)})
	t.Cleanup(func() { os.WriteFile(filepath.Join(marks, "release"), nil, 0o600) })
	alert := f.alert(t, "ChmedicFlowStop")
	f.click(t, alert.TS, collectButton(t, alert), requester)
	req := f.requestMessage(t, alert.TS, "chmedic:approve")
	f.click(t, req.TS, "chmedic:approve", approver)
	waitUntil(t, "ch-1's server log step to start", 60*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(marks, "ch-1.started"))
		return err == nil
	})
	f.ch.stop()

	st := f.openStore(t)
	r := onlyRequest(t, st)
	if r.State != store.ReqInterrupted {
		t.Fatalf("after a graceful stop the request is %s, want interrupted", r.State)
	}
	f.ch = startChmedic(t, f.dir, f.cfg, f.env)
	resume := f.requestMessage(t, alert.TS, "chmedic:abort")
	waitUntil(t, "the interruption notice in the thread", 30*time.Second, func() bool {
		for _, m := range f.slk.Replies(slackChannel, alert.TS) {
			if strings.Contains(m.Text, "was interrupted") && strings.Contains(m.Text, "Resume") {
				return true
			}
		}
		return false
	})
	// The Resume click is made while the button is there; it reaches
	// chmedic after the abort (as a click on a stale message does).
	lateResume := f.prepare(t, resume.TS, "chmedic:resume", approver)
	if txt := f.click(t, resume.TS, "chmedic:abort", "U0MALLORY"); !strings.Contains(txt, "not an approver") {
		t.Errorf("a stranger's abort: %q", txt)
	}
	if txt := f.click(t, resume.TS, "chmedic:abort", approver); !strings.Contains(txt, "Aborted") {
		t.Fatalf("abort: %q", txt)
	}
	waitRequest(t, st, store.ReqAborted, 30*time.Second)
	if txt := f.send(t, lateResume, approver); !strings.Contains(txt, "Only an interrupted execution can be resumed") {
		t.Errorf("resume after abort: %q", txt)
	}
	e, err := st.ApprovalExecutionOf(context.Background(), r.ID)
	if err != nil || e.State != "aborted" {
		t.Errorf("execution %+v %v, want aborted", e, err)
	}
	waitUntil(t, "the request's message to say aborted", 30*time.Second, func() bool {
		b := string(f.message(t, resume.TS).Blocks)
		return strings.Contains(b, "*State:* aborted") && !strings.Contains(b, `"chmedic:resume"`)
	})
	if len(f.slk.Files()) != 0 {
		t.Error("an aborted collection uploaded a bundle")
	}
}

// TestApprovalFlowOverSocketMode: the same flow with the clicks over
// Socket Mode: request, approval, the bundle in the alert's thread.
func TestApprovalFlowOverSocketMode(t *testing.T) {
	f := newFlow(t, flowOptions{socket: true})
	alert := f.alert(t, "ChmedicFlowSocket")
	if txt := f.click(t, alert.TS, collectButton(t, alert), requester); !strings.Contains(txt, "computing the plan") {
		t.Fatalf("request click: %q", txt)
	}
	req := f.requestMessage(t, alert.TS, "chmedic:approve")
	if txt := f.click(t, req.TS, "chmedic:approve", approver); !strings.Contains(txt, "Approved (1 of 1)") {
		t.Fatalf("approval: %q", txt)
	}
	waitUntil(t, "the bundle upload", 90*time.Second, func() bool { return len(f.slk.Files()) >= 1 })
	if fl := f.slk.Files()[0]; fl.Channel != slackChannel || fl.ThreadTS != alert.TS {
		t.Errorf("bundle shared to %s thread %q, want thread %s", fl.Channel, fl.ThreadTS, alert.TS)
	}
	waitRequest(t, f.openStore(t), store.ReqSucceeded, 30*time.Second)
}

var approveValueRE = regexp.MustCompile(`"action_id":"chmedic:approve","value":"([^"]+)"`)

// TestApprovalFlowCLIWhenSlackIsDown: break-glass for a request made in
// Slack while Slack and the server are down: chmedic approve --wait runs it
// in-process, the upload fails (partial, the bundle kept on disk), and the
// thread's messages are delivered once a server runs and Slack is back.
func TestApprovalFlowCLIWhenSlackIsDown(t *testing.T) {
	f := newFlow(t, flowOptions{})
	alert := f.alert(t, "ChmedicFlowSlackDown")
	f.click(t, alert.TS, collectButton(t, alert), requester)
	req := f.requestMessage(t, alert.TS, "chmedic:approve")
	m := approveValueRE.FindSubmatch(req.Blocks)
	if m == nil {
		t.Fatalf("no request id on the Approve button:\n%s", req.Blocks)
	}
	id := string(m[1])
	f.ch.stop()
	f.slk.SetOutage(true)

	code, out, errOut := runCLI(t, "approve", "--config", f.cfg, id, "--as", approver, "--wait")
	for _, w := range []string{"no chmedic server is running: executing in this process", "request " + id + ": partial", "upload ", "artifact "} {
		if !strings.Contains(out, w) {
			t.Errorf("approve output lacks %q (exit %d):\n%s%s", w, code, out, errOut)
		}
	}
	if code != 1 {
		t.Errorf("exit %d for a partial outcome, want 1", code)
	}
	st := f.openStore(t)
	e, err := st.ApprovalExecutionOf(context.Background(), id)
	if err != nil || !strings.HasPrefix(e.Runner, "cli ") {
		t.Fatalf("execution %+v %v, want run by the CLI", e, err)
	}
	var o struct {
		Artifacts []struct{ Path string }
	}
	decodeJSON(t, e.Outcome, &o)
	if len(o.Artifacts) != 1 {
		t.Fatalf("artifacts %+v", o.Artifacts)
	}
	if _, err := os.Stat(o.Artifacts[0].Path); err != nil {
		t.Errorf("the bundle is not on disk: %v", err)
	}

	f.slk.SetOutage(false)
	f.ch = startChmedic(t, f.dir, f.cfg, f.env)
	waitShowing(t, "the thread's request message to show the outcome", 60*time.Second, func() (bool, string) {
		b := string(f.message(t, req.TS).Blocks)
		return strings.Contains(b, "done: partially applied"), b
	})
	if len(f.slk.Files()) != 0 {
		t.Errorf("%d files in Slack, want none (it was down)", len(f.slk.Files()))
	}
}
