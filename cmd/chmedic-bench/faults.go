package main

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

const sigterm = syscall.SIGTERM

// fault is one broken-node case: break, the cluster label the alert
// carries, repair.
type fault struct {
	name    string
	cluster string
	channel string
	brk     func(context.Context) error
	repair  func(context.Context) error
}

// postAndWait posts a one-alert group named token for cluster straight to
// chmedic and returns how long until a chat.postMessage in channel named
// it (false: not within wait).
func (b *bench) postAndWait(ctx context.Context, p *chmedicProc, token, cluster, channel string, wait time.Duration) (time.Duration, bool, error) {
	group := map[string]string{"alertname": token, "cluster": cluster}
	body := webhookPayload(fmt.Sprintf(`{}/{}:{alertname=%q, cluster=%q}`, token, cluster), group,
		[]alertSpec{{Labels: map[string]string{"alertname": token, "cluster": cluster, "severity": "critical"}, Annotations: map[string]string{"summary": "bench fault " + token}}}, time.Now())
	since := time.Now()
	code, _, err := newPoster(1).post(ctx, p.webhookURL(), body)
	if err != nil || code != 200 {
		return 0, false, fmt.Errorf("post: %d %v", code, err)
	}
	var at time.Time
	ok := waitUntil(ctx, wait, func() bool {
		t, found := firstNaming(b.h.slackCalls(since), token, func(c slackCall) bool { return c.Method == "chat.postMessage" && c.Channel == channel })
		at = t
		return found
	})
	return at.Sub(since), ok, nil
}

func (b *bench) scenarioFaults(ctx context.Context) {
	scen := "Hung and dead nodes, time to a posted message"
	p, err := b.h.startChmedic(ctx, "faults", chOptions{StormThreshold: 1000000, CacheTTL: "0s"})
	if err != nil {
		b.fail(scen, err)
		return
	}
	defer p.stop(sigterm)
	env := b.h.env
	none := func(context.Context) error { return nil }
	healthy := func(ctx context.Context) error {
		hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		return env.WaitHealthy(hctx)
	}
	faults := []fault{
		{"healthy cluster (reference)", benchCluster, p.channel, none, none},
		{"a ClickHouse address that accepts TCP and never answers", "hung", p.hungChannel, none, none},
		{"one ClickHouse replica stopped", benchCluster, p.channel,
			func(ctx context.Context) error { return env.ClickHouse[1].Stop(ctx) },
			func(ctx context.Context) error {
				if err := env.ClickHouse[1].Start(ctx); err != nil {
					return err
				}
				return healthy(ctx)
			}},
		{"ZooKeeper paused (SIGSTOP)", benchCluster, p.channel,
			func(context.Context) error { return env.ZooKeeper.Pause() },
			func(ctx context.Context) error {
				if err := env.ZooKeeper.Resume(); err != nil {
					return err
				}
				return healthy(ctx)
			}},
		{"ZooKeeper stopped", benchCluster, p.channel,
			func(ctx context.Context) error { return env.ZooKeeper.Stop(ctx) },
			func(ctx context.Context) error {
				if err := env.ZooKeeper.Start(ctx); err != nil {
					return err
				}
				return healthy(ctx)
			}},
	}
	bound := ms(defaultBudget + time.Second)
	for i, f := range faults {
		b.logf("faults: %s", f.name)
		if err := f.brk(ctx); err != nil {
			b.fail(scen+": "+f.name, err)
			continue
		}
		time.Sleep(1200 * time.Millisecond) // past the per-channel pacing of the previous post
		token := fmt.Sprintf("BenchFault%02d", i)
		d, ok, err := b.postAndWait(ctx, p, token, f.cluster, f.channel, 20*time.Second)
		switch {
		case err != nil:
			b.fail(scen+": "+f.name, err)
		case !ok:
			b.add(Row{Scenario: scen, Figure: f.name, Value: nanValue, Text: "no message within 20 s"})
		default:
			b.add(Row{Scenario: scen, Figure: f.name + " (bound: budget " + defaultBudget.String() + " + 1 s)", Value: ms(d), Unit: "ms", Peer: ptr(bound), PeerName: "bound"})
		}
		if err := f.repair(ctx); err != nil {
			b.fail(scen+": repair after "+f.name, err)
		}
	}
}
