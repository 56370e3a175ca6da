package probe

// clickhouse.keeper_errors — the client-side view of coordination failures:
// system.events WHERE event LIKE 'ZooKeeper%', turned from counters into
// rates. With a sample memory (Target.Samples: the server's engine keeps
// each node's last sample between rounds) the rates are computed against
// the previous round's sample when it is recent (at most keeperErrorsMaxAge
// old): one query, no wait on the critical path, and the summary says over
// how long ("over the last 15s"). Without a recent sample such a round has
// only the counter totals, says so ("counter totals, no rate yet") and
// leaves its sample for the next round. Without a memory (chmedic diagnose)
// it samples twice, 500 ms apart (or less to fit the context deadline).
//
// Facts, for every ZooKeeper* event the server reports (e.g.
// ZooKeeperTransactions, ZooKeeperHardwareExceptions, ZooKeeperUserExceptions,
// ZooKeeperOtherExceptions (newer servers), ZooKeeperWaitMicroseconds,
// ZooKeeperInit, ZooKeeperList, ZooKeeperGet, ZooKeeperMulti,
// ZooKeeperBytesSent ...):
//   total_<Event>   the counter since server start (second sample)
//   rate_<Event>    its increase per second between the samples (only when
//                   there was time for a second sample)
// The four events the runbook reads are always present (0 when the server
// does not list them, as it omits zero counters): ZooKeeperTransactions,
// ZooKeeperHardwareExceptions, ZooKeeperUserExceptions,
// ZooKeeperWaitMicroseconds. Also:
//   sample_seconds  time between the two samples (this round's and the
//                   previous round's, with a sample memory)
//   avg_wait_ms     rate_ZooKeeperWaitMicroseconds / rate_ZooKeeperTransactions
//                   / 1000: the mean wait per coordination request in the
//                   interval (only when there were requests)
//
// Status: Warn when rate_ZooKeeperHardwareExceptions > 0 (connection loss,
// timeouts) or rate_ZooKeeperUserExceptions > 1/s; OK otherwise; Unknown
// when only totals could be read (no time for a second sample).

import (
	"context"
	"fmt"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

const keeperErrorsSQL = "SELECT event, value FROM system.events WHERE event LIKE 'ZooKeeper%'"

// keeperErrorsInterval is the preferred time between the two samples.
// It bounds the whole round (every other probe finishes sooner), so it is
// kept short: half a second still shows an exception storm.
const keeperErrorsInterval = 500 * time.Millisecond

// keeperErrorsMinInterval is the shortest interval worth a second sample.
const keeperErrorsMinInterval = 100 * time.Millisecond

// keeperErrorsMaxAge is the oldest previous sample a rate is computed
// against: older, the rate would average away what is happening now.
const keeperErrorsMaxAge = 5 * time.Minute

// keeperEventsAlways are set even when the server omits them (zero).
var keeperEventsAlways = []string{"ZooKeeperTransactions", "ZooKeeperHardwareExceptions", "ZooKeeperUserExceptions", "ZooKeeperWaitMicroseconds"}

// clickhouseKeeperErrors is the clickhouse.keeper_errors probe.
func clickhouseKeeperErrors() Spec {
	return Spec{
		Name: "clickhouse.keeper_errors",
		Kind: KindClickHouse,
		Doc:  "Rates of ZooKeeper* events (exceptions, requests, wait time) since the previous round, or over half a second (system.events).",
		Run:  runClickHouseKeeperErrors,
	}
}

func runClickHouseKeeperErrors(ctx context.Context, t *Target) Result {
	return chProbe(t, func(r *Result) {
		started := time.Now()
		first, ok := chQuery(ctx, r, t, "system.events", Unknown, keeperErrorsSQL)
		if !ok {
			return
		}
		t1 := time.Now()
		cost := t1.Sub(started)
		if t.Samples != nil {
			keeperErrorsAgainstPrevious(r, t, first)
			return
		}

		// Wait, leaving room for the second sample (twice what the first
		// took, plus a margin), never past the deadline.
		wait := keeperErrorsInterval
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)-2*cost-50*time.Millisecond)
		}
		var note string
		if wait >= keeperErrorsMinInterval && sleepCtx(ctx, wait) {
			second, err := t.ClickHouse.Query(ctx, keeperErrorsSQL)
			if err == nil {
				evaluateKeeperErrors(r, t, first, second, time.Since(t1))
				return
			}
			note = fmt.Sprintf("rates unknown: the second sample failed: %s", chCause(err))
		} else {
			note = "rates unknown: no time for a second sample before the deadline"
		}
		evaluateKeeperErrors(r, t, first, nil, 0)
		r.Summary += " (" + note + ")"
	})
}

// keeperErrorsAgainstPrevious evaluates one sample against the node's
// previous one, and remembers it for the next round.
func keeperErrorsAgainstPrevious(r *Result, t *Target, rows []clickhouse.Row) {
	now := time.Now()
	if t.Now != nil {
		now = t.Now()
	}
	key := SampleKey("clickhouse.keeper_errors", t.Cluster, t.Node)
	cur := eventValues(rows)
	prev, ok := t.Samples.Get(key)
	age := now.Sub(prev.At)
	switch {
	case ok && age >= keeperErrorsMinInterval && age <= keeperErrorsMaxAge:
		evaluateKeeperErrorValues(r, t, prev.Values, cur, age)
		t.Samples.Put(key, Sample{Values: cur, At: now})
		r.Summary += fmt.Sprintf(" (rate over the last %s, since the previous round)", age.Round(time.Second))
	case ok && age >= 0 && age < keeperErrorsMinInterval:
		// Too close to the previous sample for a rate: keep that one as
		// the baseline of the next round.
		evaluateKeeperErrorValues(r, t, nil, cur, 0)
		r.Summary += fmt.Sprintf(" (counter totals, no rate yet: the previous sample is only %s old)", age.Round(time.Millisecond))
	default:
		evaluateKeeperErrorValues(r, t, nil, cur, 0)
		t.Samples.Put(key, Sample{Values: cur, At: now})
		note := "counter totals, no rate yet: first sample; the next round measures the rate"
		if ok {
			note = fmt.Sprintf("counter totals, no rate yet: the previous sample is %s old; the next round measures the rate", age.Round(time.Second))
		}
		r.Summary += " (" + note + ")"
	}
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func eventValues(rows []clickhouse.Row) map[string]float64 {
	m := make(map[string]float64, len(rows))
	for _, row := range rows {
		m[row.String("event")] = row.Float("value")
	}
	return m
}

// evaluateKeeperErrors turns one or two samples into facts; second is nil
// when there is only one.
func evaluateKeeperErrors(r *Result, t *Target, first, second []clickhouse.Row, interval time.Duration) {
	v1 := eventValues(first)
	if second == nil {
		evaluateKeeperErrorValues(r, t, nil, v1, 0)
		return
	}
	evaluateKeeperErrorValues(r, t, v1, eventValues(second), interval)
}

// evaluateKeeperErrorValues is evaluateKeeperErrors on event values; v1 is
// nil when there is only the last sample.
func evaluateKeeperErrorValues(r *Result, t *Target, v1, last map[string]float64, interval time.Duration) {
	node := nodeLabel(t)
	for _, e := range keeperEventsAlways {
		if _, ok := last[e]; !ok {
			last[e] = 0
		}
	}
	for name, v := range last {
		r.SetFact("total_"+name, v)
	}
	if v1 == nil || interval <= 0 {
		// Only totals: say what was measured (the caller adds why).
		r.Status = Unknown
		r.Summary = fmt.Sprintf("node %s: ZooKeeper counters since server start: %.0f hardware exceptions, %.0f user exceptions, %.0f requests",
			node, last["ZooKeeperHardwareExceptions"], last["ZooKeeperUserExceptions"], last["ZooKeeperTransactions"])
		return
	}
	secs := interval.Seconds()
	r.SetFact("sample_seconds", secs)
	rates := make(map[string]float64, len(last))
	for name, v := range last {
		d := v - v1[name]
		if d < 0 { // counters do not go back unless the server restarted
			d = v
		}
		rates[name] = d / secs
		r.SetFact("rate_"+name, rates[name])
	}
	tx := rates["ZooKeeperTransactions"]
	if tx > 0 {
		r.SetFact("avg_wait_ms", rates["ZooKeeperWaitMicroseconds"]/tx/1000)
	}
	hw, user := rates["ZooKeeperHardwareExceptions"], rates["ZooKeeperUserExceptions"]
	tbl := Table{Title: fmt.Sprintf("ZooKeeper events over %.1f s", secs), Columns: []string{"event", "total", "per second"}}
	for _, name := range sortedKeys(last) {
		tbl.Rows = append(tbl.Rows, []string{name, fmtFloat(last[name], 0), fmtFloat(rates[name], 2)})
	}
	r.Evidence = append(r.Evidence, Truncate(tbl, 50))
	wait := ""
	if tx > 0 {
		wait = fmt.Sprintf(", %.1f ms mean wait", rates["ZooKeeperWaitMicroseconds"]/tx/1000)
	}
	switch {
	case hw > 0:
		r.Status = Warn
		r.Summary = fmt.Sprintf("node %s: %.2f coordination hardware exceptions/s (connection loss or timeouts), %.2f user exceptions/s, %.1f requests/s%s",
			node, hw, user, tx, wait)
	case user > 1:
		r.Status = Warn
		r.Summary = fmt.Sprintf("node %s: %.2f coordination user exceptions/s (over 1/s), %.1f requests/s%s", node, user, tx, wait)
	default:
		r.Status = OK
		r.Summary = fmt.Sprintf("node %s: no coordination hardware exceptions, %.2f user exceptions/s, %.1f requests/s%s", node, user, tx, wait)
	}
}
