package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// startApp runs chmedic in-process against the test environment and a
// Slack fake.
func startApp(tb testing.TB, cacheTTL string) (*App, *slackfake.Server) {
	tb.Helper()
	return startAppSlack(tb, cacheTTL, "  storm_threshold: 100000\n")
}

// startAppSlack is startApp with more slack.* keys (indented two spaces).
func startAppSlack(tb testing.TB, cacheTTL, slackKeys string) (*App, *slackfake.Server) {
	tb.Helper()
	env := testenv.Shared(tb)
	slk := slackfake.New(tb, slackfake.Options{})
	dir := tb.TempDir()
	var nodes strings.Builder
	for _, c := range env.ClickHouse {
		fmt.Fprintf(&nodes, "        - {name: %s, address: %q}\n", c.Name, c.Addr())
	}
	os.WriteFile(filepath.Join(dir, "ch-password"), []byte(env.ProbePassword), 0o600)
	os.WriteFile(filepath.Join(dir, "slack-token"), []byte(slackfake.DefaultToken), 0o600)
	yaml := fmt.Sprintf(`store: {path: chmedic.db}
diagnosis: {cache_ttl: %s}
clusters:
  - name: test
    clickhouse:
      user: %s
      password_file: ch-password
      nodes:
%s    keeper:
      nodes: [{name: zk-1, address: %q}]
slack:
  bot_token_file: slack-token
  channel: C0CHMEDIC1
  api_url: %s
%s`, cacheTTL, env.ProbeUser, nodes.String(), env.ZooKeeper.Addr, slk.URL(), slackKeys)
	path := filepath.Join(dir, "chmedic.yaml")
	os.WriteFile(path, []byte(yaml), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Listener: ln})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	for a.Addr() == "" {
		time.Sleep(5 * time.Millisecond)
	}
	return a, slk
}

func payload(group string) []byte {
	return []byte(fmt.Sprintf(`{"version":"4","groupKey":%q,"status":"firing","receiver":"chmedic",
"alerts":[{"status":"firing","labels":{"alertname":"ClickHouseReadonlyReplica","group":%q},"annotations":{"summary":"bench"},"startsAt":"2026-11-23T03:00:00Z","fingerprint":%q}],
"groupLabels":{"alertname":"ClickHouseReadonlyReplica","group":%q},"commonLabels":{"alertname":"ClickHouseReadonlyReplica","group":%q},"commonAnnotations":{"summary":"bench"},"externalURL":"http://am"}`,
		group, group, group, group, group))
}

// BenchmarkAlertToSlack measures the latency from a webhook accepted by the
// receiver to the message posted in Slack, on the real two-replica cluster
// (a full live diagnosis each time: the cache is off). Alerts are spaced
// over the 1 s per-channel posting interval so that each measures the
// pipeline, not Slack's rate limit. Reports p50 and p99.
func BenchmarkAlertToSlack(b *testing.B) {
	a, slk := startApp(b, "0s")
	url := "http://" + a.Addr() + "/webhook"
	var lat []time.Duration
	last := time.Time{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if wait := time.Second + 50*time.Millisecond - time.Since(last); wait > 0 {
			time.Sleep(wait)
		}
		b.StartTimer()
		group := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
		before := len(slk.Messages("C0CHMEDIC1"))
		start := time.Now()
		resp, err := http.Post(url, "application/json", bytes.NewReader(payload(group)))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		for len(slk.Messages("C0CHMEDIC1")) == before {
			if time.Since(start) > 30*time.Second {
				b.Fatal("no message within 30s")
			}
			time.Sleep(time.Millisecond)
		}
		last = time.Now()
		lat = append(lat, last.Sub(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}

// TestAppServesHealthReadyMetrics checks the operability endpoints of the
// in-process runtime.
func TestAppServesHealthReadyMetrics(t *testing.T) {
	a, _ := startApp(t, "15s")
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": `chmedic_store_outbox_entries{state="pending"} 0`} {
		resp, err := http.Get("http://" + a.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
	resp, err := http.Get("http://" + a.Addr() + "/webhook")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /webhook: %d", resp.StatusCode)
	}
}
