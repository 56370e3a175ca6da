package main

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listen_address: nowhere\nclusters:\n  - name: a\n    clickhouse:\n      nodez: []\n"), 0o600)
	secret := filepath.Join(dir, "token")
	os.WriteFile(secret, []byte("xoxb-very-secret\n"), 0o600)
	withSecret := filepath.Join(dir, "secret.yaml")
	os.WriteFile(withSecret, []byte(`clusters:
  - name: a
    clickhouse: {nodes: [{name: ch-1, address: "127.0.0.1:9000"}]}
    keeper: {nodes: [{name: zk-1, address: "127.0.0.1:2181"}]}
slack:
  bot_token_file: token
  channel: "#a"
`), 0o600)
	example := "chmedic.example.yaml"

	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string
		stderr   []string
		noOutput string
	}{
		{name: "version", args: []string{"version"}, stdout: []string{"chmedic dev"}},
		{name: "help", args: []string{"--help"}, stdout: []string{"serve", "check", "diagnose", "render", "playbooks"}},
		{name: "serve help", args: []string{"serve", "--help"}, stdout: []string{"--web.listen-address", "--config"}},
		{name: "check help", args: []string{"check", "--help"}, stdout: []string{"--config"}},
		{name: "render help", args: []string{"render", "--help"}, stdout: []string{"offline", "--format"}},
		{name: "check example", args: []string{"check", "--config", example}, stdout: []string{"ok (1 clusters)"}},
		{name: "check bad", args: []string{"check", "--config", bad}, code: 1, stderr: []string{
			bad + ":1:17: listen_address:", bad + ":5:7: clusters[0].clickhouse.nodez: unknown key"}},
		{name: "check missing", args: []string{"check", "--config", filepath.Join(dir, "nope.yaml")}, code: 1, stderr: []string{"nope.yaml"}},
		{name: "config redacts", args: []string{"config", "--config", withSecret}, stdout: []string{"<redacted>", "listen_address"}, noOutput: "xoxb-very-secret"},
		{name: "playbooks", args: []string{"playbooks", "--config", example}, stdout: []string{"keeper-readonly-replicas", "generic", "ClickHouseReadonlyReplica"}},
		{name: "render offline", args: []string{"render", "--config", example, "--alert", "../../webhook/testdata/firing-1.json", "--offline"},
			stdout: []string{"[FIRING] ClickHouseReadonlyReplica", "== Live findings ==", "== Mitigation =="}},
		{name: "render blocks", args: []string{"render", "--config", example, "--alert", "../../webhook/testdata/firing-1.json", "--offline", "--format", "blocks"},
			stdout: []string{`"type": "header"`, `"action_id": "chmedic:ddl_freeze:0"`}},
		{name: "render bad payload", args: []string{"render", "--config", example, "--alert", bad, "--offline"}, code: 1, stderr: []string{"not valid JSON"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: 2, stderr: []string{"expected command"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if tc.noOutput != "" && strings.Contains(out+errOut, tc.noOutput) {
				t.Errorf("output leaks %q", tc.noOutput)
			}
		})
	}
}

// TestServeExampleConfig: `chmedic serve` starts with the example config on
// a fresh machine (nothing to reach: those are findings, not failures),
// answers its probes, and stops cleanly on SIGTERM (context cancel).
func TestServeExampleConfig(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", "chmedic.example.yaml", "--web.listen-address", addr,
			"--store.path", filepath.Join(t.TempDir(), "chmedic.db")}, &out, &errb)
	}()
	waitUntil(t, "/readyz", 10*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	code, _ := (&chmedic{addr: addr}).post(t, []byte(`{"version":"4","groupKey":"k","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"ClickHouseReadonlyReplica"}}]}`), "")
	if code != 200 {
		t.Fatalf("webhook answered %d", code)
	}
	// Without a Slack token the message goes to the log.
	waitUntil(t, "the message in the log", 20*time.Second, func() bool {
		return strings.Contains(errb.String(), "message that would be posted")
	})
	cancel()
	select {
	case c := <-done:
		if c != 0 {
			t.Fatalf("exit %d\n%s", c, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	log := errb.String()
	for _, want := range []string{"no Slack bot token configured", "webhook authentication is not configured", "chmedic started", "stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}
