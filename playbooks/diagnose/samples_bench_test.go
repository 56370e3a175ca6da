package diagnose_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

// BenchmarkDiagnosisRoundServer is BenchmarkDiagnosisRound as the server
// runs it (RememberSamples): clickhouse.keeper_errors reads the counters
// once per round and computes rates against the previous round, so no
// round waits 500 ms for a second sample. The first round (cold) is
// included.
//
//	go test ./playbooks/diagnose/ -run '^$' -bench DiagnosisRoundServer -benchtime 30x
func BenchmarkDiagnosisRoundServer(b *testing.B) {
	env := testenv.Shared(b)
	c := newCluster(b, env, -1, nil, nil)
	c.engine.RememberSamples()
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := c.engine.Diagnose(context.Background(), "test"); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(ds[(len(ds)*99)/100].Microseconds())/1000, "p99-ms")
}
