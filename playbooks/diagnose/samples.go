package diagnose

import (
	"context"
	"time"

	"github.com/chmedic/chmedic/playbooks/probe"
)

// rateProbe is the probe whose counters are kept between rounds.
const rateProbe = "clickhouse.keeper_errors"

// RememberSamples makes the engine keep each node's counter samples between
// rounds, so that a round computes counter rates against the previous one
// instead of waiting to sample twice (the server does this: no wait on the
// path from an alert to its message; `chmedic diagnose` samples twice).
// Call it before the first round.
func (e *Engine) RememberSamples() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.samples == nil {
		e.samples = probe.NewSamples()
	}
}

func (e *Engine) sampleMemory() *probe.Samples {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.samples
}

// KeepSamplesWarm refreshes, every interval until ctx ends, the counter
// sample of each configured ClickHouse node whose last one is older than
// interval (one small system.events query per node, through the node's
// bounded connection), so that even the first round after a quiet period
// has a recent baseline and its message carries rates, not only totals.
// It does nothing unless RememberSamples was called.
func (e *Engine) KeepSamplesWarm(ctx context.Context, interval time.Duration) {
	mem := e.sampleMemory()
	spec, ok := e.opts.Probes[rateProbe]
	if mem == nil || !ok || interval <= 0 {
		return
	}
	warm := func() {
		for _, name := range e.Clusters() {
			c := e.clusters[name]
			for _, n := range c.ClickHouse {
				if ctx.Err() != nil {
					return
				}
				if s, ok := mem.Get(probe.SampleKey(rateProbe, c.Name, n.Name)); ok && e.opts.Now().Sub(s.At) < interval {
					continue // a round sampled it recently
				}
				pctx, cancel := context.WithTimeout(ctx, e.opts.ProbeTimeout)
				e.runOne(pctx, spec, e.target(c, n))
				cancel()
			}
		}
	}
	warm()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			warm()
		}
	}
}
