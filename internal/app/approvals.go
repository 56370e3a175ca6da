package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goslack "github.com/slack-go/slack"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/diagnose"
)

// ActionRuntime is what the approval flow needs from the action framework:
// the registry that computes plans, the runner that executes them (holding
// the cluster's lease) and who holds a lease.
type ActionRuntime struct {
	Planner  approvals.Planner
	Executor actions.Executor
	Leases   approvals.LeaseChecker // may be nil
	Close    func() error
}

// RuntimeOptions are what NewActionRuntime needs beside the config and the
// store.
type RuntimeOptions struct {
	// Name identifies this process as the lease holder (ProcessName).
	Name string
	// HTTPClient is used for Slack file uploads (tests inject one).
	HTTPClient *http.Client
	// Registerer receives the chmedic_action_* metrics (nil: none).
	Registerer prometheus.Registerer
	Now        func() time.Time
	// Engine, when set, is the diagnosis engine rolling_restart's gates
	// read (the server's: one engine per process, one round per cluster
	// shared with the alerts, digests and slash commands); nil builds one
	// (the CLI, its own process). The caller closes it.
	Engine *diagnose.Engine
}

// NewActionRuntime builds the action runtime for a config and a store: the
// registry of action kinds (actions.NewRegistry: plans computed with the
// clusters' actions credentials, bundles kept beside the store, uploads to
// Slack when a bot token is set) and the runner that executes them under
// the cluster's lease. At start it marks the executions a stopped process
// left running as interrupted. Tests replace it with fakes.
var NewActionRuntime = func(cfg *config.Config, st *store.Store, log *slog.Logger, o RuntimeOptions) (*ActionRuntime, error) {
	deps := actions.Deps{DataDir: filepath.Dir(cfg.Store.Path), Now: o.Now, Log: log, Freezes: st}
	if cfg.Slack.Enabled() {
		deps.Uploader = chslack.NewUploader(interactionsSlackClient(&cfg.Slack, o.HTTPClient), 0)
	}
	// rolling_restart's coordination gates read a diagnosis: the
	// caller's engine, or (the CLI) one of its own — lazy, bounded
	// connections with the probe credentials.
	engine, closeEngine := o.Engine, func() error { return nil }
	if engine == nil {
		var err error
		if engine, closeEngine, err = BuildEngine(cfg, log, nil); err != nil {
			return nil, err
		}
	}
	deps.Diagnose = engine.Diagnose
	var runner *actions.Runner
	deps.Busy = func(ctx context.Context, cluster string) (string, string, bool, error) {
		l, held, err := runner.LeaseHolder(ctx, cluster)
		return l.Holder, l.ExecutionID, held, err
	}
	reg, err := actions.NewRegistry(cfg, deps)
	if err != nil {
		closeEngine()
		return nil, err
	}
	runner = actions.NewRunner(st, reg, actions.RunnerOptions{Holder: o.Name, Now: o.Now, Log: log, Registerer: o.Registerer})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := runner.MarkInterrupted(ctx); err != nil {
		closeEngine()
		return nil, fmt.Errorf("mark interrupted executions: %w", err)
	}
	return &ActionRuntime{Planner: approvals.ActionsPlanner(reg), Executor: runner, Leases: runnerLeases{runner}, Close: closeEngine}, nil
}

// runnerLeases answers approvals.LeaseChecker from the runner's leases.
type runnerLeases struct{ r *actions.Runner }

func (l runnerLeases) LeaseHolder(ctx context.Context, cluster string) (string, bool, error) {
	lease, held, err := l.r.LeaseHolder(ctx, cluster)
	return lease.Holder, held, err
}

// ApprovalsOptions configure OpenApprovals.
type ApprovalsOptions struct {
	// Name identifies the process ("server host:pid", "cli host:pid").
	Name string
	// HTTPClient is used for Slack's auth.test (tests inject one).
	HTTPClient *http.Client
	Now        func() time.Time
	Kick       func()
	// Registerer receives the action metrics (nil: none).
	Registerer prometheus.Registerer
	// LearnTeam asks Slack (auth.test) for the workspace when
	// approvals.team_id is unset (the server; the CLI takes no clicks).
	LearnTeam bool
	// Engine is passed on to the action runtime (RuntimeOptions.Engine).
	Engine *diagnose.Engine
}

// OpenApprovals builds the approval flow on an open store: the policies of
// the config, the action runtime and the Slack workspace whose clicks are
// accepted (approvals.team_id, else the bot token's, from auth.test). The
// returned function releases the action runtime. User groups are resolved
// once the Slack transport's resolver is set (Service.SetGroupResolver);
// until then group entries match nobody.
func OpenApprovals(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger, o ApprovalsOptions) (*approvals.Service, func() error, error) {
	rt, err := NewActionRuntime(cfg, st, log, RuntimeOptions{Name: o.Name, HTTPClient: o.HTTPClient, Registerer: o.Registerer, Now: o.Now, Engine: o.Engine})
	if err != nil {
		return nil, nil, fmt.Errorf("actions: %w", err)
	}
	closeRT := func() error { return nil }
	if rt.Close != nil {
		closeRT = rt.Close
	}
	team := cfg.Approvals.TeamID
	if team == "" && cfg.Slack.Enabled() && o.LearnTeam {
		team = slackTeam(ctx, cfg, o.HTTPClient, log)
	}
	svc := approvals.New(approvals.Options{
		Store: st, Policies: &cfg.Approvals.Policies, TeamID: team,
		Planner: rt.Planner, Executor: rt.Executor, Leases: rt.Leases,
		Name: o.Name, Kick: o.Kick, Now: o.Now, Log: log,
	})
	return svc, closeRT, nil
}

// slackTeam asks Slack which workspace the bot token belongs to.
func slackTeam(ctx context.Context, cfg *config.Config, hc *http.Client, log *slog.Logger) string {
	opts := []goslack.Option{goslack.OptionAPIURL(cfg.Slack.APIURL)}
	if hc != nil {
		opts = append(opts, goslack.OptionHTTPClient(hc))
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := goslack.New(cfg.Slack.BotToken.Value(), opts...).AuthTestContext(cctx)
	if err != nil {
		log.Error("slack auth.test failed: clicks are refused until approvals.team_id is set or the next start learns the workspace", "err", err)
		return ""
	}
	log.Info("accepting clicks from the bot token's Slack workspace", "team_id", resp.TeamID)
	return resp.TeamID
}

// ProcessName names this process in executions and heartbeats.
func ProcessName(role string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s %s:%d", role, host, os.Getpid())
}

// setupApprovals wires the approval flow into the runtime: the incident
// processor stores each report through it, and Run starts its worker.
func (a *App) setupApprovals(ctx context.Context) error {
	svc, closeRT, err := OpenApprovals(ctx, a.cfg, a.Store, a.log, ApprovalsOptions{
		Name: ProcessName("server"), HTTPClient: a.opts.HTTPClient, Now: a.opts.Now, Kick: a.Outbox.Kick, LearnTeam: true, Registerer: a.reg,
		Engine: a.Engine,
	})
	if err != nil {
		return err
	}
	a.Approvals = svc
	a.closers = append(a.closers, closeRT)
	a.Processor.Reports = svc
	a.reg.MustRegister(&requestsCollector{st: a.Store, desc: prometheus.NewDesc("chmedic_approval_requests",
		"Action requests in the store, by state (pending: awaiting approval; interrupted, stopped: awaiting resume or abort).", []string{"state"}, nil)})
	return nil
}

// requestsCollector exports the approval requests by state on each scrape.
type requestsCollector struct {
	st   *store.Store
	desc *prometheus.Desc
}

func (c *requestsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *requestsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := c.st.ApprovalRequestCounts(ctx)
	if err != nil {
		return
	}
	for _, s := range []string{store.ReqPlanning, store.ReqPending, store.ReqApproved, store.ReqRunning, store.ReqInterrupted, store.ReqStopped} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(m[s]), s)
	}
}

// runApprovals runs the approval worker until ctx ends; the returned
// channel closes when it has stopped (executions in flight recorded as
// interrupted).
func (a *App) runApprovals(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Approvals.Run(ctx)
	}()
	return done
}
