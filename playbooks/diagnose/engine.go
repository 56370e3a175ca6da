package diagnose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// Cluster is what a round examines.
type Cluster struct {
	Name           string
	ClickHouse     []ClickHouseNode
	Keeper         []KeeperNode
	KeeperCommands []string
	// KeeperKind is clusters[].keeper.kind ("zookeeper" or
	// "clickhouse-keeper"): it decides how the four-letter-word answers
	// are read and which advice is given. Empty: each node's own answer
	// decides, else ZooKeeper.
	KeeperKind string
	// Discover, when set, returns more ClickHouse nodes (found in
	// system.clusters on a seed node); it caches and bounds itself.
	Discover func(ctx context.Context) ([]ClickHouseNode, error)
}

// ClickHouseNode is one ClickHouse server and its bounded connection.
type ClickHouseNode struct {
	Name string
	Addr string
	Conn probe.ClickHouse
	// Shard (1-based) and Replica place the node in the cluster's layout
	// (clusters[].clickhouse.nodes[].shard, .replica). Shard 0 is unknown
	// (e.g. a discovered node): such a node is left out of the per-shard
	// verdict. Replica defaults to Name.
	Shard   int
	Replica string
}

// KeeperNode is one ZooKeeper / ClickHouse Keeper server.
type KeeperNode struct {
	Name string
	Addr string
}

// KeeperClient runs four-letter words against one coordination node,
// sequentially and bounded.
type KeeperClient interface {
	Snapshot(ctx context.Context, addr string, cmds []string) keeper.Snapshot
}

// Options configure an Engine.
type Options struct {
	ProbeTimeout time.Duration // default 2s
	Budget       time.Duration // default 5s
	CacheTTL     time.Duration // default 15s; 0 keeps the default, negative disables
	Thresholds   probe.Thresholds
	Probes       map[string]probe.Spec
	Keeper       KeeperClient
	Now          func() time.Time
	Log          *slog.Logger
	Registerer   prometheus.Registerer
}

// Engine runs diagnosis rounds, at most one in flight per cluster.
type Engine struct {
	opts     Options
	clusters map[string]*Cluster
	group    singleflight.Group

	mu    sync.Mutex
	cache map[string]*Diagnosis
	// zxids holds, per cluster and coordination node, the zxid seen by the
	// previous round (one entry per configured node: bounded), so that a
	// round can tell that the epoch just changed.
	zxids map[string]map[string]zxidMark
	// samples, when set (RememberSamples), keeps counter samples between
	// rounds (samples.go).
	samples *probe.Samples

	rounds   *prometheus.CounterVec
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	probes   *prometheus.CounterVec
}

// ErrUnknownCluster is returned for a cluster the engine was not given.
var ErrUnknownCluster = errors.New("unknown cluster")

// New builds an engine over the given clusters.
func New(clusters []*Cluster, o Options) *Engine {
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = 2 * time.Second
	}
	if o.Budget <= 0 {
		o.Budget = 5 * time.Second
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Probes == nil {
		o.Probes = probe.Builtin()
	}
	if o.Thresholds == (probe.Thresholds{}) {
		o.Thresholds = probe.DefaultThresholds()
	}
	if o.Thresholds.ZxidWarnShare == 0 {
		// Callers that predate the threshold get the configuration's default.
		o.Thresholds.ZxidWarnShare = probe.DefaultThresholds().ZxidWarnShare
	}
	e := &Engine{
		opts:     o,
		clusters: make(map[string]*Cluster, len(clusters)),
		cache:    make(map[string]*Diagnosis),
		zxids:    make(map[string]map[string]zxidMark),
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_diagnosis_rounds_total", Help: "Diagnosis rounds actually run (probes sent), by cluster.",
		}, []string{"cluster"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_diagnosis_requests_total", Help: "Diagnoses asked for, by cluster and how they were served (round, shared, cached).",
		}, []string{"cluster", "served"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "chmedic_diagnosis_duration_seconds", Help: "Wall time of one diagnosis round.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2, 3, 5, 8},
		}, []string{"cluster"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_probe_results_total", Help: "Probe results, by probe and status.",
		}, []string{"probe", "status"}),
	}
	for _, c := range clusters {
		e.clusters[c.Name] = c
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(e.rounds, e.requests, e.duration, e.probes)
	}
	return e
}

// Clusters lists the cluster names, sorted.
func (e *Engine) Clusters() []string {
	names := make([]string, 0, len(e.clusters))
	for n := range e.clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Diagnose returns a diagnosis of the cluster: a cached one younger than the
// TTL, the one already in flight, or a new round. The round is not cancelled
// when ctx is (other callers may share it); ctx only bounds this caller's wait.
func (e *Engine) Diagnose(ctx context.Context, cluster string) (*Diagnosis, error) {
	c, ok := e.clusters[cluster]
	if !ok {
		return nil, fmt.Errorf("diagnose %q: %w", cluster, ErrUnknownCluster)
	}
	if d := e.cached(cluster); d != nil {
		e.requests.WithLabelValues(cluster, "cached").Inc()
		return d, nil
	}
	ch := e.group.DoChan(cluster, func() (any, error) {
		// Re-check: a round may have finished between cached() and DoChan.
		if d := e.cached(cluster); d != nil {
			return d, nil
		}
		d := e.round(context.WithoutCancel(ctx), c)
		e.mu.Lock()
		e.cache[cluster] = d
		e.mu.Unlock()
		return d, nil
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("diagnose %q: %w", cluster, ctx.Err())
	case r := <-ch:
		d := *r.Val.(*Diagnosis)
		if r.Shared {
			d.Shared = true
			e.requests.WithLabelValues(cluster, "shared").Inc()
		} else {
			e.requests.WithLabelValues(cluster, "round").Inc()
		}
		return &d, nil
	}
}

func (e *Engine) cached(cluster string) *Diagnosis {
	if e.opts.CacheTTL < 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	d, ok := e.cache[cluster]
	if !ok || e.opts.Now().Sub(d.Started.Add(d.Duration)) >= e.opts.CacheTTL {
		return nil
	}
	cp := *d
	cp.Shared = true
	return &cp
}

type pending struct {
	spec probe.Spec
	node string
}

// round runs every probe once against the cluster within the budget.
func (e *Engine) round(parent context.Context, c *Cluster) *Diagnosis {
	start := e.opts.Now()
	e.rounds.WithLabelValues(c.Name).Inc()
	ctx, cancel := context.WithTimeout(parent, e.opts.Budget)
	defer cancel()

	var discovery []probe.Result
	if c.Discover != nil {
		dctx, dcancel := context.WithTimeout(ctx, e.opts.ProbeTimeout)
		more, err := c.Discover(dctx)
		dcancel()
		cc := *c
		cc.ClickHouse = append(append([]ClickHouseNode(nil), c.ClickHouse...), more...)
		c = &cc
		r := probe.Result{Probe: "clickhouse.discovery", Status: probe.OK, Started: start, Duration: e.opts.Now().Sub(start),
			Summary: fmt.Sprintf("%d nodes (%d discovered from system.clusters)", len(c.ClickHouse), len(more))}
		if err != nil {
			r.Status = probe.Unknown
			r.Error = err.Error()
			r.Summary = "could not discover nodes from system.clusters; probing the configured nodes only: " + probe.OneLine(err.Error(), 200)
		}
		discovery = append(discovery, r)
	}

	var keeperSpecs, cheap, expensive []probe.Spec
	for _, name := range sortedNames(e.opts.Probes) {
		s := e.opts.Probes[name]
		switch {
		case s.Kind == probe.KindKeeper:
			keeperSpecs = append(keeperSpecs, s)
		case s.Expensive || s.PerCluster:
			expensive = append(expensive, s)
		default:
			cheap = append(cheap, s)
		}
	}

	// Every probe reports exactly once into out, which is large enough
	// that a straggler finishing after the budget never blocks.
	// (+len(expensive): a cluster-wide probe reports once even with no node.)
	total := len(cheap)*len(c.ClickHouse) + len(keeperSpecs)*len(c.Keeper) + len(expensive)*(len(c.ClickHouse)+1)
	out := make(chan probe.Result, total+1)
	var wg sync.WaitGroup
	var want []pending

	run := func(s probe.Spec, t *probe.Target) {
		defer wg.Done()
		pctx, pcancel := context.WithTimeout(ctx, e.opts.ProbeTimeout)
		defer pcancel()
		out <- e.runOne(pctx, s, t)
	}

	// Coordination nodes: one bounded, sequential snapshot per node.
	snaps := make([]keeper.Snapshot, len(c.Keeper))
	var kwg sync.WaitGroup
	if e.opts.Keeper != nil {
		for i, kn := range c.Keeper {
			kwg.Add(1)
			go func() {
				defer kwg.Done()
				snaps[i] = e.opts.Keeper.Snapshot(ctx, kn.Addr, c.KeeperCommands)
			}()
		}
	}

	// Cheap ClickHouse probes start at once on every node.
	pings := make(map[string]chan probe.Result)
	for _, n := range c.ClickHouse {
		for _, s := range cheap {
			want = append(want, pending{s, n.Name})
			wg.Add(1)
			t := e.target(c, n)
			if s.Name == "clickhouse.ping" {
				ch := make(chan probe.Result, 1)
				pings[n.Name] = ch
				go func() {
					defer wg.Done()
					pctx, pcancel := context.WithTimeout(ctx, e.opts.ProbeTimeout)
					defer pcancel()
					r := e.runOne(pctx, s, t)
					ch <- r
					out <- r
				}()
				continue
			}
			go run(s, t)
		}
	}

	// Keeper results, then the verdict that gates the expensive probes.
	kwg.Wait()
	if e.opts.Keeper != nil {
		for i, kn := range c.Keeper {
			snap := snaps[i]
			for _, s := range keeperSpecs {
				want = append(want, pending{s, kn.Name})
				t := &probe.Target{Cluster: c.Name, Node: kn.Name, Addr: kn.Addr, Keeper: &snap, KeeperKind: keeper.ParseFlavor(c.KeeperKind),
					Thresholds: e.opts.Thresholds, Now: e.opts.Now}
				out <- e.runOne(ctx, s, t)
			}
		}
	}
	skipReason := e.keeperSevere(c, snaps)

	// Expensive probes: on every node, or, for cluster-wide ones, on the
	// first node (in config order) that answers ping.
	first := firstUp(ctx, c.ClickHouse, pings)
	for _, s := range expensive {
		nodes := c.ClickHouse
		if s.PerCluster {
			nodes = nil
			if first != nil {
				nodes = []ClickHouseNode{*first}
			}
		}
		if s.PerCluster && first == nil {
			want = append(want, pending{s, ""})
			out <- probe.Result{Probe: s.Name, Status: probe.Unknown, Skipped: "no ClickHouse node answers", Started: e.opts.Now()}
			continue
		}
		for _, n := range nodes {
			want = append(want, pending{s, n.Name})
			if skipReason != "" {
				out <- probe.Result{Probe: s.Name, Node: n.Name, Status: probe.Unknown, Skipped: skipReason, Started: e.opts.Now()}
				continue
			}
			wg.Add(1)
			go run(s, e.target(c, n))
		}
	}

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		// Probes honour their contexts; give them a moment to report.
		select {
		case <-done:
		case <-time.After(100 * time.Millisecond):
		}
	}
	type key struct{ probe, node string }
	got := map[key]probe.Result{}
	for len(out) > 0 {
		r := <-out
		got[key{r.Probe, r.Node}] = r
	}
	results := make([]probe.Result, 0, len(want)+len(discovery))
	results = append(results, discovery...)
	for _, p := range want {
		r, ok := got[key{p.spec.Name, p.node}]
		if !ok {
			r = probe.Result{Probe: p.spec.Name, Node: p.node, Status: probe.Unknown,
				Summary: fmt.Sprintf("no answer within the %s diagnosis budget", e.opts.Budget),
				Error:   "diagnosis budget exhausted", Started: start}
		}
		results = append(results, r)
		e.probes.WithLabelValues(r.Probe, r.Status.String()).Inc()
	}
	e.markZxids(c.Name, results)
	d := &Diagnosis{Cluster: c.Name, Started: start, Results: results, SkippedExpensive: skipReason}
	d.Findings, d.Causes, d.Verdict, d.Status = analyzeRound(input{
		results: results, th: e.opts.Thresholds, now: start,
		kind: keeper.ParseFlavor(c.KeeperKind), layout: layoutOf(c),
	})
	for _, f := range d.Findings {
		if f.Probe == "cluster.shards" {
			d.UnavailableShards = append(d.UnavailableShards, f.Shard)
		}
	}
	d.NotAvailable = notAvailable(results)
	d.Skipped = skipped(results, skipReason)
	d.Duration = e.opts.Now().Sub(start)
	e.duration.WithLabelValues(c.Name).Observe(d.Duration.Seconds())
	e.opts.Log.Info("diagnosis round finished", "cluster", c.Name, "duration", d.Duration, "status", d.Status.String(),
		"findings", len(d.Findings), "verdict", d.Verdict)
	return d
}

func (e *Engine) target(c *Cluster, n ClickHouseNode) *probe.Target {
	return &probe.Target{Cluster: c.Name, Node: n.Name, Addr: n.Addr, ClickHouse: n.Conn, Thresholds: e.opts.Thresholds, Now: e.opts.Now,
		Samples: e.sampleMemory()}
}

func (e *Engine) runOne(ctx context.Context, s probe.Spec, t *probe.Target) (r probe.Result) {
	start := e.opts.Now()
	defer func() {
		if p := recover(); p != nil {
			r = probe.Result{Status: probe.Unknown, Summary: "probe failed unexpectedly", Error: fmt.Sprint(p)}
			e.opts.Log.Error("probe panicked", "probe", s.Name, "node", t.Node, "panic", p)
		}
		r.Probe, r.Node = s.Name, t.Node
		if s.Kind == probe.KindKeeper && !r.Started.IsZero() {
			// Keeper probes evaluate the round's snapshot and report the
			// real time of their word's exchange.
			return
		}
		r.Started = start
		r.Duration = e.opts.Now().Sub(start)
	}()
	return s.Run(ctx, t)
}

// keeperSevere says why the expensive probes must not run, or "".
func (e *Engine) keeperSevere(c *Cluster, snaps []keeper.Snapshot) string {
	if len(c.Keeper) == 0 || e.opts.Keeper == nil {
		return ""
	}
	th := e.opts.Thresholds
	answering := 0
	for i, s := range snaps {
		if s.Unreachable || len(s.All) == 0 {
			continue
		}
		answering++
		avg, outstanding, measured := 0.0, int64(0), false
		if m := s.Mntr; m != nil && m.Err == nil {
			avg, outstanding, measured = m.Value.AvgLatency, m.Value.OutstandingRequests, true
		} else if sv := s.Srvr; sv != nil && sv.Err == nil {
			// srvr: the one word ZooKeeper 3.5+ allows by default.
			avg, outstanding, measured = sv.Value.LatencyAvg, sv.Value.Outstanding, true
		}
		if measured {
			if avg >= ms(th.KeeperLatencyCrit) {
				return fmt.Sprintf("coordination node %s already measured severely degraded (average latency %.0f ms ≥ %s); not adding load", c.Keeper[i].Name, avg, th.KeeperLatencyCrit)
			}
			if outstanding >= int64(th.OutstandingRequestsCrit) {
				return fmt.Sprintf("coordination node %s already has %d outstanding requests (≥ %d); not adding load", c.Keeper[i].Name, outstanding, th.OutstandingRequestsCrit)
			}
		}
	}
	if answering == 0 {
		return fmt.Sprintf("none of the %d coordination nodes answers; queries through it would only wait and retry", len(c.Keeper))
	}
	return ""
}

func sortedNames(m map[string]probe.Spec) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// firstUp waits for the nodes' ping results in order and returns the first
// node that is up (nil when none is, or the budget ends first). Without a
// ping probe the first node is taken on trust.
func firstUp(ctx context.Context, nodes []ClickHouseNode, pings map[string]chan probe.Result) *ClickHouseNode {
	for i := range nodes {
		ch, ok := pings[nodes[i].Name]
		if !ok {
			return &nodes[i]
		}
		select {
		case r := <-ch:
			if up, _ := r.Fact("up"); up == 1 {
				return &nodes[i]
			}
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}
