package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// scenarioOutage: Slack answers 503 for the outage, then 429 with
// Retry-After for a sixth of it (at least 2 s); alerts arrive during the
// outage, before and after a chmedic restart (SIGTERM, same store). Every
// alert must be posted once on recovery.
func (b *bench) scenarioOutage(ctx context.Context) {
	outage := b.opts.outage
	limited := max(outage/6, 2*time.Second)
	scen := fmt.Sprintf("Slack outage: 503 for %s, then 429 (Retry-After 2 s) for %s, chmedic restarted during it", outage, limited)
	p, err := b.h.startChmedic(ctx, "outage", chOptions{StormThreshold: 1000000})
	if err != nil {
		b.fail(scen, err)
		return
	}
	defer p.stop(sigterm)
	perPhase := 3
	run := fmt.Sprintf("O%d", time.Now().UnixMilli()%100000)
	var tokens []string
	send := func(phase string) error {
		for i := range perPhase {
			tok := fmt.Sprintf("%s%sN%d", run, phase, i)
			tokens = append(tokens, tok)
			group := map[string]string{"alertname": tok, "cluster": benchCluster}
			body := webhookPayload(fmt.Sprintf(`{}/{}:{alertname=%q, cluster=%q}`, tok, benchCluster), group,
				[]alertSpec{{Labels: map[string]string{"alertname": tok, "cluster": benchCluster}, Annotations: map[string]string{"summary": "during a Slack outage"}}}, time.Now())
			code, _, err := newPoster(1).post(ctx, p.webhookURL(), body)
			if err != nil || code != 200 {
				return fmt.Errorf("post %s: %d %v", tok, code, err)
			}
			time.Sleep(300 * time.Millisecond)
		}
		return nil
	}
	t0 := time.Now()
	b.h.slack.SetOutage(true)
	b.logf("outage: Slack down for %s", outage)
	if err := send("before"); err != nil {
		b.h.slack.SetOutage(false)
		b.fail(scen, err)
		return
	}
	time.Sleep(time.Until(t0.Add(outage / 2)))
	p.stop(sigterm)
	if err := p.start(ctx); err != nil {
		b.h.slack.SetOutage(false)
		b.fail(scen, fmt.Errorf("restart: %w", err))
		return
	}
	if err := send("after"); err != nil {
		b.h.slack.SetOutage(false)
		b.fail(scen, err)
		return
	}
	time.Sleep(time.Until(t0.Add(outage)))
	b.h.slack.SetRateLimited(2 * time.Second)
	b.h.slack.SetOutage(false)
	time.Sleep(limited)
	b.h.slack.ClearRateLimited()
	recovered := time.Now()
	b.logf("outage: Slack back; waiting for %d messages", len(tokens))

	count := func() (delivered, dup int) {
		msgs := b.h.slack.Messages(p.channel)
		for _, t := range tokens {
			n := 0
			for _, m := range msgs {
				if m.ThreadTS == "" && strings.Contains(m.Text+string(m.Blocks), t) {
					n++
				}
			}
			if n > 0 {
				delivered++
			}
			if n > 1 {
				dup += n - 1
			}
		}
		return
	}
	var doneAt time.Time
	waitUntil(ctx, 5*time.Minute/2, func() bool {
		d, _ := count()
		if d == len(tokens) {
			doneAt = time.Now()
			return true
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})
	time.Sleep(3 * time.Second) // a late duplicate would show now
	delivered, dup := count()
	calls := b.h.slack.Calls()
	n503, n429 := 0, 0
	for _, c := range calls {
		if c.Time.Before(t0) {
			continue
		}
		switch c.Status {
		case 503:
			n503++
		case 429:
			n429++
		}
	}
	b.add(Row{Scenario: scen, Figure: "alerts delivered (peer: sent during the outage)", Value: float64(delivered), Peer: ptr(float64(len(tokens))), PeerName: "sent"})
	b.add(Row{Scenario: scen, Figure: "duplicated top-level messages", Value: float64(dup)})
	b.add(Row{Scenario: scen, Figure: "lost", Value: float64(len(tokens) - delivered)})
	if doneAt.IsZero() {
		b.add(Row{Scenario: scen, Figure: "all delivered after Slack recovered", Value: nanValue, Text: "not within 150 s"})
	} else {
		b.add(Row{Scenario: scen, Figure: "all delivered after Slack recovered (backoff capped at 5 m)", Value: doneAt.Sub(recovered).Seconds(), Unit: "s"})
	}
	b.add(Row{Scenario: scen, Figure: "calls answered 503 during the run", Value: float64(n503)})
	b.add(Row{Scenario: scen, Figure: "calls answered 429 during the run", Value: float64(n429)})
}
