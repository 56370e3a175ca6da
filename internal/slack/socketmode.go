package slack

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// SocketSink receives what arrives over Socket Mode (approvals.Dispatcher
// implements it: the same handler as the HTTP endpoint). Both methods must
// be fast: the envelope is acknowledged when they return.
type SocketSink interface {
	// SocketInteractive handles an interactive envelope's payload (the same
	// JSON as the payload= field of the HTTP endpoint).
	SocketInteractive(ctx context.Context, payload []byte) error
	// SocketSlashCommand handles a slash_commands envelope's payload and
	// returns the ack's payload (the reply shown to the user), or nil.
	SocketSlashCommand(ctx context.Context, payload []byte) (any, error)
}

// SocketModeOptions configure the Socket Mode client.
type SocketModeOptions struct {
	// AppToken is the app-level token (xapp-, scope connections:write).
	AppToken string
	// BotToken, when set, is the Web API token of the same client.
	BotToken string
	// APIURL is the Web API base URL (apps.connections.open).
	APIURL     string
	HTTPClient *http.Client
	// PingInterval: without a ping from Slack for this long the connection
	// is considered dead and reopened [30s].
	PingInterval time.Duration
	// RetryMin and RetryMax bound the wait before reopening after the client
	// gave up (bad token, Slack unreachable) [1s, 5m].
	RetryMin, RetryMax time.Duration
	Log                *slog.Logger
	Registerer         prometheus.Registerer
}

// SocketMode is chmedic's Socket Mode transport: it keeps one connection to
// Slack open (reconnecting when Slack asks or the connection dies),
// acknowledges every envelope, and delivers interactive and slash-command
// envelopes to the sink.
type SocketMode struct {
	opts   SocketModeOptions
	client *socketmode.Client
	sink   SocketSink
	log    *slog.Logger

	connected prometheus.Gauge
	connects  prometheus.Counter
	envelopes *prometheus.CounterVec

	wg sync.WaitGroup
}

// NewSocketMode builds the transport; Run starts it.
func NewSocketMode(sink SocketSink, opts SocketModeOptions) *SocketMode {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 5 * time.Minute
	}
	apiOpts := []slack.Option{slack.OptionAppLevelToken(opts.AppToken)}
	if opts.APIURL != "" {
		apiOpts = append(apiOpts, slack.OptionAPIURL(opts.APIURL))
	}
	if opts.HTTPClient != nil {
		apiOpts = append(apiOpts, slack.OptionHTTPClient(opts.HTTPClient))
	}
	api := slack.New(opts.BotToken, apiOpts...)
	s := &SocketMode{
		opts: opts,
		sink: sink,
		log:  opts.Log.With("transport", "socket_mode"),
		client: socketmode.New(api,
			socketmode.OptionPingInterval(opts.PingInterval),
			socketmode.OptionLog(slog.NewLogLogger(opts.Log.Handler(), slog.LevelDebug))),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{Name: "chmedic_slack_socket_connected", Help: "1 while a Socket Mode connection to Slack is open."}),
		connects:  prometheus.NewCounter(prometheus.CounterOpts{Name: "chmedic_slack_socket_connects_total", Help: "Socket Mode connections opened."}),
		envelopes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chmedic_slack_socket_envelopes_total", Help: "Socket Mode envelopes received and acknowledged, by type."}, []string{"type"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.connected, s.connects, s.envelopes)
	}
	return s
}

// Run keeps the connection until ctx ends. It waits for the envelopes in
// flight before returning.
func (s *SocketMode) Run(ctx context.Context) {
	defer s.wg.Wait()
	events := make(chan struct{})
	go func() { defer close(events); s.consume(ctx) }()
	defer func() { <-events }()
	wait := s.opts.RetryMin
	for {
		started := time.Now()
		err := s.client.RunContext(ctx)
		s.connected.Set(0)
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > s.opts.RetryMax {
			wait = s.opts.RetryMin
		}
		s.log.Error("Socket Mode connection to Slack failed; clicks are not received until it reopens", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(wait*2, s.opts.RetryMax)
	}
}

func (s *SocketMode) consume(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-s.client.Events:
			s.handle(ctx, evt)
		}
	}
}

func (s *SocketMode) handle(ctx context.Context, evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		s.log.Debug("connecting to Slack")
	case socketmode.EventTypeConnected:
		s.connected.Set(1)
		s.connects.Inc()
		s.log.Info("Socket Mode connected")
	case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth:
		s.connected.Set(0)
		s.log.Warn("Socket Mode connection error", "event", string(evt.Type), "data", evt.Data)
	case socketmode.EventTypeHello:
		s.log.Debug("Socket Mode hello")
	case socketmode.EventTypeErrorBadMessage:
		var cause error
		if bm, ok := evt.Data.(*socketmode.ErrorBadMessage); ok {
			cause = bm.Cause
		}
		s.log.Warn("Socket Mode message chmedic cannot read (not acknowledged)", "err", cause)
	case socketmode.EventTypeIncomingError, socketmode.EventTypeErrorWriteFailed:
		s.log.Warn("Socket Mode I/O error", "event", string(evt.Type), "data", evt.Data)
	case socketmode.EventTypeInteractive, socketmode.EventTypeSlashCommand, socketmode.EventTypeEventsAPI:
		if evt.Request == nil {
			return
		}
		req := *evt.Request
		s.envelopes.WithLabelValues(req.Type).Inc()
		// Each envelope on its own goroutine: a slow handler must not delay
		// the acks of the next ones past Slack's 3 s.
		s.wg.Go(func() { s.deliver(ctx, req) })
	}
}

func (s *SocketMode) deliver(ctx context.Context, req socketmode.Request) {
	var ack any
	switch req.Type {
	case socketmode.RequestTypeInteractive:
		if err := s.sink.SocketInteractive(ctx, req.Payload); err != nil {
			s.log.Warn("interactive envelope refused", "envelope_id", req.EnvelopeID, "err", err)
		}
	case socketmode.RequestTypeSlashCommands:
		resp, err := s.sink.SocketSlashCommand(ctx, req.Payload)
		if err != nil {
			s.log.Warn("slash command envelope refused", "envelope_id", req.EnvelopeID, "err", err)
		}
		ack = resp
	default:
		s.log.Debug("ignored a Socket Mode envelope", "type", req.Type)
	}
	if err := s.client.AckCtx(ctx, req.EnvelopeID, ack); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Warn("could not acknowledge a Socket Mode envelope", "envelope_id", req.EnvelopeID, "err", err)
	}
}
