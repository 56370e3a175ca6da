package app

import (
	"context"
	"net/http"

	goslack "github.com/slack-go/slack"

	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
)

// InteractionOptions are the handlers Slack's clicks and slash commands are
// delivered to (fields of Options). A nil Clicks answers every click
// "actions are not enabled yet" and runs nothing (fail closed); a nil
// Commands is the /chmedic handler (slash_commands.go).
type InteractionOptions struct {
	Clicks   approvals.ClickHandler
	Commands approvals.CommandHandler
	Refusals approvals.RefusalRecorder
}

// setupInteractions builds the one dispatcher behind both transports, the
// HTTP routes (POST /slack/interactions, POST /slack/commands; refusing
// everything without a signing secret), the Socket Mode client when
// slack.socket_mode is set, and the user-group resolver.
func (a *App) setupInteractions() {
	cfg, log := a.cfg, a.log
	clicks, refusals := a.opts.Clicks, a.opts.Refusals
	if clicks == nil && a.Approvals != nil {
		clicks = a.Approvals
	}
	if refusals == nil && a.Approvals != nil {
		refusals = approvals.TransportRefusals{Audit: a.Approvals.Audit(), Log: log}
	}
	a.Interactions = &approvals.Dispatcher{
		Clicks:    clicks,
		Commands:  a.opts.Commands,
		Refusals:  refusals,
		Responder: &approvals.ResponseURLResponder{Client: a.opts.HTTPClient},
		Metrics:   approvals.NewInteractionMetrics(a.reg),
		Log:       log,
		Now:       a.opts.Now,
	}
	if cfg.Slack.Enabled() {
		a.UserGroups = chslack.NewUserGroups(interactionsSlackClient(&cfg.Slack, a.opts.HTTPClient), cfg.Slack.UserGroupCacheTTL, a.opts.Now)
	} else {
		a.UserGroups = chslack.NewUserGroups(nil, cfg.Slack.UserGroupCacheTTL, a.opts.Now)
	}

	if a.Approvals != nil {
		a.Approvals.SetGroupResolver(a.UserGroups)
	}
	if a.Interactions.Commands == nil {
		a.Interactions.Commands = a.setupSlashCommands() // slash_commands.go
	}

	h := &approvals.HTTPHandler{Dispatcher: a.Interactions}
	if cfg.Slack.SigningSecret.IsSet() {
		h.Verifier = approvals.NewVerifier(cfg.Slack.SigningSecret.Value()).WithReplayStore(a.Store).WithClock(a.opts.Now)
	} else if cfg.Slack.Enabled() && !cfg.Slack.SocketMode {
		log.Warn("no slack.signing_secret configured: every request to " + config.InteractionsPath + " is refused, so buttons do nothing")
	}
	a.mux.Handle("POST "+config.InteractionsPath, h.Interactions())
	a.mux.Handle("POST "+config.CommandsPath, h.Commands())

	if cfg.Slack.SocketMode {
		a.socket = chslack.NewSocketMode(a.Interactions, chslack.SocketModeOptions{
			AppToken:   cfg.Slack.AppToken.Value(),
			BotToken:   cfg.Slack.BotToken.Value(),
			APIURL:     cfg.Slack.APIURL,
			HTTPClient: a.opts.HTTPClient,
			Log:        log,
			Registerer: a.reg,
		})
	}
	if clicks == nil {
		log.Info("approval actions are not enabled: clicks are answered \"not enabled\" and run nothing")
	}
}

// startInteractions starts Socket Mode, if configured. The returned stop
// ends it and waits for the replies in flight.
func (a *App) startInteractions() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if a.socket != nil {
		go func() { defer close(done); a.socket.Run(ctx) }()
	} else {
		close(done)
	}
	return func() {
		cancel()
		<-done
		a.Interactions.Wait()
	}
}

func interactionsSlackClient(s *config.Slack, hc *http.Client) *goslack.Client {
	opts := []goslack.Option{goslack.OptionAPIURL(s.APIURL)}
	if hc != nil {
		opts = append(opts, goslack.OptionHTTPClient(hc))
	}
	return goslack.New(s.BotToken.Value(), opts...)
}
