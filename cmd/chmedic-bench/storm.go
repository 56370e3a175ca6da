package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stormAlertNames are the stems of the storm's alert names, each matched
// by a built-in playbook's unanchored regexp (distributed-ddl-stuck,
// keeper-exceptions). Each group's alert name is a stem plus the group's
// token: chmedic names a group in Slack by its alert name, so unique names
// are what lets the bench see which groups Slack reflects (and the worst
// case for anything cached per alert name).
var stormAlertNames = []string{"ClickHouseDistributedDDLQueueStuck", "ZooKeeperUserExceptions"}

// stormPayload is group i of a storm: alerts alerts of one alert name, one
// replica each, for the bench cluster; its alert name (the group's token)
// is returned too.
func stormPayload(run string, i, alerts int) ([]byte, string) {
	name := fmt.Sprintf("%s_%sg%05d", stormAlertNames[i%len(stormAlertNames)], run, i)
	group := map[string]string{"alertname": name, "cluster": benchCluster}
	var as []alertSpec
	for j := range alerts {
		as = append(as, alertSpec{
			Labels: map[string]string{"alertname": name, "cluster": benchCluster,
				"instance": fmt.Sprintf("ch-%d.bench:9363", j%2+1), "replica": fmt.Sprintf("r%d", j)},
			Annotations: map[string]string{"summary": "storm alert " + name},
		})
	}
	key := fmt.Sprintf(`{}/{}:{alertname=%q, cluster=%q}`, name, benchCluster)
	return webhookPayload(key, group, as, time.Now()), name
}

func (b *bench) scenarioStorm(ctx context.Context) {
	groups, per := b.opts.stormGroups, 10
	scen := fmt.Sprintf("Storm, %d alerts in %d groups, one cluster", groups*per, groups)
	p, err := b.h.startChmedic(ctx, "storm", chOptions{LogLevel: "warn"})
	if err != nil {
		b.fail(scen, err)
		return
	}
	defer p.stop(sigterm)
	run := fmt.Sprintf("S%d", time.Now().UnixMilli()%100000)
	since := time.Now()
	m0, _ := p.metrics()

	// Send every group within the send window, 8 connections.
	post := newPoster(8)
	tokens := make([]string, groups)
	var errs, rejected atomic.Int64
	var lastSent time.Time
	var mu sync.Mutex
	window := b.opts.stormSend
	start := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				body, tok := stormPayload(run, i, per)
				tokens[i] = tok
				for attempt := 0; ; attempt++ {
					code, _, err := post.post(ctx, p.webhookURL(), body)
					if err == nil && code == http.StatusOK {
						break
					}
					if code == http.StatusServiceUnavailable && attempt < 50 {
						rejected.Add(1) // Alertmanager would retry: so do we
						time.Sleep(200 * time.Millisecond)
						continue
					}
					errs.Add(1)
					break
				}
				mu.Lock()
				lastSent = time.Now()
				mu.Unlock()
			}
		})
	}
	for i := range groups {
		time.Sleep(time.Until(start.Add(window * time.Duration(i) / time.Duration(groups))))
		work <- i
	}
	close(work)
	wg.Wait()
	sendTime := lastSent.Sub(start)
	b.logf("storm: %d groups sent in %s; waiting for processing (at most %s)", groups, sendTime.Round(time.Millisecond), b.opts.stormWait)

	// Processing: every notification done (or failed/stale) in the store.
	var processedAt time.Time
	waitUntil(ctx, b.opts.stormWait, func() bool {
		n, err := p.storeInt(`SELECT count(*) FROM notifications WHERE state NOT IN ('pending', 'processing')`)
		if err == nil && n >= int64(groups) {
			processedAt = time.Now()
			return true
		}
		time.Sleep(200 * time.Millisecond)
		return false
	})
	// Slack: the last group named in a message, or quiet for 5 s.
	lastNamed := func() (time.Time, int) {
		calls := b.h.slackCalls(since)
		var text strings.Builder
		var lastAt time.Time
		for _, c := range calls {
			text.WriteString(c.Text)
			if strings.Contains(c.Text, tokens[groups-1]) && lastAt.IsZero() {
				lastAt = c.Time
			}
		}
		all := text.String()
		named := 0
		for _, t := range tokens {
			if strings.Contains(all, t) {
				named++
			}
		}
		return lastAt, named
	}
	// Wait for the last group in Slack, then for Slack to go quiet (3 s
	// without a call), within the bound.
	var reflectedAt time.Time
	deadline := lastSent.Add(b.opts.stormWait)
	waitUntil(ctx, time.Until(deadline), func() bool {
		if reflectedAt.IsZero() {
			reflectedAt, _ = lastNamed()
		}
		calls := b.h.slackCalls(since)
		quiet := len(calls) == 0 || time.Since(calls[len(calls)-1].Time) > 3*time.Second
		if !reflectedAt.IsZero() && !processedAt.IsZero() && quiet {
			return true
		}
		time.Sleep(500 * time.Millisecond)
		return false
	})
	observed := time.Since(since)
	_, named := lastNamed()
	m1, _ := p.metrics()
	rss := peakRSS(p.pid())

	calls := b.h.slackCalls(since)
	byMethod := map[string]int{}
	for _, c := range calls {
		if c.Channel == p.channel || c.Channel == "" {
			byMethod[c.Method]++
		}
	}
	top := 0
	for _, m := range b.h.slack.Messages(p.channel) {
		if m.ThreadTS == "" && m.PostedAt.After(since) {
			top++
		}
	}
	stored, _ := p.storeInt(`SELECT count(DISTINCT group_key) FROM notifications`)
	inIncident, _ := p.storeInt(`SELECT count(DISTINCT group_key) FROM incident_groups`)
	reflected, _ := p.storeInt(`SELECT count(*) FROM (SELECT group_key FROM incident_groups UNION SELECT substr(thread_key, 7) FROM slack_threads WHERE thread_key LIKE 'group:%')`)
	failed, _ := p.storeInt(`SELECT count(*) FROM notifications WHERE state = 'failed'`)

	b.add(Row{Scenario: scen, Figure: "groups sent in (bound 10 s)", Value: sendTime.Seconds(), Unit: "s", Peer: ptr(10), PeerName: "bound"})
	b.add(Row{Scenario: scen, Figure: "webhook errors (503s retried as Alertmanager would: " + fmt.Sprint(rejected.Load()) + ")", Value: float64(errs.Load())})
	if processedAt.IsZero() {
		n, _ := p.storeInt(`SELECT count(*) FROM notifications WHERE state NOT IN ('pending', 'processing')`)
		b.add(Row{Scenario: scen, Figure: fmt.Sprintf("all processed after the last webhook (bound 30 s): %d of %d within %s", n, groups, b.opts.stormWait), Value: nanValue, Text: "not within " + b.opts.stormWait.String()})
	} else {
		b.add(Row{Scenario: scen, Figure: "all processed after the last webhook (bound 30 s)", Value: processedAt.Sub(lastSent).Seconds(), Unit: "s", Peer: ptr(30), PeerName: "bound"})
	}
	if reflectedAt.IsZero() {
		b.add(Row{Scenario: scen, Figure: "last group named in Slack after its webhook (bound 10 s)", Value: nanValue, Text: "not within the wait"})
	} else {
		b.add(Row{Scenario: scen, Figure: "last group named in Slack after its webhook (bound 10 s)", Value: reflectedAt.Sub(lastSent).Seconds(), Unit: "s", Peer: ptr(10), PeerName: "bound"})
	}
	b.add(Row{Scenario: scen, Figure: fmt.Sprintf("groups named in a Slack call (post, reply or update) within %s", observed.Round(time.Second)), Value: float64(named), Peer: ptr(float64(groups)), PeerName: "groups sent"})
	total := 0
	var parts []string
	for _, m := range []string{"chat.postMessage", "chat.update", "conversations.history", "conversations.replies"} {
		total += byMethod[m]
		parts = append(parts, fmt.Sprintf("%s %d", strings.TrimPrefix(m, "chat."), byMethod[m]))
	}
	b.add(Row{Scenario: scen, Figure: fmt.Sprintf("Slack calls in the first %s (%s; bound 30 in 10 min)", observed.Round(time.Second), strings.Join(parts, ", ")), Value: float64(total), Peer: ptr(30), PeerName: "bound"})
	b.add(Row{Scenario: scen, Figure: "top-level messages (bound storm_threshold − 1 + 1 incident = 3)", Value: float64(top), Peer: ptr(3), PeerName: "bound"})
	b.add(Row{Scenario: scen, Figure: "peak RSS of chmedic, VmHWM (bound 150 MiB)", Value: rss, Unit: "MiB", Peer: ptr(150), PeerName: "bound"})
	b.add(Row{Scenario: scen, Figure: "groups in the store (peer: sent)", Value: float64(stored), Peer: ptr(float64(groups)), PeerName: "sent"})
	b.add(Row{Scenario: scen, Figure: "groups in the incident (store)", Value: float64(inIncident), Peer: ptr(float64(groups)), PeerName: "sent"})
	b.add(Row{Scenario: scen, Figure: "groups in the incident or with a message of their own (store)", Value: float64(reflected), Peer: ptr(float64(groups)), PeerName: "sent"})
	b.add(Row{Scenario: scen, Figure: "notifications failed", Value: float64(failed)})
	b.add(Row{Scenario: scen, Figure: "diagnosis rounds (chmedic_diagnosis_rounds_total)", Value: m1["chmedic_diagnosis_rounds_total"] - m0["chmedic_diagnosis_rounds_total"]})
	for _, c := range b.h.env.ClickHouse {
		k := fmt.Sprintf(`chmedic_clickhouse_queries_total{node=%q}`, c.Name)
		if _, ok := m1[k]; !ok {
			k = findSeries(m1, "chmedic_clickhouse_queries_total", c.Name)
		}
		b.add(Row{Scenario: scen, Figure: "ClickHouse queries on " + c.Name + " (chmedic_clickhouse_queries_total)", Value: m1[k] - m0[k]})
	}
}

// findSeries returns the first series of metric whose labels mention value.
func findSeries(m map[string]float64, metric, value string) string {
	for k := range m {
		if strings.HasPrefix(k, metric+"{") && strings.Contains(k, `"`+value+`"`) {
			return k
		}
	}
	return ""
}
