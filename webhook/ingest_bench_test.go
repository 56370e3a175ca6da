package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/chmedic/chmedic/internal/store"
)

// stormPayload is a version-4 payload of the group with n firing alerts;
// pad fills each alert's description to about that many bytes (a 1-alert
// payload of ~5 KB is a typical rich alert).
func stormPayload(groupKey string, n, pad int) []byte {
	start := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	var alerts []map[string]any
	for i := 0; i < n; i++ {
		fp := fmt.Sprintf("%s-%d", groupKey, i)
		alerts = append(alerts, map[string]any{
			"status": "firing",
			"labels": map[string]string{"alertname": "ClickHouseReadonlyReplica", "cluster": "prod", "instance": fmt.Sprintf("ch-%d:9000", i),
				"table": fmt.Sprintf("db.t%d", i), "severity": "critical"},
			"annotations": map[string]string{"summary": "Replica is read-only", "description": strings.Repeat("x", pad)},
			"startsAt":    start, "endsAt": time.Time{}, "generatorURL": "http://prometheus:9090/graph?g0.expr=ClickHouseReadonlyReplica",
			"fingerprint": fp,
		})
	}
	b, _ := json.Marshal(map[string]any{
		"version": "4", "groupKey": groupKey, "status": "firing", "receiver": "chmedic", "alerts": alerts,
		"groupLabels":  map[string]string{"alertname": "ClickHouseReadonlyReplica", "cluster": "prod"},
		"commonLabels": map[string]string{"alertname": "ClickHouseReadonlyReplica", "cluster": "prod", "severity": "critical"},
		"externalURL":  "http://alertmanager:9093", "truncatedAlerts": 0,
	})
	return b
}

// bareHandler is the reference: decode the payload, answer 200.
var bareHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	var d template.Data
	if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"accepted","id":1}` + "\n"))
})

// loadResult is what one load run measured.
type loadResult struct {
	ok, errors int
	elapsed    time.Duration
	lat        []time.Duration
}

func (r loadResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

// runLoad sends payloads (distinct group keys) to url from senders
// concurrent connections for d.
func runLoad(url string, senders int, d time.Duration, body func(i int64) []byte) loadResult {
	tr := &http.Transport{MaxIdleConnsPerHost: senders, MaxConnsPerHost: senders}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var seq atomic.Int64
	var mu sync.Mutex
	var res loadResult
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			ok, errs := 0, 0
			for time.Now().Before(stop) {
				b := body(seq.Add(1))
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer s3cret")
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 {
					errs++
					continue
				}
				ok++
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.ok += ok
			res.errors += errs
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

func (r *loadResult) add(o loadResult) {
	r.ok += o.ok
	r.errors += o.errors
	r.elapsed += o.elapsed
	r.lat = append(r.lat, o.lat...)
}

func (r *loadResult) sort() { sort.Slice(r.lat, func(i, j int) bool { return r.lat[i] < r.lat[j] }) }

// BenchmarkIngestSideBySide measures webhook ingest over loopback HTTP
// beside a bare decode-and-200 Go server, in the same run: N concurrent
// senders (CHMEDIC_BENCH_SENDERS, default 32) post distinct groups to each
// server in turn, CHMEDIC_BENCH_ROUNDS (default 5) times for
// CHMEDIC_BENCH_MS (default 1000) each, alternating; each server's figures
// pool its rounds (rate: answered 200 over the time under load). chmedic is
// the real handler and store (SQLite WAL, synchronous=FULL) with group
// commit, and, for comparison, committing each request on its own.
// Run with -benchtime=1x: each sub-benchmark is one timed load.
func BenchmarkIngestSideBySide(b *testing.B) {
	senders := envInt("CHMEDIC_BENCH_SENDERS", 32)
	d := time.Duration(envInt("CHMEDIC_BENCH_MS", 1000)) * time.Millisecond
	rounds := envInt("CHMEDIC_BENCH_ROUNDS", 5)
	for _, size := range []struct {
		name        string
		alerts, pad int
	}{{"1-alert-5KB", 1, 4600}, {"200-alert", 200, 200}} {
		for _, mode := range []string{"group-commit", "per-request-commit"} {
			b.Run(size.name+"/"+mode, func(b *testing.B) {
				var opts []store.Option
				if mode == "per-request-commit" {
					opts = append(opts, store.WithoutGroupCommit()) // one commit per request, really
				}
				st, err := store.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), opts...)
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				var acc Acceptor = st
				batches := &batchStats{}
				if mode == "group-commit" {
					acc = NewGroupCommit(st, GroupCommitOptions{BatchSize: batches, MaxWait: time.Duration(envInt("CHMEDIC_BENCH_MAXWAIT_US", 0)) * time.Microsecond})
				}
				h := &Handler{Auth: Auth{BearerToken: "s3cret"}, MaxBodyBytes: 4 << 20, DedupWindow: 5 * time.Minute,
					Store: acc, Queue: &fakeQueue{cap: 1 << 30}, Metrics: NewMetrics(nil), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
				bare := httptest.NewServer(bareHandler)
				defer bare.Close()
				med := httptest.NewServer(h)
				defer med.Close()
				run := fmt.Sprint(time.Now().UnixNano())
				// One payload, its group key replaced per request (cheap for
				// the load generator, which shares the machine).
				tmpl := stormPayload("GROUPKEY", size.alerts, size.pad)
				body := func(prefix string) func(int64) []byte {
					return func(i int64) []byte {
						return bytes.ReplaceAll(tmpl, []byte("GROUPKEY"), []byte(prefix+run+"-"+strconv.FormatInt(i, 10)))
					}
				}
				b.SetBytes(int64(len(body("x")(0))))
				b.ResetTimer()
				// Interleaved short loads, pooled: the machine's other load
				// hits both servers alike.
				var rb, rc loadResult
				for round := 0; round < rounds; round++ {
					rb.add(runLoad(bare.URL, senders, d, body(fmt.Sprintf("bare%d-", round))))
					rc.add(runLoad(med.URL+"/webhook", senders, d, body(fmt.Sprintf("med%d-", round))))
				}
				rb.sort()
				rc.sort()
				okTotal := rc.ok
				b.StopTimer()
				if rc.errors > 0 || rb.errors > 0 || rc.ok == 0 {
					b.Errorf("errors: bare %d, chmedic %d", rb.errors, rc.errors)
				}
				counts, err := st.NotificationCounts(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				if counts[store.StatePending] != okTotal {
					b.Errorf("%d answered 200, %d in the store", okTotal, counts[store.StatePending])
				}
				ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
				b.ReportMetric(rb.rate(), "bare-payloads/s")
				b.ReportMetric(rc.rate(), "chmedic-payloads/s")
				b.ReportMetric(100*rc.rate()/rb.rate(), "rate-%-of-bare")
				b.ReportMetric(ms(rb.pct(0.50)), "bare-p50-ms")
				b.ReportMetric(ms(rc.pct(0.50)), "chmedic-p50-ms")
				b.ReportMetric(ms(rb.pct(0.99)), "bare-p99-ms")
				b.ReportMetric(ms(rc.pct(0.99)), "chmedic-p99-ms")
				b.ReportMetric(float64(rc.pct(0.99))/float64(rb.pct(0.99)), "p99-x-bare")
				if n := batches.n.Load(); n > 0 {
					b.ReportMetric(float64(batches.sum.Load())/float64(n), "mean-batch")
				}
			})
		}
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// batchStats observes batch sizes.
type batchStats struct{ n, sum atomic.Int64 }

func (s *batchStats) Observe(v float64) { s.n.Add(1); s.sum.Add(int64(v)) }
