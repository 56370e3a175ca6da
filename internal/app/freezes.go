package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/digest"
)

// FreezeKeeper keeps the promises of the DDL freezes in the store: it posts
// a reminder with Extend and Unfreeze before a freeze expires, and at
// expiry lifts it by itself (a ddl_unfreeze recorded and audited as by
// "chmedic": the undo of an approved freeze needs no approval) and says so
// in the freeze's thread. The timers are the store's, so a restart loses
// none: a freeze that expired while chmedic was stopped is lifted at the
// first Step after the start. A lift that fails is retried every
// RetryAfter, and said.
type FreezeKeeper struct {
	Store     *store.Store
	Approvals *approvals.Service
	Config    *config.Config
	Now       func() time.Time
	Log       *slog.Logger
	// Poll is how often Run looks [10s]; RetryAfter bounds the retries of
	// a failed lift [1m].
	Poll, RetryAfter time.Duration
}

func (k *FreezeKeeper) fill() {
	if k.Now == nil {
		k.Now = time.Now
	}
	if k.Log == nil {
		k.Log = slog.New(slog.DiscardHandler)
	}
	if k.Poll <= 0 {
		k.Poll = 10 * time.Second
	}
	if k.RetryAfter <= 0 {
		k.RetryAfter = time.Minute
	}
}

// Run calls Step every Poll until ctx ends.
func (k *FreezeKeeper) Run(ctx context.Context) {
	k.fill()
	t := time.NewTicker(k.Poll)
	defer t.Stop()
	for {
		k.Step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Step does what is due now: reminders, then lifts of expired freezes.
func (k *FreezeKeeper) Step(ctx context.Context) {
	k.fill()
	fs, err := k.Store.Freezes(ctx, k.Now(), 200)
	if err != nil {
		k.Log.Warn("freezes: listing failed", "err", err)
		return
	}
	for _, f := range fs {
		if ctx.Err() != nil {
			return
		}
		if !f.Open() {
			continue
		}
		now := k.Now()
		switch {
		case !now.Before(f.ExpiresAt):
			if f.LiftAttempts > 0 && now.Before(f.UpdatedAt.Add(k.RetryAfter)) {
				continue
			}
			k.expire(ctx, f)
		case !f.ReminderAt.IsZero() && f.RemindedAt.IsZero() && !now.Before(f.ReminderAt):
			k.remind(ctx, f, false)
		case f.State == store.FreezePartial && f.PartialSaidAt.IsZero() && freezeSidePartial(f):
			k.remind(ctx, f, true)
		}
	}
}

// thread returns the thread (and alert group) of the request that made f.
func (k *FreezeKeeper) thread(ctx context.Context, f store.FreezeRecord) (threadKey, groupKey string) {
	rs, err := k.Store.ApprovalRequests(ctx, nil, "", 500)
	if err != nil {
		return "", ""
	}
	for _, r := range rs { // newest first
		if r.Kind == actions.DDLFreezeKind && r.Cluster == f.Cluster && r.PlanHash == f.PlanHash {
			return r.ThreadKey, r.GroupKey
		}
	}
	return "", ""
}

// freezeSidePartial reports whether a partial freeze is one whose freeze
// failed on some nodes (not one whose lift did).
func freezeSidePartial(f store.FreezeRecord) bool {
	for _, n := range f.Nodes {
		switch n.State {
		case actions.NodeLifted, actions.NodeLiftFailed, actions.NodeRemoved:
			return false
		}
	}
	return f.LiftAttempts == 0
}

func nodeLines(f store.FreezeRecord) []string {
	var out []string
	for _, n := range f.Nodes {
		out = append(out, n.Name+": "+n.State)
	}
	return out
}

// remind posts the reminder before the expiry, or (partial) the notice of
// a partial freeze with Retry failed nodes / Unfreeze all.
func (k *FreezeKeeper) remind(ctx context.Context, f store.FreezeRecord, partial bool) {
	threadKey, groupKey, open := k.threadFor(ctx, f)
	v := chslack.FreezeView{ID: f.ID, Cluster: f.Cluster, State: f.State, Method: f.Method, Targets: f.Targets, ExpiresAt: f.ExpiresAt, Nodes: nodeLines(f), Extend: f.Duration, Partial: partial}
	kind := "reminder"
	if partial {
		kind = "partial"
	}
	if threadKey != "" {
		var err error
		// Scope reply: the buttons are on this reply, and a re-render of
		// the thread's message must not supersede them.
		v.ExtendOffer, err = k.Store.OfferAction(ctx, store.ActionRequest{OfferKey: "freeze-extend/" + kind + "/" + f.ID + "/" + f.ExpiresAt.UTC().Format(time.RFC3339), Kind: actions.DDLFreezeKind,
			Params: map[string]string{"duration": f.Duration.String()}, Cluster: f.Cluster, GroupKey: groupKey, ThreadKey: threadKey, Scope: store.OfferScopeReply})
		if err == nil {
			v.UnfreezeOffer, err = k.Store.OfferAction(ctx, store.ActionRequest{OfferKey: "freeze-unfreeze/" + kind + "/" + f.ID + "/" + f.ExpiresAt.UTC().Format(time.RFC3339), Kind: actions.DDLUnfreezeKind,
				Params: map[string]string{}, Cluster: f.Cluster, GroupKey: groupKey, ThreadKey: threadKey, Scope: store.OfferScopeReply})
		}
		if err != nil {
			k.Log.Error("freezes: offering extend/unfreeze failed", "freeze", f.ID, "err", err)
		}
		body, _ := json.Marshal(chslack.RenderFreezeReminder(v))
		if err := k.say(ctx, f, threadKey, open, body); err != nil {
			k.Log.Error("freezes: posting the reminder failed", "freeze", f.ID, "err", err)
			return
		}
	}
	if partial {
		k.Log.Warn("DDL freeze is partial: some nodes are not frozen", "cluster", f.Cluster, "freeze", f.ID, "nodes", strings.Join(nodeLines(f), ", "),
			"thread", threadKey, "retry", "chmedic request --action ddl_freeze (retries the nodes not frozen)", "unfreeze", "chmedic request --action ddl_unfreeze")
	} else {
		k.Log.Warn("DDL freeze expires soon; chmedic lifts it by itself then", "cluster", f.Cluster, "freeze", f.ID, "expires_at", f.ExpiresAt,
			"thread", threadKey, "extend", "chmedic request --action ddl_freeze (extends the open freeze)", "unfreeze", "chmedic request --action ddl_unfreeze")
	}
	k.Approvals.Audit().Append(ctx, store.AuditEntry{Actor: approvals.ChmedicActor, Event: "freeze_" + kind, Kind: actions.DDLFreezeKind, Cluster: f.Cluster,
		Detail: fmt.Sprintf("freeze %s (%s) expires at %s; %s posted (thread %q)", f.ID, strings.Join(nodeLines(f), ", "), f.ExpiresAt.UTC().Format(time.RFC3339), kind, threadKey)})
	k.Store.UpdateFreeze(ctx, f.ID, func(r *store.FreezeRecord) error {
		switch {
		case partial:
			r.PartialSaidAt = k.Now().UTC()
		case r.ExpiresAt.Equal(f.ExpiresAt):
			r.RemindedAt = k.Now().UTC()
		}
		return nil
	})
}

func (k *FreezeKeeper) expire(ctx context.Context, f store.FreezeRecord) {
	threadKey, _, open := k.threadFor(ctx, f)
	reason := fmt.Sprintf("DDL freeze %s expired at %s UTC", f.ID, f.ExpiresAt.UTC().Format("2006-01-02 15:04:05"))
	k.Log.Info("DDL freeze expired: lifting it", "cluster", f.Cluster, "freeze", f.ID, "expires_at", f.ExpiresAt)
	runThread := threadKey
	if open {
		runThread = "" // the freeze's own thread is opened by the notice below
	}
	r, err := k.Approvals.RunAsChmedic(ctx, actions.DDLUnfreezeKind, f.Cluster, runThread, reason)
	// The approval worker may have claimed the request first: wait for
	// its end (bounded), so that what is said is what happened.
	for i := 0; err == nil && r.ID != "" && !r.Terminal() && r.State != store.ReqInterrupted && i < 600 && ctx.Err() == nil; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
		r, err = k.Store.ApprovalRequest(ctx, r.ID)
	}
	if ctx.Err() != nil {
		return // stopping: the next start lifts it
	}
	after, gerr := k.Store.Freeze(ctx, f.ID)
	if gerr != nil {
		k.Log.Error("freezes: reading the freeze after its lift failed", "freeze", f.ID, "err", gerr)
		return
	}
	var text string
	switch {
	case after.State == store.FreezeExpired || after.State == store.FreezeLifted:
		text = fmt.Sprintf(":unlock: The DDL freeze on %s (%s) expired at %s UTC: chmedic lifted it by itself, verified on every node (%s).",
			f.Cluster, strings.Join(f.Targets, ", "), f.ExpiresAt.UTC().Format("15:04:05"), strings.Join(nodeLines(after), ", "))
	default:
		why := after.LastError
		if err != nil {
			why = err.Error()
		}
		// Counted so that the next try waits RetryAfter.
		after, _ = k.Store.UpdateFreeze(ctx, f.ID, func(r *store.FreezeRecord) error {
			if err != nil {
				r.LiftAttempts++
				r.LastError = "lift at expiry: " + err.Error()
			}
			return nil
		})
		text = fmt.Sprintf(":warning: The DDL freeze on %s expired at %s UTC but chmedic could not lift it everywhere (attempt %d): %s. It tries again every %s; `chmedic freezes` shows the nodes.",
			f.Cluster, f.ExpiresAt.UTC().Format("15:04:05"), after.LiftAttempts, why, k.RetryAfter)
		k.Log.Error("DDL freeze expired but could not be lifted", "cluster", f.Cluster, "freeze", f.ID, "err", why)
	}
	body, _ := json.Marshal(chslack.RenderFreezeNotice(text))
	if threadKey == "" {
		k.Log.Warn("freezes: the expiry is said in the log only", "freeze", f.ID, "why", errNoChannel)
	} else if nerr := k.say(ctx, f, threadKey, open, body); nerr != nil {
		k.Log.Error("freezes: posting the expiry notice failed", "freeze", f.ID, "err", nerr)
	}
	k.Log.Info(text, "cluster", f.Cluster, "freeze", f.ID)
}

// runFreezes runs the freeze keeper until ctx ends (the hook in Run), and
// exports the open freezes as chmedic_ddl_freezes_open.
func (a *App) runFreezes(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	a.reg.Register(&freezesCollector{st: a.Store, cfg: a.cfg, desc: prometheus.NewDesc("chmedic_ddl_freezes_open",
		"Open DDL freezes by cluster and state (applying, active, partial); chmedic lifts each at its expiry.", []string{"cluster", "state"}, nil)})
	k := &FreezeKeeper{Store: a.Store, Approvals: a.Approvals, Config: a.cfg, Now: a.opts.Now, Log: a.log}
	go func() { defer close(done); k.Run(ctx) }()
	return done
}

// FreezesSource lists a cluster's open DDL freezes for the digest.
func FreezesSource(st *store.Store) digest.FreezesSource { return storeFreezes{st} }

type storeFreezes struct{ st *store.Store }

func (s storeFreezes) ActiveFreezes(ctx context.Context, cluster string) ([]string, error) {
	f, ok, err := s.st.OpenFreeze(ctx, cluster)
	if err != nil || !ok {
		return nil, err
	}
	frozen := 0
	for _, n := range f.Nodes {
		if n.State == actions.NodeFrozen {
			frozen++
		}
	}
	return []string{fmt.Sprintf("%s DDL freeze (%s) of %s since %s UTC, frozen on %d of %d nodes; chmedic lifts it at %s UTC",
		f.State, f.Method, strings.Join(f.Targets, ", "), f.StartedAt.UTC().Format("2006-01-02 15:04"), frozen, len(f.Nodes), f.ExpiresAt.UTC().Format("2006-01-02 15:04"))}, nil
}

// freezesCollector exports the open freezes on each scrape.
type freezesCollector struct {
	st   *store.Store
	cfg  *config.Config
	desc *prometheus.Desc
}

func (c *freezesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *freezesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, cl := range c.cfg.Clusters {
		f, ok, err := c.st.OpenFreeze(ctx, cl.Name)
		for _, state := range store.OpenFreezeStates {
			v := 0.0
			if err == nil && ok && f.State == state {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, cl.Name, state)
		}
	}
}
