package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/schedule"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/digest"
)

// DigestDeps are what a digest service is built from.
type DigestDeps struct {
	Config    *config.Config
	Diagnoser digest.Diagnoser
	Clusters  []*diagnose.Cluster
	Store     *store.Store // nil: no history, no alerts, no outbox figures
	Playbooks *playbooks.Set
	// Gatherer, when set, is the registry of the process serving the
	// webhook (its rejection counter is read); nil outside `serve`.
	Gatherer prometheus.Gatherer
	Started  time.Time
	// Freezes is provided by the DDL freeze action; nil until it exists
	// (the digest then says "not available yet"). Approvals and ActionLog
	// default to the store's requests and executions.
	Freezes   digest.FreezesSource
	Approvals digest.ApprovalsSource
	ActionLog digest.ActionsSource
	Log       *slog.Logger
	Now       func() time.Time
}

// NewDigestService builds the digest service over the diagnosis engine and
// the store (history, alerts, outbox, requests awaiting a decision,
// executions).
func NewDigestService(d DigestDeps) *digest.Service {
	o := digest.Options{
		Diagnoser:    d.Diagnoser,
		Growth:       growthOf(d.Config),
		QueryTimeout: d.Config.Diagnosis.ProbeTimeout,
		Now:          d.Now,
		Log:          d.Log,
		Freezes:      d.Freezes,
		Approvals:    d.Approvals,
		ActionLog:    d.ActionLog,
	}
	if len(d.Clusters) > 0 {
		byName := map[string][]diagnose.ClickHouseNode{}
		for _, c := range d.Clusters {
			byName[c.Name] = c.ClickHouse
		}
		o.Nodes = func(cluster string) []diagnose.ClickHouseNode { return byName[cluster] }
	}
	if d.Store != nil {
		o.History = storeHistory{d.Store}
		o.Alerts = &storeAlerts{st: d.Store, cfg: d.Config}
		o.Outbox = storeOutbox{d.Store}
		if o.Approvals == nil {
			o.Approvals = storeApprovals{d.Store}
		}
		if o.ActionLog == nil {
			o.ActionLog = storeActionLog{d.Store}
		}
	}
	if d.Gatherer != nil {
		o.Rejection = registryRejections{g: d.Gatherer, started: d.Started}
	} else {
		o.Rejection = noRejections{}
	}
	if d.Playbooks != nil {
		o.Playbooks = playbookActions(d.Playbooks)
	}
	return digest.New(o)
}

func growthOf(cfg *config.Config) map[string]digest.Growth {
	g := cfg.Digests.Growth
	conv := func(t config.GrowthThreshold) digest.Growth { return digest.Growth{Percent: t.Percent, Min: t.Min} }
	return map[string]digest.Growth{
		digest.TrendZnodes: conv(g.Znodes), digest.TrendWatches: conv(g.Watches), digest.TrendReplicatedTables: conv(g.ReplicatedTables),
		digest.TrendDDL: conv(g.DDL), digest.TrendConnections: conv(g.Connections),
	}
}

func playbookActions(set *playbooks.Set) digest.Playbooks {
	return func(name string) (string, []digest.PlaybookAction, bool) {
		pb, ok := set.Get(name)
		if !ok {
			return "", nil, false
		}
		var out []digest.PlaybookAction
		for _, a := range pb.Actions {
			k := actions.Catalog()[a.Kind]
			label := a.Label
			if label == "" {
				label = k.Label
			}
			out = append(out, digest.PlaybookAction{Kind: a.Kind, Label: label, Params: actions.WithDefaults(a.Kind, a.Params), Danger: k.Danger, Confirm: k.Confirm})
		}
		return pb.Title, out, true
	}
}

// BuildDigestEngine is BuildEngine for `chmedic digest`: the engine and
// its clusters (whose bounded connections the digest's own reads use).
func BuildDigestEngine(cfg *config.Config, log *slog.Logger) (*diagnose.Engine, []*diagnose.Cluster, func() error, error) {
	return buildEngine(cfg, log, nil)
}

// storeHistory keeps digests in the store, one record per cluster.
type storeHistory struct{ st *store.Store }

func (h storeHistory) Previous(ctx context.Context, cluster string) (*digest.Digest, error) {
	r, err := h.st.LatestDigest(ctx, cluster)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d digest.Digest
	if err := json.Unmarshal(r.Body, &d); err != nil {
		return nil, fmt.Errorf("stored digest %d of %q: %w", r.ID, cluster, err)
	}
	return &d, nil
}

func (h storeHistory) Save(ctx context.Context, d *digest.Digest) error {
	var errs []error
	for _, c := range d.Clusters {
		one := *d
		one.Clusters = []*digest.Cluster{c}
		one.Verdict = c.Verdict.Worse(d.Chmedic.Verdict)
		body, err := json.Marshal(&one)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := h.st.SaveDigest(ctx, store.DigestRecord{Cluster: c.Name, Name: d.Name, Source: d.Source, Verdict: string(c.Verdict),
			CreatedAt: d.GeneratedAt, Body: body}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// maxAlertPayloads bounds the notifications a digest reads.
const maxAlertPayloads = 5000

// storeAlerts counts the alerts received, per cluster, from the stored
// notifications: distinct alerts (by fingerprint) that fired, and the
// notifications that carried them, by alert name.
type storeAlerts struct {
	st  *store.Store
	cfg *config.Config

	mu    sync.Mutex
	since time.Time
	at    time.Time
	byCl  map[string]digest.Alerts
}

func (a *storeAlerts) AlertsSince(ctx context.Context, cluster string, since time.Time) (digest.Alerts, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	// One read serves every cluster of one digest.
	if a.byCl == nil || !a.since.Equal(since) || time.Since(a.at) > 10*time.Second {
		m, err := a.read(ctx, since)
		if err != nil {
			return digest.Alerts{}, err
		}
		a.byCl, a.since, a.at = m, since, time.Now()
	}
	r := a.byCl[cluster]
	if r.ByName == nil {
		r.ByName = []digest.AlertCount{}
	}
	return r, nil
}

func (a *storeAlerts) read(ctx context.Context, since time.Time) (map[string]digest.Alerts, error) {
	payloads, truncated, err := a.st.NotificationPayloadsSince(ctx, since, maxAlertPayloads)
	if err != nil {
		return nil, err
	}
	type key struct{ cluster, name string }
	firing := map[key]map[string]bool{}
	notes := map[key]int{}
	for _, p := range payloads {
		var data template.Data
		if json.Unmarshal(p, &data) != nil {
			continue
		}
		seen := map[key]bool{}
		for _, al := range data.Alerts {
			lset := map[string]string{}
			for k, v := range data.CommonLabels {
				lset[k] = v
			}
			for k, v := range al.Labels {
				lset[k] = v
			}
			cl, ok := a.cfg.ClusterFor(lset)
			if !ok {
				continue
			}
			k := key{cl.Name, lset["alertname"]}
			if !seen[k] {
				seen[k] = true
				notes[k]++
			}
			if al.Status == "firing" {
				if firing[k] == nil {
					firing[k] = map[string]bool{}
				}
				id := al.Fingerprint
				if id == "" {
					id = labelKey(al.Labels)
				}
				firing[k][id] = true
			}
		}
	}
	out := map[string]digest.Alerts{}
	for k, n := range notes {
		r := out[k.cluster]
		r.ByName = append(r.ByName, digest.AlertCount{Name: k.name, Firing: len(firing[k]), Notifications: n})
		r.Truncated = truncated
		out[k.cluster] = r
	}
	for c, r := range out {
		sort.Slice(r.ByName, func(i, j int) bool {
			if r.ByName[i].Firing != r.ByName[j].Firing {
				return r.ByName[i].Firing > r.ByName[j].Firing
			}
			return r.ByName[i].Name < r.ByName[j].Name
		})
		out[c] = r
	}
	return out, nil
}

func labelKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + m[k] + ",")
	}
	return b.String()
}

type storeOutbox struct{ st *store.Store }

func (o storeOutbox) OutboxHealth(ctx context.Context, since time.Time) (int64, int64, error) {
	m, err := o.st.OutboxCounts(ctx)
	if err != nil {
		return 0, 0, err
	}
	given, err := o.st.OutboxGivenUpSince(ctx, since)
	if err != nil {
		return 0, 0, err
	}
	return int64(m[store.OutboxPending] + m[store.OutboxSending]), given, nil
}

// registryRejections reads chmedic_webhook_rejected_total from the serving
// process's registry (a counter only: the store does not record refused
// requests, so a flood of bad requests never turns into writes).
type registryRejections struct {
	g       prometheus.Gatherer
	started time.Time
}

func (r registryRejections) Rejections(context.Context) (map[string]float64, time.Time, bool, error) {
	mfs, err := r.g.Gather()
	if err != nil {
		return nil, time.Time{}, false, err
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "chmedic_webhook_rejected_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			reason := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" {
					reason = l.GetValue()
				}
			}
			out[reason] += m.GetCounter().GetValue()
		}
	}
	return out, r.started, true, nil
}

type noRejections struct{}

func (noRejections) Rejections(context.Context) (map[string]float64, time.Time, bool, error) {
	return nil, time.Time{}, false, nil
}

// DigestThreadKey is the thread key of one posted digest: every run is a
// new top-level message. A scheduled time posted again (the run was cut
// short by a crash after it was queued) updates its message instead of
// posting a second one.
func DigestThreadKey(name string, at time.Time) string {
	if name == "" {
		name = "on-demand"
	}
	return fmt.Sprintf("digest:%s:%d", name, at.UnixMilli())
}

// PostDigest offers the digest's actions (so that the buttons carry request
// ids, as alert messages' do) and queues it in the durable outbox as a
// top-level message. It returns the outbox id.
func PostDigest(ctx context.Context, st *store.Store, d *digest.Digest, channel, threadKey string) (int64, error) {
	for _, c := range d.Clusters {
		for i := range c.Actions {
			a := &c.Actions[i]
			id, err := st.OfferAction(ctx, store.ActionRequest{
				OfferKey: fmt.Sprintf("%s/%s/%d", threadKey, c.Name, i), Kind: a.Kind, Params: a.Params,
				Cluster: c.Name, ThreadKey: threadKey, AlertStart: d.GeneratedAt,
			})
			if err != nil {
				return 0, err
			}
			a.RequestID = id
		}
	}
	msg := chslack.RenderDigest(d)
	var plain strings.Builder
	digest.WriteText(&plain, d)
	msg.Plain = plain.String()
	body, err := json.Marshal(msg)
	if err != nil {
		return 0, err
	}
	return st.UpsertThreadMessage(ctx, store.Thread{Key: threadKey, Channel: channel, Status: string(d.Verdict)}, body)
}

// kicker wakes the outbox worker.
type kicker interface{ Kick() }

// DigestScheduler runs the configured digests on their schedules and posts
// them through the outbox; missed runs are posted once at start-up.
type DigestScheduler struct {
	cfg     *config.Config
	svc     *digest.Service
	st      *store.Store
	outbox  kicker
	log     *slog.Logger
	now     func() time.Time
	after   func(time.Duration) <-chan time.Time
	entries []digestEntry
	wg      sync.WaitGroup
	runs    *prometheus.CounterVec
}

type digestEntry struct {
	conf  config.DigestSchedule
	sched *schedule.Schedule
}

// NewDigestScheduler builds the scheduler (specs were validated with the
// config; one that fails here is logged and left out). now and after may
// be nil (the real clock).
func NewDigestScheduler(cfg *config.Config, svc *digest.Service, st *store.Store, outbox kicker, log *slog.Logger,
	now func() time.Time, after func(time.Duration) <-chan time.Time) *DigestScheduler {
	if now == nil {
		now = time.Now
	}
	if after == nil {
		after = time.After
	}
	s := &DigestScheduler{cfg: cfg, svc: svc, st: st, outbox: outbox, log: log, now: now, after: after}
	for _, c := range cfg.Digests.Schedules {
		sc, err := schedule.Parse(c.Schedule, c.TimeZone)
		if err != nil {
			log.Error("digest schedule left out", "digest", c.Name, "err", err)
			continue
		}
		s.entries = append(s.entries, digestEntry{conf: c, sched: sc})
	}
	return s
}

// Register exports chmedic_digest_runs_total{digest,outcome} (outcome:
// healthy, watch, act, skipped, failed, interrupted).
func (s *DigestScheduler) Register(reg prometheus.Registerer) {
	s.runs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chmedic_digest_runs_total", Help: "Scheduled digest runs, by digest and outcome (the verdict, or skipped, failed, interrupted).",
	}, []string{"digest", "outcome"})
	reg.MustRegister(s.runs)
}

func (s *DigestScheduler) count(name, outcome string) {
	if s.runs != nil {
		s.runs.WithLabelValues(name, outcome).Inc()
	}
}

// NextRuns returns each digest's next run after t (for tests and logs).
func (s *DigestScheduler) NextRuns(t time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	for _, e := range s.entries {
		out[e.conf.Name] = e.sched.Next(t)
	}
	return out
}

// CatchUp posts, once, the latest run of each digest missed while chmedic
// was down, when it is younger than digests.missed_run_max_age. A digest
// that never ran starts its record now (a fresh install posts nothing
// late). It returns how many missed runs it started.
func (s *DigestScheduler) CatchUp(ctx context.Context) int {
	now := s.now()
	maxAge := s.cfg.Digests.MissedRunMaxAge
	n := 0
	for _, e := range s.entries {
		last, ok, err := s.st.LastDigestRun(ctx, e.conf.Name)
		if err != nil {
			s.log.Error("digest: reading the last run failed", "digest", e.conf.Name, "err", err)
			continue
		}
		if !ok {
			if err := s.st.RecordDigestRun(ctx, e.conf.Name, now); err != nil {
				s.log.Error("digest: recording the first start failed", "digest", e.conf.Name, "err", err)
			}
			continue
		}
		from := last
		if oldest := now.Add(-maxAge); from.Before(oldest) {
			if first := e.sched.Next(last); !first.IsZero() && first.Before(oldest) {
				s.log.Info("digest: runs missed while chmedic was down are too old to post", "digest", e.conf.Name, "since", first, "missed_run_max_age", maxAge)
			}
			from = oldest
		}
		if maxAge <= 0 {
			continue
		}
		missed := e.sched.Latest(from, now, 100000)
		if missed.IsZero() {
			continue
		}
		s.log.Info("digest: posting the run missed while chmedic was down", "digest", e.conf.Name, "scheduled_at", missed)
		n++
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.fire(ctx, e, missed, digest.SourceMissed)
		}()
	}
	return n
}

// Run fires the digests on their schedules until ctx ends, then waits for
// the runs in flight.
func (s *DigestScheduler) Run(ctx context.Context) {
	defer s.wg.Wait()
	if len(s.entries) == 0 {
		return
	}
	for {
		now := s.now()
		var next time.Time
		var due []digestEntry
		for _, e := range s.entries {
			t := e.sched.Next(now)
			switch {
			case t.IsZero():
			case next.IsZero() || t.Before(next):
				next, due = t, []digestEntry{e}
			case t.Equal(next):
				due = append(due, e)
			}
		}
		if next.IsZero() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.after(next.Sub(now)):
		}
		if s.now().Before(next) {
			continue // woke early (clock adjusted): compute again
		}
		for _, e := range due {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.fire(ctx, e, next, digest.SourceScheduled)
			}()
		}
	}
}

// Wait waits for the runs CatchUp or Run started.
func (s *DigestScheduler) Wait() { s.wg.Wait() }

// fire runs one digest and posts it.
func (s *DigestScheduler) fire(ctx context.Context, e digestEntry, at time.Time, source string) {
	log := s.log.With("digest", e.conf.Name, "scheduled_at", at, "source", source)
	// Bound the run: every cluster's round is bounded by the engine.
	rctx, cancel := context.WithTimeout(ctx, time.Duration(len(s.cfg.DigestClusters(e.conf))+1)*(s.cfg.Diagnosis.Budget+5*time.Second))
	defer cancel()
	d, err := s.svc.Run(rctx, digest.Request{Name: e.conf.Name, Source: source, ScheduledAt: at, Clusters: s.cfg.DigestClusters(e.conf)})
	if errors.Is(err, digest.ErrSkipped) {
		s.count(e.conf.Name, "skipped")
		return // logged and noted by the service; the next digest carries the note
	}
	if ctx.Err() != nil {
		s.count(e.conf.Name, "interrupted")
		// Shutting down: a digest cut short would report the cluster as
		// undiagnosed. Not recorded, so the next start posts it as missed.
		log.Warn("digest interrupted by shutdown; not posted")
		return
	}
	if err := s.st.RecordDigestRun(context.WithoutCancel(ctx), e.conf.Name, at); err != nil {
		log.Error("digest: recording the run failed", "err", err)
	}
	if err != nil {
		s.count(e.conf.Name, "failed")
		log.Error("digest failed", "err", err)
		return
	}
	s.count(e.conf.Name, string(d.Verdict))
	if _, err := PostDigest(context.WithoutCancel(ctx), s.st, d, s.cfg.DigestChannel(e.conf), DigestThreadKey(e.conf.Name, at)); err != nil {
		log.Error("digest: queueing the message failed", "err", err)
		return
	}
	if s.outbox != nil {
		s.outbox.Kick()
	}
	log.Info("digest queued", "verdict", d.Verdict, "channel", s.cfg.DigestChannel(e.conf))
}

// DigestNow computes an on-demand digest (what `/chmedic digest [cluster]`
// answers): every cluster when cluster is "", stored as the previous of
// the next one. Concurrent asks share one computation and one round.
func (a *App) DigestNow(ctx context.Context, cluster, source string) (*digest.Digest, error) {
	var names []string
	if cluster != "" {
		if _, ok := a.cfg.Cluster(cluster); !ok {
			return nil, fmt.Errorf("unknown cluster %q", cluster)
		}
		names = []string{cluster}
	} else {
		for _, c := range a.cfg.Clusters {
			names = append(names, c.Name)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(len(names)+1)*(a.cfg.Diagnosis.Budget+5*time.Second))
	defer cancel()
	return a.Digests.Run(ctx, digest.Request{Source: source, Clusters: names})
}
