package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/store"
)

// API is the part of the Slack Web API the outbox uses (*slack.Client).
type API interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	UpdateMessageContext(ctx context.Context, channelID, timestamp string, options ...slack.MsgOption) (string, string, string, error)
	GetConversationHistoryContext(ctx context.Context, params *slack.GetConversationHistoryParameters) (*slack.GetConversationHistoryResponse, error)
	GetConversationRepliesContext(ctx context.Context, params *slack.GetConversationRepliesParameters) ([]slack.Message, bool, string, error)
	GetConversationsContext(ctx context.Context, params *slack.GetConversationsParameters) ([]slack.Channel, string, error)
	GetPermalinkContext(ctx context.Context, params *slack.PermalinkParameters) (string, error)
}

// OutboxStore is the part of the store the outbox uses.
type OutboxStore interface {
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxEntry, error)
	DueInFlight(ctx context.Context, now time.Time, limit int) ([]store.OutboxEntry, error)
	ClaimOutbox(ctx context.Context, id int64) ([]byte, string, error)
	MarkOutcomeUnknown(ctx context.Context, id int64, next time.Time, errText string) error
	MarkLookupFailed(ctx context.Context, id int64, next time.Time, errText string) error
	MarkSent(ctx context.Context, id int64, channel, ts string) error
	MarkRetry(ctx context.Context, id int64, next time.Time, errText string, countAttempt bool) error
	MarkFailed(ctx context.Context, id int64, errText string) error
	ReplaceOutboxBody(ctx context.Context, id int64, body []byte) error
}

// MetadataEventType marks chmedic's messages so that a restart can find
// what it already posted.
const MetadataEventType = "chmedic_message"

// OutboxOptions configure the outbox worker.
type OutboxOptions struct {
	// Instance identifies the store (store.InstanceID): written into every
	// message's metadata and required of a message the lookup after an
	// unknown outcome takes for its own.
	Instance string
	// PostInterval is the minimum gap between posts to one channel (Slack
	// allows about one message per second per channel). Default 1s.
	PostInterval time.Duration
	// PostBurst is how many posts one channel may take at once before
	// PostInterval paces it (a token bucket: Slack allows short bursts
	// above one per second). Default 3; 1 paces strictly.
	PostBurst int
	// CoalesceWindow is the shortest time between two writes (post or
	// update) of one message: the changes within it are coalesced into
	// one chat.update carrying the latest body (slack.coalesce_window).
	// Default 3s; negative: updates go out as soon as the rate limits allow.
	CoalesceWindow time.Duration
	// UpdateInterval is the minimum gap between chat.update calls (Tier 3,
	// about 50 per minute). Default 1.2s.
	UpdateInterval time.Duration
	// BackoffBase and BackoffMax bound the retry delay after errors.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// CallTimeout bounds one Slack call. Default 10s.
	CallTimeout time.Duration
	// ConfigRetry is the slow retry after an operator error (invalid_auth,
	// token_revoked, not_in_channel, channel_not_found...): the messages
	// stay pending and are tried again this often. Default 1m.
	ConfigRetry time.Duration
	// MaxLookups bounds the searches for a message whose outcome is
	// unknown (backing off from BackoffBase); when none could tell, the
	// message is sent again. Default 5.
	MaxLookups int
	// LookupsPerStep bounds the lookups one step makes, after the sends,
	// so that stuck lookups never hold other threads up. Default 2.
	LookupsPerStep int
	// Poll is how often the worker looks for due entries without a kick.
	Poll       time.Duration
	Now        func() time.Time
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Outbox delivers stored messages to Slack, one at a time, in order per
// thread, within rate limits, retrying until Slack accepts them (slowly, and
// reporting itself Degraded, while Slack refuses the configuration). A post
// or reply whose outcome is unknown (a crash, a timeout or a 5xx mid-call)
// is looked up in the channel by its metadata before it is sent again, so
// it is posted once; when MaxLookups lookups cannot tell, it is sent again
// and counted, at the risk of a duplicate rather than a loss.
type Outbox struct {
	store OutboxStore
	api   API
	o     OutboxOptions
	kick  chan struct{}

	posts       map[string]*bucket   // per channel
	lastWrite   map[string]time.Time // per thread: its message's last post or update
	lastUpdate  time.Time
	pausedUntil map[string]time.Time // by API method after a 429; by pause scope after an operator error
	channelIDs  map[string]string    // #name → ID
	// configErrs holds the operator errors outstanding, by scope
	// ("token", "channel:<ch>", "lookup"), until a call in that scope works.
	configErrs map[string]string

	sent       *prometheus.CounterVec
	errs       *prometheus.CounterVec
	reconciled *prometheus.CounterVec
	limited    prometheus.Counter
	degraded   prometheus.Gauge
	mu         sync.Mutex
	degMu      sync.Mutex // guards configErrs for Degraded (read by /readyz while a step runs)
}

// NewOutbox builds the worker; api is the Slack client, or nil to write
// each message to the log instead (no bot token configured).
func NewOutbox(st OutboxStore, api API, o OutboxOptions) *Outbox {
	if o.PostInterval <= 0 {
		o.PostInterval = time.Second
	}
	if o.PostBurst <= 0 {
		o.PostBurst = 3
	}
	if o.CoalesceWindow == 0 {
		o.CoalesceWindow = 3 * time.Second
	}
	if o.UpdateInterval <= 0 {
		o.UpdateInterval = 1200 * time.Millisecond
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = time.Second
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 5 * time.Minute
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 500 * time.Millisecond
	}
	if o.ConfigRetry <= 0 {
		o.ConfigRetry = time.Minute
	}
	if o.MaxLookups <= 0 {
		o.MaxLookups = 5
	}
	if o.LookupsPerStep <= 0 {
		o.LookupsPerStep = 2
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ob := &Outbox{
		store: st, api: api, o: o, kick: make(chan struct{}, 1),
		posts: map[string]*bucket{}, lastWrite: map[string]time.Time{}, pausedUntil: map[string]time.Time{}, channelIDs: map[string]string{}, configErrs: map[string]string{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_slack_messages_total", Help: "Slack messages delivered, by kind (post, update, reply).",
		}, []string{"kind"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_slack_errors_total", Help: "Slack call failures, by kind (post, update, reply, lookup) and class (rate_limited, transient, permanent, config).",
		}, []string{"kind", "class"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_slack_reconcile_total", Help: "Messages whose delivery was unknown, by how it was settled (delivered, not_delivered, resent_unverified).",
		}, []string{"result"}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chmedic_slack_degraded", Help: "1 while Slack refuses chmedic's configuration (token, scopes, channel): messages are kept and retried slowly.",
		}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chmedic_slack_rate_limited_total", Help: "Slack 429 answers honoured.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(ob.sent, ob.errs, ob.reconciled, ob.limited, ob.degraded)
	}
	return ob
}

// Kick wakes the worker after new entries were stored.
func (ob *Outbox) Kick() {
	select {
	case ob.kick <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends.
func (ob *Outbox) Run(ctx context.Context) error {
	for {
		wait := ob.Step(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-ob.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// Step sends what is due now, then looks up a bounded number of entries
// whose outcome is unknown (each with its own backoff), so that a stuck
// lookup never holds other threads up; it returns how long to wait before
// the next step. Exported for tests.
func (ob *Outbox) Step(ctx context.Context) time.Duration {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	wait := ob.o.Poll
	ob.forgetWrites()
	if ss, ok := ob.store.(summaryStore); ok {
		if _, err := ss.FlushDueSummaries(ctx, ob.o.Now(), 20); err != nil {
			ob.o.Log.Error("outbox: queuing the due incident summaries failed; retrying on the next step", "err", err)
		}
	}
	due, err := ob.store.DueOutbox(ctx, ob.o.Now(), 50)
	if err != nil {
		ob.o.Log.Error("outbox: listing due entries failed", "err", err)
		return wait
	}
	blocked := map[string]bool{} // threads with an earlier entry not yet sent in this step
	for _, e := range due {
		if ctx.Err() != nil {
			return wait
		}
		if blocked[e.ThreadKey] {
			continue
		}
		if d := ob.notBefore(e); d > 0 {
			blocked[e.ThreadKey] = true
			wait = min(wait, d)
			continue
		}
		if !ob.send(ctx, e) {
			blocked[e.ThreadKey] = true
		}
	}
	inflight, err := ob.store.DueInFlight(ctx, ob.o.Now(), ob.o.LookupsPerStep)
	if err != nil {
		ob.o.Log.Error("outbox: listing in-flight entries failed", "err", err)
		return wait
	}
	for _, e := range inflight {
		if ctx.Err() != nil {
			return wait
		}
		ob.reconcile(ctx, e)
	}
	return wait
}

// Degraded names the operator errors Slack answered (a revoked token, a
// missing scope, a channel the bot cannot post to), or "" when there are
// none: messages are kept and retried slowly until it is fixed.
func (ob *Outbox) Degraded() string {
	ob.degMu.Lock()
	defer ob.degMu.Unlock()
	var parts []string
	for scope, e := range ob.configErrs {
		parts = append(parts, scope+": "+e)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func (ob *Outbox) setConfigErr(scope, msg string) {
	ob.degMu.Lock()
	defer ob.degMu.Unlock()
	if msg == "" {
		delete(ob.configErrs, scope)
	} else {
		ob.configErrs[scope] = msg
	}
	if len(ob.configErrs) > 0 {
		ob.degraded.Set(1)
	} else {
		ob.degraded.Set(0)
	}
}

// worked clears the operator errors a successful call in channel disproves.
func (ob *Outbox) worked(channel string) {
	ob.setConfigErr("token", "")
	if channel != "" {
		ob.setConfigErr("channel:"+channel, "")
	}
}

// notBefore is how long e must wait for the rate limits.
func (ob *Outbox) notBefore(e store.OutboxEntry) time.Duration {
	now := ob.o.Now()
	for _, scope := range []string{methodOf(e.Kind), "token", "channel:" + channelOf(e)} {
		if until := ob.pausedUntil[scope]; now.Before(until) {
			return until.Sub(now)
		}
	}
	if e.Kind == store.KindUpdate {
		// Coalescing: one write of a message per window; the versions
		// stored meanwhile replace the pending update.
		if ob.o.CoalesceWindow > 0 {
			if next := ob.lastWrite[e.ThreadKey].Add(ob.o.CoalesceWindow); now.Before(next) {
				return next.Sub(now)
			}
		}
		if next := ob.lastUpdate.Add(ob.o.UpdateInterval); now.Before(next) {
			return next.Sub(now)
		}
		return 0
	}
	return ob.bucket(channelOf(e)).wait(now, ob.o.PostBurst, ob.o.PostInterval)
}

func (ob *Outbox) bucket(channel string) *bucket {
	b := ob.posts[channel]
	if b == nil {
		b = &bucket{}
		ob.posts[channel] = b
	}
	return b
}

// forgetWrites drops the coalescing marks older than the window (bounded
// by the messages written within it).
func (ob *Outbox) forgetWrites() {
	now := ob.o.Now()
	for k, at := range ob.lastWrite {
		if now.Sub(at) >= ob.o.CoalesceWindow {
			delete(ob.lastWrite, k)
		}
	}
}

func methodOf(kind string) string {
	if kind == store.KindUpdate {
		return "chat.update"
	}
	return "chat.postMessage"
}

func channelOf(e store.OutboxEntry) string {
	if e.Kind == store.KindPost {
		return e.Channel
	}
	return e.ThreadChannel
}

// send delivers one entry; it reports whether it was delivered.
func (ob *Outbox) send(ctx context.Context, e store.OutboxEntry) bool {
	log := ob.o.Log.With("outbox_id", e.ID, "kind", e.Kind, "thread_key", e.ThreadKey)
	// Claiming returns the version to send: a newer one stored since the
	// entry was listed replaced it, and the listed one is never sent.
	b, ch, err := ob.store.ClaimOutbox(ctx, e.ID)
	if errors.Is(err, store.ErrNotFound) {
		log.Debug("outbox: entry no longer pending (superseded or claimed meanwhile); not sending it")
		return false
	}
	if err != nil {
		log.Error("outbox: marking sending failed; not sending it now", "err", err)
		return false
	}
	e.Body = b
	if ch != "" {
		e.Channel = ch
	}
	var msg Message
	if err := json.Unmarshal(e.Body, &msg); err != nil {
		log.Error("outbox: undecodable body; giving up on it", "err", err)
		ob.markFailed(ctx, e, "undecodable body: "+err.Error(), log)
		return false
	}
	if msg.Summary != nil {
		log = log.With("summary_changes", msg.Summary.Changes, "summary_span", summaryAge(*msg.Summary))
		msg = RenderSummary(*msg.Summary)
	}
	if ob.api == nil {
		// No bot token: the log is the channel.
		text := msg.Plain
		if text == "" {
			text = msg.Text
		}
		channel := channelOf(e)
		log.Info("slack disabled (no bot token): message that would be posted", "channel", channel, "message", text)
		if err := ob.store.MarkSent(context.WithoutCancel(ctx), e.ID, channel, fmt.Sprintf("log.%06d", e.ID)); err != nil {
			log.Error("outbox: logged but marking sent failed; it will be reconciled", "err", err)
		}
		ob.sent.WithLabelValues(e.Kind).Inc()
		return true
	}
	cctx, cancel := context.WithTimeout(ctx, ob.o.CallTimeout)
	defer cancel()
	if e.Kind == store.KindPost && msg.Previous != nil {
		msg = ob.linkPrevious(cctx, msg, log)
	}
	opts := []slack.MsgOption{
		slack.MsgOptionText(msg.Text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataEventType, EventPayload: ob.metadata(e)}),
	}
	if len(msg.Blocks.BlockSet) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(msg.Blocks.BlockSet...))
	}
	var channel, ts string
	now := ob.o.Now()
	switch e.Kind {
	case store.KindPost:
		ob.bucket(e.Channel).take(now, ob.o.PostBurst, ob.o.PostInterval)
		ob.lastWrite[e.ThreadKey] = now
		channel, ts, err = ob.api.PostMessageContext(cctx, e.Channel, opts...)
	case store.KindReply:
		ob.bucket(e.ThreadChannel).take(now, ob.o.PostBurst, ob.o.PostInterval)
		opts = append(opts, slack.MsgOptionTS(e.ThreadTS))
		if msg.Broadcast {
			opts = append(opts, slack.MsgOptionBroadcast())
		}
		channel, ts, err = ob.api.PostMessageContext(cctx, e.ThreadChannel, opts...)
	case store.KindUpdate:
		ob.lastUpdate = now
		ob.lastWrite[e.ThreadKey] = now
		channel, ts, _, err = ob.api.UpdateMessageContext(cctx, e.ThreadChannel, e.ThreadTS, opts...)
	case store.KindReplyUpdate:
		ob.lastUpdate = now
		channel, ts, err = ob.updateReply(cctx, e.ID, e.ThreadChannel, opts)
	default:
		err = fmt.Errorf("unknown outbox kind %q", e.Kind)
	}
	if err == nil {
		ob.worked(channelOf(e))
		if err := ob.store.MarkSent(context.WithoutCancel(ctx), e.ID, channel, ts); err != nil {
			log.Error("outbox: delivered but marking sent failed; it will be reconciled", "err", err)
		}
		ob.sent.WithLabelValues(e.Kind).Inc()
		log.Info("slack message delivered", "channel", channel, "ts", ts)
		return true
	}
	ob.failed(ctx, e, err, log)
	return false
}

// linkPrevious adds a link to the message a re-fire follows; without a
// permalink it names the previous message's time instead.
func (ob *Outbox) linkPrevious(ctx context.Context, msg Message, log *slog.Logger) Message {
	p := msg.Previous
	text := "Fired again: the previous occurrence resolved " + p.ResolvedText + "."
	link, err := ob.api.GetPermalinkContext(ctx, &slack.PermalinkParameters{Channel: p.Channel, Ts: p.TS})
	if err != nil {
		log.Warn("outbox: no permalink for the previous message; naming it without a link", "err", err)
	} else {
		text = fmt.Sprintf("Fired again: <%s|the previous occurrence> resolved %s.", linkURL(link), p.ResolvedText)
	}
	block := slack.NewContextBlock("previous", mrkdwn(":repeat: "+text))
	bs := msg.Blocks.BlockSet
	switch {
	case len(bs) > 0 && len(bs) < MaxBlocks:
		// After the header and the meta line.
		at := min(2, len(bs))
		bs = append(bs[:at:at], append([]slack.Block{block}, bs[at:]...)...)
	case len(bs) > 0:
		// No room for a block: the meta line (a context block holds up to
		// ten elements) carries it.
		if c, ok := bs[min(1, len(bs)-1)].(*slack.ContextBlock); ok && len(c.ContextElements.Elements) < 10 {
			c.ContextElements.Elements = append(c.ContextElements.Elements, mrkdwn(":repeat: "+text))
		}
	default:
		msg.Text = clip(msg.Text+"\n:repeat: "+text, MaxFallbackText)
	}
	msg.Blocks.BlockSet = bs
	msg.Previous = nil
	return msg
}

func (ob *Outbox) markFailed(ctx context.Context, e store.OutboxEntry, errText string, log *slog.Logger) {
	if err := ob.store.MarkFailed(context.WithoutCancel(ctx), e.ID, errText); err != nil {
		log.Error("outbox: marking the entry failed did not work; it stays as it was", "err", err)
	}
}

func (ob *Outbox) markRetry(ctx context.Context, e store.OutboxEntry, next time.Time, errText string, countAttempt bool, log *slog.Logger) {
	if err := ob.store.MarkRetry(context.WithoutCancel(ctx), e.ID, next, errText, countAttempt); err != nil {
		log.Error("outbox: scheduling the retry failed; the entry stays in flight and will be looked up", "err", err, "retry_at", next)
	}
}

// failed classifies a Slack error and schedules what comes next.
func (ob *Outbox) failed(ctx context.Context, e store.OutboxEntry, err error, log *slog.Logger) {
	ctx = context.WithoutCancel(ctx)
	now := ob.o.Now()
	var rl *slack.RateLimitedError
	var sr slack.SlackErrorResponse
	switch {
	case errors.As(err, &rl):
		ob.limited.Inc()
		ob.errs.WithLabelValues(e.Kind, "rate_limited").Inc()
		retry := max(rl.RetryAfter, time.Second)
		ob.pausedUntil[methodOf(e.Kind)] = now.Add(retry)
		log.Warn("slack rate limited; honouring Retry-After", "retry_after", retry)
		ob.markRetry(ctx, e, now.Add(retry), err.Error(), false, log)
	case errors.As(err, &sr) && configCode(sr.Err) != "":
		// The message is back in pending before the outbox says it is
		// degraded: whoever sees /readyz degraded finds it kept.
		ob.markRetry(ctx, e, now.Add(ob.o.ConfigRetry), err.Error(), false, log)
		ob.configError(e, sr.Err, err, log)
	case errors.As(err, &sr) && (sr.Err == "invalid_blocks" || sr.Err == "invalid_blocks_format" || sr.Err == "msg_too_long" || sr.Err == "too_many_blocks"):
		// Our blocks were refused: deliver the text alone rather than nothing.
		ob.errs.WithLabelValues(e.Kind, "permanent").Inc()
		var msg Message
		if jerr := json.Unmarshal(e.Body, &msg); jerr != nil || len(msg.Blocks.BlockSet) == 0 {
			log.Error("slack refused even the text-only message; giving up", "err", err)
			ob.markFailed(ctx, e, err.Error(), log)
			return
		}
		log.Error("slack refused the blocks; falling back to text only", "err", err)
		body, _ := json.Marshal(Message{Text: clip(msg.Text+"\n(chmedic: the full message was refused by Slack: "+sr.Err+")", MaxFallbackText), Broadcast: msg.Broadcast})
		if rerr := ob.store.ReplaceOutboxBody(ctx, e.ID, body); rerr != nil {
			// Not at once: the same blocks would be refused again.
			next := now.Add(ob.backoff(e.Attempts + 1))
			log.Error("outbox: storing the text-only fallback failed; retrying later", "err", rerr, "retry_at", next)
			ob.markRetry(ctx, e, next, err.Error(), true, log)
			return
		}
		ob.markRetry(ctx, e, now, err.Error(), true, log)
	case errors.As(err, &sr) && sr.Err == "ratelimited":
		ob.limited.Inc()
		ob.errs.WithLabelValues(e.Kind, "rate_limited").Inc()
		ob.pausedUntil[methodOf(e.Kind)] = now.Add(time.Second)
		ob.markRetry(ctx, e, now.Add(time.Second), err.Error(), false, log)
	case errors.As(err, &sr) && !transientCode(sr.Err):
		ob.errs.WithLabelValues(e.Kind, "permanent").Inc()
		log.Error("slack refused the message; giving up on it", "err", err)
		ob.markFailed(ctx, e, err.Error(), log)
	default:
		ob.errs.WithLabelValues(e.Kind, "transient").Inc()
		next := now.Add(ob.backoff(e.Attempts + 1))
		if e.Kind == store.KindUpdate || !maybeDelivered(err) {
			log.Warn("slack call failed; will retry", "err", err, "retry_at", next)
			ob.markRetry(ctx, e, next, err.Error(), true, log)
			return
		}
		// Slack may have posted it before failing: leave it in flight so that
		// it is looked up before it is sent again.
		lookAt := now.Add(ob.o.BackoffBase)
		log.Warn("slack call failed with an unknown outcome; will look it up before retrying", "err", err, "lookup_at", lookAt)
		if err := ob.store.MarkOutcomeUnknown(ctx, e.ID, lookAt, err.Error()); err != nil {
			log.Error("outbox: scheduling the lookup failed; it is looked up at once", "err", err)
		}
	}
}

// configError records an operator error: counted, logged, the outbox
// degraded and the scope paused for ConfigRetry.
func (ob *Outbox) configError(e store.OutboxEntry, code string, err error, log *slog.Logger) {
	kind := e.Kind
	scope := configCode(code)
	if scope == "channel" {
		scope = "channel:" + channelOf(e)
	}
	ob.errs.WithLabelValues(kind, "config").Inc()
	ob.setConfigErr(scope, code)
	ob.pausedUntil[scope] = ob.o.Now().Add(ob.o.ConfigRetry)
	log.Error("slack refused chmedic's configuration; the message is kept and retried slowly (fix the token, scopes or channel)",
		"err", err, "code", code, "scope", scope, "retry_in", ob.o.ConfigRetry)
}

// configCode classifies the errors an operator must fix: "token" for the
// token and its scopes (every call fails), "channel" for one channel, ""
// for any other error.
func configCode(code string) string {
	switch code {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission",
		"missing_scope", "not_allowed_token_type", "ekm_access_denied", "team_access_not_granted", "access_denied",
		"org_login_required", "two_factor_setup_required", "team_not_found", "invalid_token":
		return "token"
	case "not_in_channel", "channel_not_found", "is_archived", "restricted_action", "restricted_action_read_only_channel",
		"restricted_action_thread_only_channel", "restricted_action_non_threadable_channel", "cannot_reply_to_message":
		return "channel"
	}
	return ""
}

func transientCode(code string) bool {
	switch code {
	case "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org":
		return true
	}
	return false
}

// maybeDelivered is true for failures after which Slack may still have
// accepted the message (timeouts, dropped connections, server errors).
func maybeDelivered(err error) bool {
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return sc.Code >= 500
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "EOF")
}

func (ob *Outbox) backoff(attempt int) time.Duration {
	d := ob.o.BackoffBase
	for i := 1; i < attempt && d < ob.o.BackoffMax; i++ {
		d *= 2
	}
	return min(d, ob.o.BackoffMax)
}

// reconcile settles an entry whose outcome is unknown: a post or reply is
// looked up by its metadata; an update is simply sent again (idempotent).
// A lookup that cannot tell is retried with backoff, at most MaxLookups
// times; then the message is sent again (with the same metadata, so that a
// duplicate is identifiable), loudly: an error log and
// chmedic_slack_reconcile_total{result="resent_unverified"}.
func (ob *Outbox) reconcile(ctx context.Context, e store.OutboxEntry) {
	log := ob.o.Log.With("outbox_id", e.ID, "kind", e.Kind, "thread_key", e.ThreadKey)
	if e.Kind == store.KindUpdate || e.Kind == store.KindReplyUpdate {
		ob.markRetry(ctx, e, ob.o.Now(), "outcome unknown; resending the update", false, log)
		return
	}
	if ob.api == nil {
		// Log mode: nothing to look up; the log line may be written twice.
		ob.markRetry(ctx, e, ob.o.Now(), "interrupted in log mode", false, log)
		return
	}
	channel, ts, err := ob.find(ctx, e)
	switch {
	case err != nil:
		var sr slack.SlackErrorResponse
		if errors.As(err, &sr) && configCode(sr.Err) != "" {
			ob.errs.WithLabelValues("lookup", "config").Inc()
			ob.setConfigErr("lookup", sr.Err+" (conversations.history/replies: grant channels:history and groups:history)")
		} else {
			ob.errs.WithLabelValues("lookup", "transient").Inc()
		}
		if e.Lookups+1 >= ob.o.MaxLookups {
			// Backing off by the attempts made: during a long outage each
			// new attempt gets one lookup, not a tight loop.
			next := ob.o.Now().Add(ob.backoff(e.Attempts))
			ob.reconciled.WithLabelValues("resent_unverified").Inc()
			log.Error("outbox: cannot tell whether an interrupted message was delivered; sending it again (it may show twice)",
				"err", err, "lookups", e.Lookups+1, "retry_at", next)
			ob.markRetry(ctx, e, next, "resent unverified after "+strconv.Itoa(e.Lookups+1)+" failed lookups: "+err.Error(), false, log)
			return
		}
		next := ob.o.Now().Add(ob.backoff(e.Lookups + 2))
		log.Warn("outbox: cannot yet tell whether an interrupted message was delivered; will look again", "err", err, "lookup_at", next)
		if err := ob.store.MarkLookupFailed(ctx, e.ID, next, "lookup failed: "+err.Error()); err != nil {
			log.Error("outbox: recording the failed lookup failed", "err", err)
		}
	case ts != "":
		ob.setConfigErr("lookup", "")
		ob.reconciled.WithLabelValues("delivered").Inc()
		log.Info("outbox: interrupted message had been delivered; not sending it again", "channel", channel, "ts", ts)
		if err := ob.store.MarkSent(ctx, e.ID, channel, ts); err != nil {
			log.Error("outbox: marking reconciled entry sent failed", "err", err)
		}
	default:
		ob.setConfigErr("lookup", "")
		ob.reconciled.WithLabelValues("not_delivered").Inc()
		log.Info("outbox: interrupted message was not delivered; sending it again")
		ob.markRetry(ctx, e, ob.o.Now(), "not delivered before interruption", false, log)
	}
}

// metadata is what a message carries to be found again after an unknown
// outcome: the entry's id, its thread and the store it comes from.
func (ob *Outbox) metadata(e store.OutboxEntry) map[string]any {
	m := map[string]any{"outbox_id": strconv.FormatInt(e.ID, 10), "thread_key": e.ThreadKey}
	if ob.o.Instance != "" {
		m["store"] = ob.o.Instance
	}
	return m
}

// ours reports whether m is the message entry e posted: the same outbox
// id and thread, from this store. Outbox ids are per store, so another
// store's message in the same channel may carry the same id; a message
// without a store (posted before stores were named) matches on id and
// thread alone.
func (ob *Outbox) ours(m slack.Message, e store.OutboxEntry) bool {
	p := m.Metadata.EventPayload
	if m.Metadata.EventType != MetadataEventType || fmt.Sprint(p["outbox_id"]) != strconv.FormatInt(e.ID, 10) {
		return false
	}
	if tk, ok := p["thread_key"]; ok && fmt.Sprint(tk) != e.ThreadKey {
		return false
	}
	if st, ok := p["store"]; ok && ob.o.Instance != "" && fmt.Sprint(st) != ob.o.Instance {
		return false
	}
	return true
}

// find searches the channel (or the thread) for the message this entry
// posted (its metadata: ours).
func (ob *Outbox) find(ctx context.Context, e store.OutboxEntry) (string, string, error) {
	cctx, cancel := context.WithTimeout(ctx, ob.o.CallTimeout)
	defer cancel()
	match := func(m slack.Message) bool { return ob.ours(m, e) }
	oldest := strconv.FormatInt(e.CreatedAt.Add(-time.Minute).Unix(), 10)
	if e.Kind == store.KindReply {
		cursor := ""
		for {
			msgs, more, next, err := ob.api.GetConversationRepliesContext(cctx, &slack.GetConversationRepliesParameters{
				ChannelID: e.ThreadChannel, Timestamp: e.ThreadTS, Oldest: oldest, IncludeAllMetadata: true, Limit: 200, Cursor: cursor})
			if err != nil {
				return "", "", err
			}
			for _, m := range msgs {
				if match(m) {
					return e.ThreadChannel, m.Timestamp, nil
				}
			}
			if !more || next == "" {
				return "", "", nil
			}
			cursor = next
		}
	}
	channel, err := ob.channelID(cctx, e.Channel)
	if err != nil {
		return "", "", err
	}
	cursor := ""
	for {
		resp, err := ob.api.GetConversationHistoryContext(cctx, &slack.GetConversationHistoryParameters{
			ChannelID: channel, Oldest: oldest, IncludeAllMetadata: true, Limit: 200, Cursor: cursor})
		if err != nil {
			return "", "", err
		}
		for _, m := range resp.Messages {
			if match(m) {
				return channel, m.Timestamp, nil
			}
		}
		if !resp.HasMore || resp.ResponseMetaData.NextCursor == "" {
			return "", "", nil
		}
		cursor = resp.ResponseMetaData.NextCursor
	}
}

// channelID resolves "#name" (or "name") to the channel ID history needs.
func (ob *Outbox) channelID(ctx context.Context, ch string) (string, error) {
	if looksLikeID(ch) {
		return ch, nil
	}
	name := strings.TrimPrefix(ch, "#")
	if id, ok := ob.channelIDs[name]; ok {
		return id, nil
	}
	cursor := ""
	for {
		chans, next, err := ob.api.GetConversationsContext(ctx, &slack.GetConversationsParameters{
			Cursor: cursor, ExcludeArchived: true, Limit: 1000, Types: []string{"public_channel", "private_channel"}})
		if err != nil {
			return "", fmt.Errorf("resolving channel %s: %w", ch, err)
		}
		for _, c := range chans {
			ob.channelIDs[c.Name] = c.ID
		}
		if id, ok := ob.channelIDs[name]; ok {
			return id, nil
		}
		if next == "" {
			return "", fmt.Errorf("resolving channel %s: not found", ch)
		}
		cursor = next
	}
}

func looksLikeID(ch string) bool {
	if len(ch) < 9 || !strings.ContainsRune("CGD", rune(ch[0])) {
		return false
	}
	for _, r := range ch {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
