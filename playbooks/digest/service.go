package digest

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

	"golang.org/x/sync/singleflight"

	"github.com/chmedic/chmedic/playbooks/diagnose"
)

// Options configure a Service. Only Diagnoser is required; every source
// left nil is reported in the digest as not available, never as "none".
type Options struct {
	Diagnoser Diagnoser
	Nodes     ClusterNodes
	History   History
	Alerts    AlertsSource
	Outbox    OutboxSource
	Rejection RejectionsSource
	Freezes   FreezesSource
	Approvals ApprovalsSource
	ActionLog ActionsSource
	Playbooks Playbooks
	// Growth are the growth thresholds by trend name (DefaultGrowth for
	// the names missing).
	Growth map[string]Growth
	// DefaultPeriod is the period of a cluster's first digest (no previous
	// one) [24h]; MaxPeriod caps the period read from system.query_log [7d].
	DefaultPeriod time.Duration
	MaxPeriod     time.Duration
	// QueryTimeout bounds the digest's own reads on one node [2s].
	QueryTimeout time.Duration
	Now          func() time.Time
	Log          *slog.Logger
}

// Service computes digests. A named digest runs at most once at a time: a
// run asked for while the previous one is still going is skipped with a
// note (carried into the next digest of that name), never stacked.
type Service struct {
	o        Options
	extra    singleflight.Group
	ondemand singleflight.Group

	mu      sync.Mutex
	running map[string]time.Time
	notes   map[string][]string
}

// ErrSkipped is returned when the previous run of the same digest is still going.
var ErrSkipped = errors.New("the previous run of this digest is still going")

// New builds a service.
func New(o Options) *Service {
	if o.DefaultPeriod <= 0 {
		o.DefaultPeriod = 24 * time.Hour
	}
	if o.MaxPeriod <= 0 {
		o.MaxPeriod = 7 * 24 * time.Hour
	}
	if o.QueryTimeout <= 0 {
		o.QueryTimeout = 2 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	g := DefaultGrowth()
	for k, v := range o.Growth {
		g[k] = v
	}
	o.Growth = g
	return &Service{o: o, running: map[string]time.Time{}, notes: map[string][]string{}}
}

// Request asks for one digest.
type Request struct {
	// Name is the configured digest's name; "" for an on-demand digest
	// (those are never skipped: the engine shares their rounds).
	Name        string
	Source      string
	ScheduledAt time.Time
	Clusters    []string
	// NoStore computes without storing (a dry look: the next digest still
	// compares with the last stored one).
	NoStore bool
}

// Run computes a digest. It returns ErrSkipped (wrapped, with when the
// running one started) when req.Name is already running. On-demand
// digests (no Name) of the same clusters asked for while one is being
// computed share it (a hundred `/chmedic digest` cost one digest, one
// stored record); each caller gets its own copy.
func (s *Service) Run(ctx context.Context, req Request) (*Digest, error) {
	if len(req.Clusters) == 0 {
		return nil, errors.New("digest: no cluster")
	}
	if req.Name != "" {
		return s.run(ctx, req)
	}
	key := fmt.Sprintf("%s|%v|%s", strings.Join(req.Clusters, ","), req.NoStore, req.Source)
	// The shared computation outlives a caller that gives up; every
	// bounded step in it (the round, each read) has its own timeout.
	ch := s.ondemand.DoChan(key, func() (any, error) { return s.run(context.WithoutCancel(ctx), req) })
	var r singleflight.Result
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("digest: %w", ctx.Err())
	case r = <-ch:
	}
	if r.Err != nil {
		return nil, r.Err
	}
	d := r.Val.(*Digest)
	if !r.Shared {
		return d, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	var cp Digest
	if err := json.Unmarshal(b, &cp); err != nil {
		return nil, err
	}
	return &cp, nil
}

func (s *Service) run(ctx context.Context, req Request) (*Digest, error) {
	var notes []string
	if req.Name != "" {
		s.mu.Lock()
		if started, busy := s.running[req.Name]; busy {
			note := fmt.Sprintf("the %s run of digest %q was skipped: the previous run (started %s) was still going",
				when(req.ScheduledAt, s.o.Now()), req.Name, started.UTC().Format("2006-01-02 15:04:05 UTC"))
			s.notes[req.Name] = append(s.notes[req.Name], note)
			s.mu.Unlock()
			s.o.Log.Warn("digest skipped: the previous run is still going", "digest", req.Name, "running_since", started)
			return nil, fmt.Errorf("digest %q: %w (since %s)", req.Name, ErrSkipped, started.UTC().Format(time.RFC3339))
		}
		s.running[req.Name] = s.o.Now()
		notes = s.notes[req.Name]
		delete(s.notes, req.Name)
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.running, req.Name)
			s.mu.Unlock()
		}()
	}

	now := s.o.Now()
	dg := &Digest{Name: req.Name, Source: req.Source, GeneratedAt: now, Notes: notes}
	if !req.ScheduledAt.IsZero() {
		at := req.ScheduledAt
		dg.ScheduledAt = &at
		if req.Source == SourceMissed {
			dg.Notes = append([]string{fmt.Sprintf("posted late: chmedic was not running at the scheduled time (%s); the figures are from now",
				at.UTC().Format("2006-01-02 15:04 UTC"))}, dg.Notes...)
		}
	}
	var prevHealth *Health
	var since time.Time
	for _, name := range req.Clusters {
		var prev *Digest
		if s.o.History != nil {
			p, err := s.o.History.Previous(ctx, name)
			if err != nil {
				dg.Notes = append(dg.Notes, fmt.Sprintf("cluster %s: the previous digest could not be read (%v); no trends", name, err))
			}
			prev = p
		}
		c, err := s.cluster(ctx, name, prev, now)
		if err != nil {
			return nil, err
		}
		dg.Clusters = append(dg.Clusters, c)
		if prev != nil && (prevHealth == nil || prev.GeneratedAt.After(since)) {
			h := prev.Chmedic
			prevHealth, since = &h, prev.GeneratedAt
		}
	}
	if since.IsZero() {
		since = now.Add(-s.o.DefaultPeriod)
	}
	dg.Chmedic = s.health(ctx, since, prevHealth)
	dg.Verdict = dg.Chmedic.Verdict
	for _, c := range dg.Clusters {
		dg.Verdict = dg.Verdict.Worse(c.Verdict)
	}
	dg.Headline = headline(dg)
	if !req.NoStore && s.o.History != nil {
		dg.Stored = true
		if err := s.o.History.Save(ctx, dg); err != nil {
			dg.Stored = false
			dg.Notes = append(dg.Notes, "this digest could not be stored, so the next one compares with an older one: "+err.Error())
			s.o.Log.Error("storing the digest failed", "digest", req.Name, "err", err)
		}
	}
	return dg, nil
}

func when(scheduled, now time.Time) string {
	if scheduled.IsZero() {
		return now.UTC().Format("15:04 UTC")
	}
	return scheduled.UTC().Format("2006-01-02 15:04 UTC")
}

// cluster computes one cluster's digest.
func (s *Service) cluster(ctx context.Context, name string, prev *Digest, now time.Time) (*Cluster, error) {
	c := &Cluster{Name: name}
	var pc *Cluster
	if prev != nil {
		for _, x := range prev.Clusters {
			if x.Name == name {
				pc = x
			}
		}
		if pc != nil {
			at := prev.GeneratedAt
			c.PreviousAt = &at
		}
	}
	d, err := s.o.Diagnoser.Diagnose(ctx, name)
	switch {
	case errors.Is(err, diagnose.ErrUnknownCluster):
		return nil, err
	case err != nil:
		c.Diagnosis.Error = err.Error()
		d = nil
	default:
		fromDiagnosis(c, d)
	}

	since := now.Add(-s.o.DefaultPeriod)
	if c.PreviousAt != nil && now.Sub(*c.PreviousAt) > 0 {
		since = *c.PreviousAt
		if now.Sub(since) > s.o.MaxPeriod {
			since = now.Add(-s.o.MaxPeriod)
			c.Notes = append(c.Notes, fmt.Sprintf("the previous digest is older than %s; DDL counted over the last %s only", s.o.MaxPeriod, s.o.MaxPeriod))
		}
	}
	s.readDDL(ctx, c, since, now)
	c.Trends = trends(c, pc, s.o.Growth)
	if pc == nil {
		c.Notes = append(c.Notes, "no previous digest of this cluster: trends start with the next one")
	}
	s.readLists(ctx, c, since)
	judge(c, d, s.o.Playbooks)
	return c, nil
}

// readDDL counts the DDL of the period on every node that is up. Digests
// of one cluster asked for at once share one read.
func (s *Service) readDDL(ctx context.Context, c *Cluster, since, now time.Time) {
	c.DDL = DDLCount{Since: since, Until: now}
	if s.o.Nodes == nil {
		c.DDL.Note = "not read (no connections given)"
		return
	}
	type res struct {
		perNode map[string]int64
		errs    map[string]string
	}
	v, _, _ := s.extra.Do(fmt.Sprintf("%s@%d", c.Name, since.Unix()), func() (any, error) {
		r := res{perNode: map[string]int64{}, errs: map[string]string{}}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range s.o.Nodes(c.Name) {
			if !c.nodeUp(n.Name) {
				r.errs[n.Name] = "node down: not asked"
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				qctx, cancel := context.WithTimeout(ctx, s.o.QueryTimeout)
				defer cancel()
				cnt, err := ddlCount(qctx, n, since)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					r.errs[n.Name] = oneLine(err.Error())
					return
				}
				r.perNode[n.Name] = cnt
			}()
		}
		wg.Wait()
		return r, nil
	})
	r := v.(res)
	var total *int64
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if cnt, ok := r.perNode[n.Name]; ok {
			n.DDLCount = i64(cnt)
			total = sumI(total, n.DDLCount)
		} else if e, ok := r.errs[n.Name]; ok && n.Note == "" {
			n.Note = "DDL count: " + e
		}
	}
	if len(r.errs) > 0 {
		var names []string
		for n := range r.errs {
			names = append(names, n)
		}
		sort.Strings(names)
		if total == nil {
			c.DDL.Note = "could not be read on " + strings.Join(names, ", ")
		} else {
			c.DDL.Note = "partial: not read on " + strings.Join(names, ", ")
		}
	}
	c.DDL.Count = total
	if total != nil {
		if h := now.Sub(since).Hours(); h > 0 {
			c.DDL.PerHour = f64(round1(float64(*total) / h))
		}
	}
}

func (c *Cluster) nodeUp(name string) bool {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n.Up
		}
	}
	return true // not in the round (e.g. no ping result): try it
}

// readLists fills the figures other parts of chmedic provide.
func (s *Service) readLists(ctx context.Context, c *Cluster, since time.Time) {
	c.Alerts = Alerts{Since: since, Note: "not available: no alert store given"}
	if s.o.Alerts != nil {
		a, err := s.o.Alerts.AlertsSince(ctx, c.Name, since)
		if err != nil {
			c.Alerts.Note = "could not be read: " + err.Error()
		} else {
			c.Alerts = a
			c.Alerts.Since, c.Alerts.Available = since, true
		}
	}
	c.Freezes = list(ctx, s.o.Freezes != nil, notYetFreezes, func() ([]string, error) { return s.o.Freezes.ActiveFreezes(ctx, c.Name) })
	c.Approvals = list(ctx, s.o.Approvals != nil, notYetApprovals, func() ([]string, error) { return s.o.Approvals.PendingApprovals(ctx, c.Name) })
	c.ActionsRun = list(ctx, s.o.ActionLog != nil, notYetActions, func() ([]string, error) { return s.o.ActionLog.ActionsRunSince(ctx, c.Name, since) })
}

func list(_ context.Context, have bool, notYet string, read func() ([]string, error)) List {
	if !have {
		return List{Note: notYet, Items: []string{}}
	}
	items, err := read()
	if err != nil {
		return List{Note: "could not be read: " + err.Error(), Items: []string{}}
	}
	if items == nil {
		items = []string{}
	}
	return List{Available: true, Items: items}
}

// health reads chmedic's own figures since the previous digest.
func (s *Service) health(ctx context.Context, since time.Time, prev *Health) Health {
	h := Health{Since: since, Verdict: Healthy, Rejections: map[string]float64{}}
	if s.o.Outbox != nil {
		backlog, given, err := s.o.Outbox.OutboxHealth(ctx, since)
		if err != nil {
			h.Notes = append(h.Notes, "the outbox could not be read: "+err.Error())
		} else {
			h.OutboxBacklog, h.GivenUp = i64(backlog), i64(given)
			if given > 0 {
				h.Verdict = Watch
				h.Notes = append(h.Notes, fmt.Sprintf("%d Slack messages were given up on (see chmedic_slack_errors_total{class=\"permanent\"} and the log)", given))
			}
		}
	} else {
		h.Notes = append(h.Notes, "the outbox was not read")
	}
	switch {
	case s.o.Rejection == nil:
		h.RejectionsNote = "not available: no rejection counter given"
	default:
		counts, started, ok, err := s.o.Rejection.Rejections(ctx)
		switch {
		case err != nil:
			h.RejectionsNote = "could not be read: " + err.Error()
		case !ok:
			h.RejectionsNote = "not available here: only the serving chmedic counts them (chmedic_webhook_rejected_total on its /metrics)"
		default:
			h.RejectionCounters = counts
			st := started
			h.CountersStarted = &st
			samePeriod := prev != nil && prev.CountersStarted != nil && prev.CountersStarted.Equal(started)
			for reason, v := range counts {
				d := v
				if samePeriod {
					d = v - prev.RejectionCounters[reason]
				}
				if d > 0 {
					h.Rejections[reason] = d
				}
			}
			if !samePeriod {
				h.RejectionsNote = "since chmedic started at " + started.UTC().Format("2006-01-02 15:04 UTC")
			}
			// Rejections are shown; only overload (queue_full: alerts
			// Alertmanager had to retry) makes chmedic itself worth a look.
			if h.Rejections["queue_full"] > 0 {
				h.Verdict = Watch
				h.Notes = append(h.Notes, fmt.Sprintf("%s webhook requests refused because the queue was full", fmtNum(h.Rejections["queue_full"])))
			}
		}
	}
	h.Approvals = list(ctx, s.o.Approvals != nil, notYetApprovals, func() ([]string, error) { return s.o.Approvals.PendingApprovals(ctx, "") })
	return h
}

// headline is the verdict line's text.
func headline(d *Digest) string {
	var acts, watches []string
	for _, c := range d.Clusters {
		switch c.Verdict {
		case Act:
			acts = append(acts, c.Name)
		case Watch:
			watches = append(watches, c.Name)
		}
	}
	switch d.Verdict {
	case Act:
		return fmt.Sprintf("Act: %s needs action", strings.Join(acts, ", "))
	case Watch:
		if len(watches) == 0 {
			return "Watch: the clusters look healthy, chmedic itself needs a look"
		}
		return fmt.Sprintf("Watch: %s worth a look", strings.Join(watches, ", "))
	}
	if len(d.Clusters) == 1 {
		return fmt.Sprintf("Healthy: %s", d.Clusters[0].Name)
	}
	return fmt.Sprintf("Healthy: all %d clusters", len(d.Clusters))
}
