package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// cannedDiagnoser answers every round at once with the same diagnosis:
// the storm benchmark measures chmedic's pipeline, not the probes (a
// round is shared and cached per cluster anyway).
type cannedDiagnoser struct{}

func (cannedDiagnoser) Diagnose(_ context.Context, cluster string) (*diagnose.Diagnosis, error) {
	return &diagnose.Diagnosis{Cluster: cluster, Status: probe.Crit, Verdict: "Coordination lost: replicas are read-only.",
		Findings: []diagnose.Finding{{Status: probe.Crit, Probe: "clickhouse.replicas", Node: "ch-1", Summary: "12 read-only replicas"}},
		Results:  []probe.Result{{Probe: "clickhouse.replicas", Node: "ch-1", Status: probe.Crit}}}, nil
}

// startStormApp runs chmedic in-process with Slack in log mode (no token)
// and the canned diagnosis.
func startStormApp(tb testing.TB, noOutbox bool) *App {
	tb.Helper()
	return startStormAppIn(tb, tb.TempDir(), noOutbox)
}

// startStormAppIn is startStormApp with its store in dir (dir/chmedic.db),
// opened with opts.
func startStormAppIn(tb testing.TB, dir string, noOutbox bool, opts ...store.Option) *App {
	tb.Helper()
	yaml := `store: {path: chmedic.db}
webhook: {queue_size: 20000}
clusters:
  - name: prod
    match: ['cluster="prod"']
    clickhouse:
      nodes: [{name: ch-1, address: "127.0.0.1:9"}]
    keeper:
      nodes: [{name: zk-1, address: "127.0.0.1:9"}]
slack:
  channel: "#alerts"
`
	path := filepath.Join(dir, "chmedic.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	a, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{Listener: ln, NoOutbox: noOutbox, StoreOptions: opts})
	if err != nil {
		tb.Fatal(err)
	}
	a.Processor.Diagnoser = cannedDiagnoser{}
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
	return a
}

var stormAlertNames = []string{"ClickHouseReadonlyReplica", "ClickHouseZooKeeperSessionExpired", "ClickHouseReplicationQueueStuck", "ClickHouseDistributedDDLStuck", "ClickHouseInsertsFailing"}

// stormGroup is a version-4 payload of one group of the storm: alerts
// firing alerts of one of a few alert names on one cluster.
func stormGroup(i, alerts int) []byte {
	name := stormAlertNames[i%len(stormAlertNames)]
	start := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	var list []map[string]any
	for j := 0; j < alerts; j++ {
		list = append(list, map[string]any{
			"status": "firing",
			"labels": map[string]string{"alertname": name, "cluster": "prod", "instance": fmt.Sprintf("ch-%d:9000", j),
				"table": fmt.Sprintf("db.t%d", i), "severity": "critical"},
			"annotations": map[string]string{"summary": name + " on ch-" + strconv.Itoa(j)},
			"startsAt":    start, "endsAt": time.Time{}, "fingerprint": fmt.Sprintf("%08x%08x", i, j),
		})
	}
	b, _ := json.Marshal(map[string]any{
		"version": "4", "groupKey": fmt.Sprintf(`{}:{alertname=%q, table="db.t%d"}`, name, i), "status": "firing", "receiver": "chmedic",
		"alerts": list, "groupLabels": map[string]string{"alertname": name, "table": fmt.Sprintf("db.t%d", i)},
		"commonLabels": map[string]string{"alertname": name, "cluster": "prod", "severity": "critical", "table": fmt.Sprintf("db.t%d", i)},
		"externalURL":  "http://alertmanager:9093",
	})
	return b
}

// peakRSS is the process's peak resident set since the last resetPeakRSS.
func peakRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// BenchmarkStorm sends a storm of one cluster's alert groups (10 alerts
// each) over HTTP from 8 senders as fast as chmedic takes them (503s are
// retried, as Alertmanager does), then waits until every notification is
// processed: the pipeline with the canned diagnosis (no probes), the real
// store and outbox, Slack in log mode. It reports the time to send, the
// time from the last webhook to the last notification processed, the
// processing rate over the first and the last 1,000 groups, the peak RSS
// of the whole test process (driver included) and the top-level messages
// started. outbox-off does not run the Slack outbox (its messages stay
// queued): the notification pipeline alone. Run with -benchtime=1x:
//
//	go test -run '^$' -bench BenchmarkStorm -benchtime=1x ./internal/app/
func BenchmarkStorm(b *testing.B) {
	for _, groups := range []int{1000, 10000} {
		for _, outbox := range []string{"outbox-on", "outbox-off"} {
			b.Run(fmt.Sprintf("%d-alerts-%d-groups/%s", groups*10, groups, outbox), func(b *testing.B) {
				runtimeGC()
				resetPeakRSS()
				a := startStormApp(b, outbox == "outbox-off")
				url := "http://" + a.Addr() + "/webhook"
				bodies := make([][]byte, groups)
				for i := range bodies {
					bodies[i] = stormGroup(i, 10)
				}
				b.ResetTimer()
				start := time.Now()
				var next atomic.Int64
				var retries atomic.Int64
				var wg sync.WaitGroup
				client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
				for s := 0; s < 8; s++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							i := int(next.Add(1)) - 1
							if i >= groups {
								return
							}
							for {
								resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[i]))
								if err != nil {
									b.Error(err)
									return
								}
								io.Copy(io.Discard, resp.Body)
								resp.Body.Close()
								if resp.StatusCode == 200 {
									break
								}
								retries.Add(1)
								time.Sleep(50 * time.Millisecond)
							}
						}
					}()
				}
				wg.Wait()
				sent := time.Now()
				ctx := context.Background()
				for {
					c, err := a.Store.NotificationCounts(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if c[store.StateDone]+c[store.StateFailed]+c[store.StateStale] >= groups {
						if c[store.StateFailed] > 0 {
							b.Errorf("%d notifications failed", c[store.StateFailed])
						}
						break
					}
					if time.Since(sent) > 10*time.Minute {
						b.Fatalf("not processed after 10 minutes: %v", c)
					}
					time.Sleep(100 * time.Millisecond) // counting scans the notifications: not too often
				}
				b.StopTimer()
				times, err := a.Store.ProcessedTimes(ctx)
				if err != nil {
					b.Fatal(err)
				}
				last := times[len(times)-1]
				rate := func(ts []time.Time) float64 { return float64(len(ts)-1) / ts[len(ts)-1].Sub(ts[0]).Seconds() }
				k := min(1000, len(times))
				posts, _ := a.Store.PostsByThread(ctx)
				b.ReportMetric(sent.Sub(start).Seconds(), "send-s")
				b.ReportMetric(max(0, last.Sub(sent).Seconds()), "after-last-webhook-s")
				b.ReportMetric(last.Sub(start).Seconds(), "total-s")
				b.ReportMetric(rate(times[:k]), "first-1k-groups/s")
				b.ReportMetric(rate(times[len(times)-k:]), "last-1k-groups/s")
				// Every window of 1,000 in order: where the processing slows, if it does.
				var windows []string
				slowest := rate(times[:k])
				for i := 0; i+k <= len(times); i += k {
					r := rate(times[i : i+k])
					slowest = min(slowest, r)
					windows = append(windows, fmt.Sprintf("%.0f", r))
				}
				b.Logf("groups/s per 1,000 processed: %s", strings.Join(windows, " "))
				b.ReportMetric(slowest, "slowest-1k-groups/s")
				b.ReportMetric(float64(peakRSS())/(1<<20), "peak-RSS-MiB")
				b.ReportMetric(float64(len(posts)), "top-level-messages")
				b.ReportMetric(float64(retries.Load()), "503-retries")
			})
		}
	}
}

func runtimeGC() { runtime.GC() }
