// Package app owns chmedic's runtime: it wires the store, the webhook
// receiver and its queue, the diagnosis engine, the incident processor and
// the Slack outbox into one HTTP server with health, readiness and metrics
// endpoints, and shuts them down in order. cmd/chmedic only parses flags;
// tests start the same runtime in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goslack "github.com/slack-go/slack"

	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/incident"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/digest"
	"github.com/chmedic/chmedic/webhook"
)

// Options configure the runtime.
type Options struct {
	// Version is set by the build (cmd/chmedic passes it in).
	Version string
	// Listener, when set, is used instead of listening on the config's address.
	Listener net.Listener
	// HTTPClient is used for Slack calls (tests may inject one).
	HTTPClient *http.Client
	Now        func() time.Time
	// Slack clicks and slash commands (slack_interactions.go).
	InteractionOptions
	// NoOutbox does not run the Slack outbox: messages are queued and stay
	// pending (benchmarks measuring the notification pipeline alone).
	NoOutbox bool
	// StoreOptions are passed to store.Open (tests count the store's work).
	StoreOptions []store.Option
}

// App is a running chmedic.
type App struct {
	cfg       *config.Config
	log       *slog.Logger
	opts      Options
	reg       *prometheus.Registry
	Store     *store.Store
	Queue     *webhook.Queue
	Outbox    *chslack.Outbox
	Engine    *diagnose.Engine
	Processor *incident.Processor
	// Interactions is the dispatcher of Slack's clicks and slash commands
	// (both transports); UserGroups resolves approver groups.
	Interactions *approvals.Dispatcher
	UserGroups   *chslack.UserGroups
	socket       *chslack.SocketMode
	Approvals    *approvals.Service
	// Digests computes health digests; DigestScheduler posts the
	// scheduled ones (see digests.go).
	Digests         *digest.Service
	DigestScheduler *DigestScheduler
	closers         []func() error
	mux             *http.ServeMux
	addr            string
	mu              sync.Mutex
}

// New builds the runtime from a validated config.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts Options) (*App, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &App{cfg: cfg, log: log, opts: opts, reg: prometheus.NewRegistry()}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "chmedic_build_info", Help: "Build information."}, []string{"version"})
	info.WithLabelValues(opts.Version).Set(1)
	a.reg.MustRegister(info)

	st, err := store.Open(ctx, cfg.Store.Path, opts.StoreOptions...)
	if err != nil {
		return nil, err
	}
	a.Store = st
	a.closers = append(a.closers, st.Close)
	a.reg.MustRegister(newStoreCollector(st))

	pbs, err := playbooks.Load(cfg.Playbooks.Dir, PlaybookValidator())
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("playbooks: %w", err)
	}

	engine, clusters, closeEngine, err := buildEngine(cfg, log, a.reg)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Engine = engine
	a.closers = append(a.closers, closeEngine)
	// Counter rates against the previous round: no wait on the path from
	// an alert to its message (KeepSamplesWarm in Run keeps them recent).
	engine.RememberSamples()

	var api chslack.API
	if cfg.Slack.Enabled() {
		sopts := []goslack.Option{goslack.OptionAPIURL(cfg.Slack.APIURL)}
		if opts.HTTPClient != nil {
			sopts = append(sopts, goslack.OptionHTTPClient(opts.HTTPClient))
		}
		api = goslack.New(cfg.Slack.BotToken.Value(), sopts...)
	} else {
		log.Warn("no Slack bot token configured: messages are written to this log instead of Slack")
	}
	instance, err := st.InstanceID(ctx)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Outbox = chslack.NewOutbox(st, api, outboxOptions(cfg, chslack.OutboxOptions{Log: log, Registerer: a.reg, Now: opts.Now, Instance: instance}))

	a.Processor = &incident.Processor{Config: cfg, Playbooks: pbs, Diagnoser: engine, Store: st, Outbox: a.Outbox, Log: log, Now: opts.Now}
	if err := a.setupApprovals(ctx); err != nil {
		a.Close()
		return nil, err
	}
	a.Digests = NewDigestService(DigestDeps{Config: cfg, Diagnoser: engine, Clusters: clusters, Store: st, Playbooks: pbs,
		Gatherer: a.reg, Started: opts.Now(), Log: log, Now: opts.Now, Freezes: FreezesSource(st)})
	a.DigestScheduler = NewDigestScheduler(cfg, a.Digests, st, a.Outbox, log, opts.Now, nil)
	a.DigestScheduler.Register(a.reg)
	wm := webhook.NewMetrics(a.reg)
	// Concurrent webhook requests share one transaction and one sync to
	// disk; the workers give way to a burst of them (acceptance first).
	commits := webhook.NewGroupCommit(st, webhook.GroupCommitOptions{BatchSize: wm.CommitBatch})
	a.Queue = webhook.NewQueue(st, a.Processor, webhook.QueueOptions{Size: cfg.Webhook.QueueSize, Workers: cfg.Webhook.Workers,
		Yield: func(ctx context.Context) { commits.WaitQuiet(ctx, webhook.YieldBound) }}, wm, log)

	auth := webhook.Auth{BearerToken: cfg.Webhook.Auth.BearerToken.Value()}
	if b := cfg.Webhook.Auth.Basic; b != nil {
		auth = webhook.Auth{Username: b.Username, Password: b.Password.Value()}
	}
	if !auth.Enabled() {
		log.Warn("webhook authentication is not configured: anyone who can reach the listen address can post alerts")
	}
	a.mux = http.NewServeMux()
	a.mux.Handle("POST /webhook", &webhook.Handler{
		Auth: auth, MaxBodyBytes: int64(cfg.Webhook.MaxBodyBytes), DedupWindow: cfg.Webhook.DedupWindow,
		Store: commits, Queue: a.Queue, Metrics: wm, Log: log, Now: opts.Now,
	})
	a.mux.Handle("/webhook", &webhook.Handler{Metrics: wm, Log: log}) // other methods: 405 with a reason
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	a.mux.HandleFunc("GET /readyz", a.ready)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	a.setupInteractions()
	return a, nil
}

func (a *App) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := a.Store.Ping(ctx); err != nil {
		http.Error(w, "store not writable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if a.Queue.Saturated() {
		http.Error(w, "queue saturated", http.StatusServiceUnavailable)
		return
	}
	// Slack refusing the token, a scope or a channel is degraded, not
	// unready: alerts are still accepted and kept until it is fixed.
	if d := a.Outbox.Degraded(); d != "" {
		fmt.Fprintln(w, "degraded: slack refuses chmedic's configuration: "+d)
		return
	}
	fmt.Fprintln(w, "ready")
}

// Handler is the HTTP handler (for tests).
func (a *App) Handler() http.Handler { return a.mux }

// Addr is the address the server listens on, once Run has started.
func (a *App) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.addr
}

// Run serves until ctx ends, then shuts down within the configured bound:
// stop accepting, let workers finish (interrupted work is replayed on the
// next start), stop the outbox, close the store.
func (a *App) Run(ctx context.Context) error {
	defer a.Close()
	ln := a.opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", a.cfg.ListenAddress)
		if err != nil {
			return fmt.Errorf("listen %s: %w", a.cfg.ListenAddress, err)
		}
	}
	a.mu.Lock()
	a.addr = ln.Addr().String()
	a.mu.Unlock()

	queueCtx, stopQueue := context.WithCancel(context.Background())
	workCtx, stopWork := context.WithCancel(context.Background())
	defer stopWork()
	if err := a.Queue.Start(queueCtx, workCtx); err != nil {
		stopQueue()
		return err
	}
	outCtx, stopOutbox := context.WithCancel(context.Background())
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		if !a.opts.NoOutbox {
			a.Outbox.Run(outCtx)
		}
	}()
	apprCtx, stopApprovals := context.WithCancel(context.Background())
	approvalsDone := a.runApprovals(apprCtx)
	freezesDone := a.runFreezes(apprCtx) // DDL freeze reminders and expiry (freezes.go)
	pruneDone := make(chan struct{})
	go func() { defer close(pruneDone); prune(outCtx, a.Store, a.cfg.Store.Retention, a.log) }()
	samplesDone := make(chan struct{})
	go func() { defer close(samplesDone); a.Engine.KeepSamplesWarm(outCtx, time.Minute) }()
	digestsDone := make(chan struct{})
	go func() { defer close(digestsDone); a.DigestScheduler.CatchUp(outCtx); a.DigestScheduler.Run(outCtx) }()

	srv := &http.Server{Handler: a.mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	stopInteractions := a.startInteractions()
	a.log.Info("chmedic started", "version", a.opts.Version, "listen_address", a.addr, "store", a.cfg.Store.Path,
		"clusters", len(a.cfg.Clusters), "slack", a.cfg.Slack.Enabled())

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-srvErr:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http server: %w", err)
		}
	}
	a.log.Info("shutting down", "bound", a.cfg.ShutdownTimeout)
	deadline := time.Now().Add(a.cfg.ShutdownTimeout)
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		a.log.Warn("http shutdown", "err", err)
	}
	stopInteractions()
	stopQueue()
	drained := make(chan struct{})
	go func() { a.Queue.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-sctx.Done():
		a.log.Warn("shutdown bound reached; interrupting in-flight work (it will be replayed on the next start)")
		stopWork()
		<-drained
	}
	stopApprovals() // executions in flight are recorded as interrupted
	<-approvalsDone
	<-freezesDone
	// Give the outbox a moment to deliver what the last notifications queued.
	flush, cancelFlush := context.WithDeadline(context.Background(), deadline)
	if !a.opts.NoOutbox {
		a.Outbox.Step(flush)
	}
	cancelFlush()
	stopOutbox()
	<-outDone
	<-pruneDone
	<-digestsDone
	<-samplesDone
	a.log.Info("stopped")
	return runErr
}

// Close releases resources (idempotent).
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	a.closers = nil
	return errors.Join(errs...)
}
