package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

// alertmanagerBoth points the real Alertmanager at both its own Slack
// notifier (slack_configs → the fake's incoming webhook) and chmedic, for
// every alert labelled bench_run=run, grouped by alertname and cluster with
// group_wait 0. Other alerts (an earlier run's, still firing) go to a
// receiver with no integration: a reload regroups every alert, and with
// group_wait 0 they would reach the new chmedic at once.
func (h *harness) alertmanagerBoth(ctx context.Context, chmedicURL, run string) error {
	return h.env.Alertmanager.SetConfig(ctx, map[string]any{
		"route": map[string]any{
			"receiver": "nowhere",
			"group_by": []string{"alertname", "cluster"},
			"routes": []any{map[string]any{
				"receiver":        "both",
				"matchers":        []string{fmt.Sprintf("bench_run=%q", run)},
				"group_by":        []string{"alertname", "cluster"},
				"group_wait":      "0s",
				"group_interval":  "5m",
				"repeat_interval": "4h",
			}},
		},
		"receivers": []any{
			map[string]any{"name": "nowhere"},
			map[string]any{
				"name": "both",
				"slack_configs": []any{map[string]any{
					"api_url": h.amHook, "channel": "#am", "send_resolved": true,
				}},
				"webhook_configs": []any{map[string]any{
					"url": chmedicURL, "send_resolved": true, "max_alerts": 0,
				}},
			},
		},
	})
}

// sideResult is one alert's arrivals.
type sideResult struct {
	token          string
	posted         time.Time // posted to Alertmanager
	am, ch         time.Time // Alertmanager's message, chmedic's first call naming it
	amOK, chOK     bool
	chTopLevelPost bool
}

// sideBySide posts n alerts to Alertmanager, every interval, and finds when
// Alertmanager's own Slack message and chmedic's first message naming each
// arrived.
func (b *bench) sideBySide(ctx context.Context, prefix string, n int, interval time.Duration, o chOptions) ([]sideResult, *chmedicProc, error) {
	p, err := b.h.startChmedic(ctx, strings.ToLower(prefix), o)
	if err != nil {
		return nil, nil, err
	}
	since := time.Now()
	run := fmt.Sprintf("%s%d", prefix, since.UnixMilli()%100000)
	if err := b.h.alertmanagerBoth(ctx, p.webhookURL(), run); err != nil {
		p.stop(sigterm)
		return nil, nil, err
	}
	res := make([]sideResult, n)
	next := time.Now()
	for i := range n {
		time.Sleep(time.Until(next))
		next = next.Add(interval)
		res[i].token = fmt.Sprintf("%sN%03d", run, i)
		res[i].posted = time.Now()
		err := b.h.env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{{
			Labels:      map[string]string{"alertname": res[i].token, "cluster": benchCluster, "severity": "warning", "bench_run": run},
			Annotations: map[string]string{"summary": "bench alert " + res[i].token},
		}})
		if err != nil {
			p.stop(sigterm)
			return nil, nil, err
		}
	}
	find := func() bool {
		calls := b.h.slackCalls(since)
		done := true
		for i := range res {
			r := &res[i]
			r.am, r.amOK = firstNaming(calls, r.token, func(c slackCall) bool { return c.Method == "incoming-webhook" })
			r.ch, r.chOK = firstNaming(calls, r.token, func(c slackCall) bool {
				return c.Method == "chat.postMessage" || c.Method == "chat.update"
			})
			done = done && r.amOK && r.chOK
		}
		return done
	}
	waitUntil(ctx, 15*time.Second, find)
	find()
	return res, p, nil
}

func (b *bench) scenarioSide(ctx context.Context) {
	scen := "Alert to Slack, folding off, 1 alert / 1.5 s"
	n := b.opts.sideN
	res, p, err := b.sideBySide(ctx, "BenchSide", n, 1500*time.Millisecond, chOptions{StormThreshold: 1000000})
	if err != nil {
		b.fail(scen, err)
	} else {
		p.stop(sigterm)
		b.sideRows(scen, res)
	}

	scen = fmt.Sprintf("Alert to Slack, default folding, %d groups in 10 s", b.opts.foldN)
	res, p, err = b.sideBySide(ctx, "BenchFold", b.opts.foldN, 10*time.Second/time.Duration(b.opts.foldN), chOptions{})
	if err != nil {
		b.fail(scen, err)
		return
	}
	p.stop(sigterm)
	b.sideRows(scen, res)
	if len(res) > 0 && res[0].amOK && res[0].chOK {
		b.add(Row{Scenario: scen, Figure: "first group: chmedic's lag behind Alertmanager", Value: ms(res[0].ch.Sub(res[0].am)), Unit: "ms"})
	}
	var worst time.Duration
	for _, r := range res {
		if r.amOK && r.chOK {
			worst = max(worst, r.ch.Sub(r.am))
		}
	}
	b.add(Row{Scenario: scen, Figure: "slowest group reflected after Alertmanager's message (bound 5 s)", Value: ms(worst), Unit: "ms", Peer: ptr(5000), PeerName: "bound"})
	top := 0
	for _, m := range b.h.slack.Messages(p.channel) {
		for _, r := range res {
			if m.ThreadTS == "" && strings.Contains(m.Text+string(m.Blocks), r.token) {
				top++
				break
			}
		}
	}
	b.add(Row{Scenario: scen, Figure: "top-level chmedic messages naming a group", Value: float64(top)})
}

func (b *bench) sideRows(scen string, res []sideResult) {
	var lag, amAbs, chAbs []time.Duration
	missingAM, missingCH := 0, 0
	for _, r := range res {
		if !r.amOK {
			missingAM++
		}
		if !r.chOK {
			missingCH++
		}
		if r.amOK && r.chOK {
			lag = append(lag, r.ch.Sub(r.am))
			amAbs = append(amAbs, r.am.Sub(r.posted))
			chAbs = append(chAbs, r.ch.Sub(r.posted))
		}
	}
	b.add(Row{Scenario: scen, Figure: fmt.Sprintf("alerts measured (of %d)", len(res)), Value: float64(len(lag))})
	b.add(Row{Scenario: scen, Figure: "posted to Alertmanager → message in Slack, p50", Value: percentile(chAbs, 0.5), Unit: "ms", Peer: ptr(percentile(amAbs, 0.5)), PeerName: "Alertmanager's own"})
	b.add(Row{Scenario: scen, Figure: "posted to Alertmanager → message in Slack, p99", Value: percentile(chAbs, 0.99), Unit: "ms", Peer: ptr(percentile(amAbs, 0.99)), PeerName: "Alertmanager's own"})
	b.add(Row{Scenario: scen, Figure: "chmedic's lag behind Alertmanager's message, p50", Value: percentile(lag, 0.5), Unit: "ms"})
	b.add(Row{Scenario: scen, Figure: "chmedic's lag behind Alertmanager's message, p99", Value: percentile(lag, 0.99), Unit: "ms"})
	if missingAM+missingCH > 0 {
		b.add(Row{Scenario: scen, Figure: "alerts with no message within 15 s (chmedic; peer: Alertmanager)", Value: float64(missingCH), Peer: ptr(float64(missingAM)), PeerName: "Alertmanager"})
	}
}
