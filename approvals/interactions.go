package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons an inbound Slack request is refused: the values of the reason
// label of chmedic_slack_interactions_rejected_total and the reason given
// to RefusalRecorder.
const (
	ReasonNotConfigured  = "not_configured"  // no signing secret: nothing is accepted
	ReasonMissingHeaders = "missing_headers" // no X-Slack-Signature / X-Slack-Request-Timestamp
	ReasonStale          = "stale"           // timestamp more than 5 minutes off
	ReasonBadSignature   = "bad_signature"   // signature does not match the body
	ReasonReplay         = "replay"          // a request already accepted
	ReasonTooLarge       = "too_large"       // body above the limit
	ReasonMalformed      = "malformed"       // signed, but not a payload Slack sends
)

// Transports, the values of the transport label.
const (
	TransportHTTP   = "http"
	TransportSocket = "socket_mode"
)

// RefusalRecorder records every refused inbound request in the audit log.
// detail never holds the body or a secret.
type RefusalRecorder interface {
	Refused(ctx context.Context, reason, detail string)
}

// Command is a slash command invocation, over HTTP or Socket Mode.
type Command struct {
	TeamID, UserID, UserName, ChannelID, Command, Text, ResponseURL, TriggerID string
	// ChannelName is the channel's name as Slack sends it (channel_name,
	// without "#"; "directmessage" or "privategroup" for some channels).
	ChannelName string
	ReceivedAt  time.Time
}

// CommandHandler handles slash commands. Like ClickHandler it must answer
// fast (Slack's 3 s); its Reply is shown only to the user who typed it.
type CommandHandler interface {
	HandleCommand(ctx context.Context, c Command) (Reply, error)
}

// Responder delivers a click's Reply to the user who clicked, through the
// click's response_url.
type Responder interface {
	Respond(ctx context.Context, responseURL string, r Reply) error
}

// Texts of the replies the dispatcher itself gives.
const (
	ReplyNotEnabled        = "Actions are not enabled yet on this chmedic: nothing was done."
	ReplyCommandsDisabled  = "chmedic has no slash commands enabled yet: nothing was done."
	replyHandlerFailedText = "chmedic could not record this click (%s): nothing was done. Try again, or use the chmedic CLI."
)

// InteractionMetrics are the inbound interaction metrics.
type InteractionMetrics struct {
	received *prometheus.CounterVec
	rejected *prometheus.CounterVec
	replies  *prometheus.CounterVec
}

// NewInteractionMetrics registers the interaction metrics on reg (nil: not registered).
func NewInteractionMetrics(reg prometheus.Registerer) *InteractionMetrics {
	m := &InteractionMetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_slack_interactions_total",
			Help: "Verified Slack interactions received, by transport and payload type.",
		}, []string{"transport", "type"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_slack_interactions_rejected_total",
			Help: "Inbound Slack requests refused, by reason (bad_signature, stale, replay, malformed, ...).",
		}, []string{"reason"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_slack_interaction_replies_total",
			Help: "Ephemeral replies to clicks sent through response_url, by result.",
		}, []string{"result"}),
	}
	for _, r := range []string{ReasonNotConfigured, ReasonMissingHeaders, ReasonStale, ReasonBadSignature, ReasonReplay, ReasonTooLarge, ReasonMalformed} {
		m.rejected.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.received, m.rejected, m.replies)
	}
	return m
}

// Dispatcher is the one handler behind both transports (the HTTP endpoint
// and Socket Mode): it turns a verified payload into Clicks and Commands,
// delivers them, and sends the replies. With no ClickHandler every click is
// answered ReplyNotEnabled (fail closed).
type Dispatcher struct {
	Clicks    ClickHandler
	Commands  CommandHandler
	Responder Responder           // default: ResponseURLResponder
	Refusals  RefusalRecorder     // optional
	Metrics   *InteractionMetrics // optional
	Log       *slog.Logger        // default: slog.Default()
	Now       func() time.Time
	// HandleTimeout bounds one HandleClick / HandleCommand [2s], so that
	// Slack gets its answer within its 3 s.
	HandleTimeout time.Duration

	wg sync.WaitGroup
}

// ErrMalformed wraps every payload the dispatcher cannot read.
var ErrMalformed = errors.New("malformed Slack payload")

func (d *Dispatcher) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Dispatcher) timeout() time.Duration {
	if d.HandleTimeout > 0 {
		return d.HandleTimeout
	}
	return 2 * time.Second
}

// Refuse counts and records a refused request.
func (d *Dispatcher) Refuse(ctx context.Context, transport, reason, detail string) {
	if d.Metrics != nil {
		d.Metrics.rejected.WithLabelValues(reason).Inc()
	}
	d.log().Warn("refused a Slack request", "transport", transport, "reason", reason, "detail", detail)
	if d.Refusals != nil {
		d.Refusals.Refused(ctx, reason, transport+": "+detail)
	}
}

// interaction is the part of Slack's interaction payload chmedic reads.
type interaction struct {
	Type string `json:"type"`
	Team *struct {
		ID string `json:"id"`
	} `json:"team"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Name     string `json:"name"`
		TeamID   string `json:"team_id"`
	} `json:"user"`
	Channel *struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		Type      string `json:"type"`
		MessageTS string `json:"message_ts"`
		ChannelID string `json:"channel_id"`
		ThreadTS  string `json:"thread_ts"`
	} `json:"container"`
	Message *struct {
		TS       string `json:"ts"`
		ThreadTS string `json:"thread_ts"`
	} `json:"message"`
	ResponseURL string `json:"response_url"`
	TriggerID   string `json:"trigger_id"`
	Actions     []struct {
		ActionID string `json:"action_id"`
		BlockID  string `json:"block_id"`
		Type     string `json:"type"`
		Value    string `json:"value"`
	} `json:"actions"`
}

// ParseClicks reads a block_actions payload (the JSON of the payload form
// field, or of a Socket Mode interactive envelope) into one Click per action
// (Slack sends one for a button). It returns the payload type; for any type
// but block_actions it returns no clicks and no error.
func ParseClicks(payload []byte, receivedAt time.Time) (string, []Click, error) {
	var p interaction
	if err := json.Unmarshal(payload, &p); err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if p.Type == "" {
		return "", nil, fmt.Errorf("%w: no type", ErrMalformed)
	}
	if p.Type != "block_actions" {
		return p.Type, nil, nil
	}
	team := p.User.TeamID
	if p.Team != nil && p.Team.ID != "" {
		team = p.Team.ID
	}
	channel := p.Container.ChannelID
	if p.Channel != nil && p.Channel.ID != "" {
		channel = p.Channel.ID
	}
	msgTS, threadTS := p.Container.MessageTS, p.Container.ThreadTS
	if p.Message != nil {
		if msgTS == "" {
			msgTS = p.Message.TS
		}
		if threadTS == "" {
			threadTS = p.Message.ThreadTS
		}
	}
	switch {
	case p.User.ID == "":
		return p.Type, nil, fmt.Errorf("%w: block_actions without user.id", ErrMalformed)
	case team == "":
		return p.Type, nil, fmt.Errorf("%w: block_actions without team id", ErrMalformed)
	case len(p.Actions) == 0:
		return p.Type, nil, fmt.Errorf("%w: block_actions without actions", ErrMalformed)
	}
	name := p.User.Username
	if name == "" {
		name = p.User.Name
	}
	clicks := make([]Click, 0, len(p.Actions))
	for i, a := range p.Actions {
		if a.ActionID == "" {
			return p.Type, nil, fmt.Errorf("%w: actions[%d] without action_id", ErrMalformed, i)
		}
		clicks = append(clicks, Click{
			TeamID: team, UserID: p.User.ID, UserName: name, ChannelID: channel,
			MessageTS: msgTS, ThreadTS: threadTS, ActionID: a.ActionID, Value: a.Value,
			ResponseURL: p.ResponseURL, TriggerID: p.TriggerID, ReceivedAt: receivedAt,
		})
	}
	return p.Type, clicks, nil
}

// Interactive handles one verified interaction payload. It returns an
// error wrapping ErrMalformed for a payload it cannot read (the caller
// refuses it); a handler's failure is told to the user, not returned. It
// returns once the handler has (durably) taken the click; the reply is sent
// in the background (Wait waits for it).
func (d *Dispatcher) Interactive(ctx context.Context, transport string, payload []byte) error {
	typ, clicks, err := ParseClicks(payload, d.now())
	if err != nil {
		return err
	}
	if d.Metrics != nil {
		d.Metrics.received.WithLabelValues(transport, typ).Inc()
	}
	if typ != "block_actions" {
		d.log().Info("ignored a Slack interaction of a type chmedic does not handle", "transport", transport, "type", typ)
		return nil
	}
	for _, c := range clicks {
		r := d.click(ctx, transport, c)
		if r.Ephemeral != "" {
			d.reply(c, r)
		}
	}
	return nil
}

func (d *Dispatcher) click(ctx context.Context, transport string, c Click) Reply {
	log := d.log().With("transport", transport, "team", c.TeamID, "user", c.UserID, "channel", c.ChannelID,
		"message_ts", c.MessageTS, "action_id", c.ActionID)
	if d.Clicks == nil {
		log.Info("click refused: actions are not enabled")
		return Reply{Ephemeral: ReplyNotEnabled}
	}
	hctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	r, err := d.Clicks.HandleClick(hctx, c)
	if err != nil {
		log.Error("click handler failed", "err", err)
		reason := "internal error"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "it took too long"
		}
		return Reply{Ephemeral: fmt.Sprintf(replyHandlerFailedText, reason)}
	}
	log.Info("click delivered")
	return r
}

func (d *Dispatcher) reply(c Click, r Reply) {
	if c.ResponseURL == "" {
		d.log().Warn("no response_url on the click: the reply is not shown", "user", c.UserID, "reply", r.Ephemeral)
		return
	}
	resp := d.Responder
	if resp == nil {
		resp = &ResponseURLResponder{}
	}
	d.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := resp.Respond(ctx, c.ResponseURL, r)
		result := "sent"
		if err != nil {
			result = "failed"
			d.log().Warn("could not send the reply to a click", "user", c.UserID, "err", err)
		}
		if d.Metrics != nil {
			d.Metrics.replies.WithLabelValues(result).Inc()
		}
	})
}

// Wait waits for the replies in flight.
func (d *Dispatcher) Wait() { d.wg.Wait() }

// SlashCommand delivers a slash command and returns the reply to show.
func (d *Dispatcher) SlashCommand(ctx context.Context, transport string, c Command) Reply {
	if d.Metrics != nil {
		d.Metrics.received.WithLabelValues(transport, "slash_command").Inc()
	}
	log := d.log().With("transport", transport, "team", c.TeamID, "user", c.UserID, "command", c.Command)
	if d.Commands == nil {
		log.Info("slash command refused: none enabled")
		return Reply{Ephemeral: ReplyCommandsDisabled}
	}
	hctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	r, err := d.Commands.HandleCommand(hctx, c)
	if err != nil {
		log.Error("slash command handler failed", "err", err)
		return Reply{Ephemeral: "chmedic could not run this command (internal error): nothing was done."}
	}
	return r
}

// ParseCommand reads a slash command's fields (the form Slack posts, or
// the Socket Mode payload's fields).
func ParseCommand(v url.Values, receivedAt time.Time) (Command, error) {
	c := Command{
		TeamID: v.Get("team_id"), UserID: v.Get("user_id"), UserName: v.Get("user_name"),
		ChannelID: v.Get("channel_id"), Command: v.Get("command"), Text: v.Get("text"),
		ResponseURL: v.Get("response_url"), TriggerID: v.Get("trigger_id"), ChannelName: v.Get("channel_name"), ReceivedAt: receivedAt,
	}
	switch {
	case c.Command == "":
		return c, fmt.Errorf("%w: slash command without command", ErrMalformed)
	case c.UserID == "" || c.TeamID == "":
		return c, fmt.Errorf("%w: slash command without user_id or team_id", ErrMalformed)
	}
	return c, nil
}

// ParseCommandJSON reads a Socket Mode slash_commands payload (a JSON object
// of string fields).
func ParseCommandJSON(payload []byte, receivedAt time.Time) (Command, error) {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		return Command{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	v := url.Values{}
	for k, x := range m {
		if s, ok := x.(string); ok {
			v.Set(k, s)
		}
	}
	return ParseCommand(v, receivedAt)
}

// CommandResponse is the body answering a slash command (HTTP response or
// Socket Mode ack payload): an ephemeral message, or nil for none.
func CommandResponse(r Reply) map[string]any {
	if r.Ephemeral == "" {
		return nil
	}
	return map[string]any{"response_type": "ephemeral", "text": r.Ephemeral}
}

// ResponseURLResponder posts replies to a click's response_url as Slack
// documents: {"response_type":"ephemeral","replace_original":false,"text":…}.
// Only https URLs are used, or http to a loopback address (tests).
type ResponseURLResponder struct {
	Client *http.Client // default: a client with a 10 s timeout
}

// Respond posts r to responseURL.
func (p *ResponseURLResponder) Respond(ctx context.Context, responseURL string, r Reply) error {
	body, _ := json.Marshal(map[string]any{"response_type": "ephemeral", "replace_original": false, "text": r.Ephemeral})
	return PostResponse(ctx, p.Client, responseURL, body)
}

// PostResponse posts a JSON body to a Slack response_url: only an https
// URL, or http to a loopback address (tests). hc nil: a client with a
// 10 s timeout.
func PostResponse(ctx context.Context, hc *http.Client, responseURL string, body []byte) error {
	u, err := url.Parse(responseURL)
	if err != nil {
		return fmt.Errorf("response_url: %w", err)
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !isLoopback(u.Hostname())) {
		return fmt.Errorf("response_url %s://%s: refusing a non-https URL", u.Scheme, u.Host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, responseURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("response_url: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("response_url: %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// HTTPHandler serves Slack's requests to chmedic: POST /slack/interactions
// (interactivity: payload=<JSON>) and POST /slack/commands (slash
// commands), both application/x-www-form-urlencoded and signed. The
// signature is verified over the raw body before anything is parsed; a
// refused request gets 401 (signature, window, replay) or 400 (malformed)
// with a one-line reason, is counted and recorded.
type HTTPHandler struct {
	// Verifier checks the signature, the window and replays; nil refuses
	// every request (no signing secret configured).
	Verifier   *Verifier
	Dispatcher *Dispatcher
	// MaxBodyBytes bounds the body [1 MiB].
	MaxBodyBytes int64
}

// Interactions is the handler of POST /slack/interactions.
func (h *HTTPHandler) Interactions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, ok := h.verified(w, r)
		if !ok {
			return
		}
		payload := form.Get("payload")
		if payload == "" {
			h.refuse(w, r, http.StatusBadRequest, ReasonMalformed, "no payload field")
			return
		}
		if err := h.Dispatcher.Interactive(r.Context(), TransportHTTP, []byte(payload)); err != nil {
			h.refuse(w, r, http.StatusBadRequest, ReasonMalformed, err.Error())
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// Commands is the handler of POST /slack/commands.
func (h *HTTPHandler) Commands() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, ok := h.verified(w, r)
		if !ok {
			return
		}
		if form.Get("ssl_check") != "" {
			// Slack checks the certificate of a slash command URL now and
			// then with ssl_check=1: nothing to do but answer.
			w.WriteHeader(http.StatusOK)
			return
		}
		c, err := ParseCommand(form, h.Dispatcher.now())
		if err != nil {
			h.refuse(w, r, http.StatusBadRequest, ReasonMalformed, err.Error())
			return
		}
		reply := h.Dispatcher.SlashCommand(r.Context(), TransportHTTP, c)
		if body := CommandResponse(reply); body != nil {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			_ = json.NewEncoder(w).Encode(body)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// verified reads, verifies and then parses the form body.
func (h *HTTPHandler) verified(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if h.Verifier == nil {
		h.refuse(w, r, http.StatusUnauthorized, ReasonNotConfigured, "no slack.signing_secret configured")
		return nil, false
	}
	limit := h.MaxBodyBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	if int64(len(body)) > limit {
		h.refuse(w, r, http.StatusRequestEntityTooLarge, ReasonTooLarge, fmt.Sprintf("body above %d bytes", limit))
		return nil, false
	}
	if err := h.Verifier.VerifyContext(r.Context(), r.Header, body); err != nil {
		reason := ""
		switch {
		case errors.Is(err, ErrMissingHeaders):
			reason = ReasonMissingHeaders
		case errors.Is(err, ErrStale):
			reason = ReasonStale
		case errors.Is(err, ErrBadSignature):
			reason = ReasonBadSignature
		case errors.Is(err, ErrReplay):
			reason = ReasonReplay
		default:
			h.Dispatcher.log().Error("cannot verify a Slack request", "err", err)
			http.Error(w, "cannot verify the request now", http.StatusServiceUnavailable)
			return nil, false
		}
		h.refuse(w, r, http.StatusUnauthorized, reason, err.Error())
		return nil, false
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		h.refuse(w, r, http.StatusBadRequest, ReasonMalformed, fmt.Sprintf("content type %q, want application/x-www-form-urlencoded", mt))
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		h.refuse(w, r, http.StatusBadRequest, ReasonMalformed, "invalid form body")
		return nil, false
	}
	return form, true
}

func (h *HTTPHandler) refuse(w http.ResponseWriter, r *http.Request, status int, reason, detail string) {
	h.Dispatcher.Refuse(r.Context(), TransportHTTP, reason, fmt.Sprintf("%s %s from %s: %s", r.Method, r.URL.Path, r.RemoteAddr, detail))
	http.Error(w, reason+": "+detail, status)
}

// SocketInteractive handles a Socket Mode interactive envelope's payload
// (internal/slack's SocketSink). A payload it cannot read is refused
// (counted and recorded) and returned as an error; the envelope is
// acknowledged either way.
func (d *Dispatcher) SocketInteractive(ctx context.Context, payload []byte) error {
	err := d.Interactive(ctx, TransportSocket, payload)
	if err != nil {
		d.Refuse(ctx, TransportSocket, ReasonMalformed, err.Error())
	}
	return err
}

// SocketSlashCommand handles a Socket Mode slash_commands envelope's
// payload and returns the ack payload (the ephemeral reply), or nil.
func (d *Dispatcher) SocketSlashCommand(ctx context.Context, payload []byte) (any, error) {
	c, err := ParseCommandJSON(payload, d.now())
	if err != nil {
		d.Refuse(ctx, TransportSocket, ReasonMalformed, err.Error())
		return nil, err
	}
	if body := CommandResponse(d.SlashCommand(ctx, TransportSocket, c)); body != nil {
		return body, nil
	}
	return nil, nil
}
