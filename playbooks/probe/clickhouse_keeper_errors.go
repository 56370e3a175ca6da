package probe

// clickhouse.keeper_errors — the client-side view of coordination failures:
// system.events WHERE event LIKE 'ZooKeeper%', sampled twice (500 ms apart, or
// less to fit the context deadline) to turn counters into rates.
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
//   sample_seconds  time between the two samples
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

// keeperEventsAlways are set even when the server omits them (zero).
var keeperEventsAlways = []string{"ZooKeeperTransactions", "ZooKeeperHardwareExceptions", "ZooKeeperUserExceptions", "ZooKeeperWaitMicroseconds"}

// clickhouseKeeperErrors is the clickhouse.keeper_errors probe.
func clickhouseKeeperErrors() Spec {
	return Spec{
		Name: "clickhouse.keeper_errors",
		Kind: KindClickHouse,
		Doc:  "Rates of ZooKeeper* events (exceptions, requests, wait time) over half a second (system.events).",
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
			note = fmt.Sprintf("the second sample failed: %s", chCause(err))
		} else {
			note = "no time for a second sample before the deadline"
		}
		evaluateKeeperErrors(r, t, first, nil, 0)
		r.Summary += " (" + note + ")"
	})
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
	node := nodeLabel(t)
	v1 := eventValues(first)
	last := v1
	if second != nil {
		last = eventValues(second)
	}
	for _, e := range keeperEventsAlways {
		if _, ok := last[e]; !ok {
			last[e] = 0
		}
	}
	for name, v := range last {
		r.SetFact("total_"+name, v)
	}
	if second == nil || interval <= 0 {
		r.Status = Unknown
		r.Summary = fmt.Sprintf("node %s: ZooKeeper counters since start: %.0f hardware exceptions, %.0f user exceptions, %.0f requests; rates unknown",
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
