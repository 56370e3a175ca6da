package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
}

// OutboxStore is the part of the store the outbox uses.
type OutboxStore interface {
	DueOutbox(ctx context.Context, now time.Time, limit int) ([]store.OutboxEntry, error)
	InFlightOutbox(ctx context.Context) ([]store.OutboxEntry, error)
	MarkSending(ctx context.Context, id int64) error
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
	// PostInterval is the minimum gap between posts to one channel (Slack
	// allows about one message per second per channel). Default 1s.
	PostInterval time.Duration
	// UpdateInterval is the minimum gap between chat.update calls (Tier 3,
	// about 50 per minute). Default 1.2s.
	UpdateInterval time.Duration
	// BackoffBase and BackoffMax bound the retry delay after errors.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// CallTimeout bounds one Slack call. Default 10s.
	CallTimeout time.Duration
	// Poll is how often the worker looks for due entries without a kick.
	Poll       time.Duration
	Now        func() time.Time
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Outbox delivers stored messages to Slack, one at a time, in order per
// thread, within rate limits, retrying until Slack accepts them. A post or
// reply whose outcome is unknown (a crash or a timeout mid-call) is looked up
// in the channel by its metadata before it is sent again, so it is posted
// exactly once.
type Outbox struct {
	store OutboxStore
	api   API
	o     OutboxOptions
	kick  chan struct{}

	lastPost    map[string]time.Time
	lastUpdate  time.Time
	pausedUntil map[string]time.Time // by API method, after a 429
	channelIDs  map[string]string    // #name → ID

	sent    *prometheus.CounterVec
	errs    *prometheus.CounterVec
	limited prometheus.Counter
	mu      sync.Mutex
}

// NewOutbox builds the worker; api is the Slack client, or nil to write
// each message to the log instead (no bot token configured).
func NewOutbox(st OutboxStore, api API, o OutboxOptions) *Outbox {
	if o.PostInterval <= 0 {
		o.PostInterval = time.Second
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
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	ob := &Outbox{
		store: st, api: api, o: o, kick: make(chan struct{}, 1),
		lastPost: map[string]time.Time{}, pausedUntil: map[string]time.Time{}, channelIDs: map[string]string{},
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_slack_messages_total", Help: "Slack messages delivered, by kind (post, update, reply).",
		}, []string{"kind"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_slack_errors_total", Help: "Slack call failures, by kind and class (rate_limited, transient, permanent).",
		}, []string{"kind", "class"}),
		limited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chmedic_slack_rate_limited_total", Help: "Slack 429 answers honoured.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(ob.sent, ob.errs, ob.limited)
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

// Step reconciles in-flight entries and sends what is due now; it returns
// how long to wait before the next step. Exported for tests.
func (ob *Outbox) Step(ctx context.Context) time.Duration {
	ob.mu.Lock()
	defer ob.mu.Unlock()
	wait := ob.o.Poll
	inflight, err := ob.store.InFlightOutbox(ctx)
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
	return wait
}

// notBefore is how long e must wait for the rate limits.
func (ob *Outbox) notBefore(e store.OutboxEntry) time.Duration {
	now := ob.o.Now()
	method := methodOf(e.Kind)
	if until := ob.pausedUntil[method]; now.Before(until) {
		return until.Sub(now)
	}
	if e.Kind == store.KindUpdate {
		if next := ob.lastUpdate.Add(ob.o.UpdateInterval); now.Before(next) {
			return next.Sub(now)
		}
		return 0
	}
	if next := ob.lastPost[channelOf(e)].Add(ob.o.PostInterval); now.Before(next) {
		return next.Sub(now)
	}
	return 0
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
	var msg Message
	if err := json.Unmarshal(e.Body, &msg); err != nil {
		log.Error("outbox: undecodable body; giving up on it", "err", err)
		ob.store.MarkFailed(ctx, e.ID, "undecodable body: "+err.Error())
		return false
	}
	if err := ob.store.MarkSending(ctx, e.ID); err != nil {
		log.Error("outbox: marking sending failed", "err", err)
		return false
	}
	if ob.api == nil {
		// No bot token: the log is the channel.
		text := msg.Plain
		if text == "" {
			text = msg.Text
		}
		channel := channelOf(e)
		log.Info("slack disabled (no bot token): message that would be posted", "channel", channel, "message", text)
		ob.store.MarkSent(context.WithoutCancel(ctx), e.ID, channel, fmt.Sprintf("log.%06d", e.ID))
		ob.sent.WithLabelValues(e.Kind).Inc()
		return true
	}
	opts := []slack.MsgOption{
		slack.MsgOptionText(msg.Text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: MetadataEventType, EventPayload: map[string]any{
			"outbox_id": strconv.FormatInt(e.ID, 10), "thread_key": e.ThreadKey,
		}}),
	}
	if len(msg.Blocks.BlockSet) > 0 {
		opts = append(opts, slack.MsgOptionBlocks(msg.Blocks.BlockSet...))
	}
	cctx, cancel := context.WithTimeout(ctx, ob.o.CallTimeout)
	defer cancel()
	var channel, ts string
	var err error
	now := ob.o.Now()
	switch e.Kind {
	case store.KindPost:
		ob.lastPost[e.Channel] = now
		channel, ts, err = ob.api.PostMessageContext(cctx, e.Channel, opts...)
	case store.KindReply:
		ob.lastPost[e.ThreadChannel] = now
		channel, ts, err = ob.api.PostMessageContext(cctx, e.ThreadChannel, append(opts, slack.MsgOptionTS(e.ThreadTS))...)
	case store.KindUpdate:
		ob.lastUpdate = now
		channel, ts, _, err = ob.api.UpdateMessageContext(cctx, e.ThreadChannel, e.ThreadTS, opts...)
	case store.KindReplyUpdate:
		ob.lastUpdate = now
		channel, ts, err = ob.updateReply(cctx, e.ID, e.ThreadChannel, opts)
	default:
		err = fmt.Errorf("unknown outbox kind %q", e.Kind)
	}
	if err == nil {
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
		ob.store.MarkRetry(ctx, e.ID, now.Add(retry), err.Error(), false)
	case errors.As(err, &sr) && (sr.Err == "invalid_blocks" || sr.Err == "invalid_blocks_format" || sr.Err == "msg_too_long" || sr.Err == "too_many_blocks"):
		// Our blocks were refused: deliver the text alone rather than nothing.
		ob.errs.WithLabelValues(e.Kind, "permanent").Inc()
		var msg Message
		json.Unmarshal(e.Body, &msg)
		if len(msg.Blocks.BlockSet) == 0 {
			log.Error("slack refused even the text-only message; giving up", "err", err)
			ob.store.MarkFailed(ctx, e.ID, err.Error())
			return
		}
		log.Error("slack refused the blocks; falling back to text only", "err", err)
		body, _ := json.Marshal(Message{Text: clip(msg.Text+"\n(chmedic: the full message was refused by Slack: "+sr.Err+")", MaxFallbackText)})
		ob.store.ReplaceOutboxBody(ctx, e.ID, body)
		ob.store.MarkRetry(ctx, e.ID, now, err.Error(), true)
	case errors.As(err, &sr) && sr.Err == "ratelimited":
		ob.limited.Inc()
		ob.errs.WithLabelValues(e.Kind, "rate_limited").Inc()
		ob.pausedUntil[methodOf(e.Kind)] = now.Add(time.Second)
		ob.store.MarkRetry(ctx, e.ID, now.Add(time.Second), err.Error(), false)
	case errors.As(err, &sr) && !transientCode(sr.Err):
		ob.errs.WithLabelValues(e.Kind, "permanent").Inc()
		log.Error("slack refused the message; giving up on it", "err", err)
		ob.store.MarkFailed(ctx, e.ID, err.Error())
	default:
		ob.errs.WithLabelValues(e.Kind, "transient").Inc()
		next := now.Add(ob.backoff(e.Attempts + 1))
		if e.Kind == store.KindUpdate || !maybeDelivered(err) {
			log.Warn("slack call failed; will retry", "err", err, "retry_at", next)
			ob.store.MarkRetry(ctx, e.ID, next, err.Error(), true)
			return
		}
		// Slack may have posted it before failing: leave it in flight so the
		// next step looks it up before sending again.
		log.Warn("slack call failed with an unknown outcome; will look it up before retrying", "err", err)
	}
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
func (ob *Outbox) reconcile(ctx context.Context, e store.OutboxEntry) {
	log := ob.o.Log.With("outbox_id", e.ID, "kind", e.Kind, "thread_key", e.ThreadKey)
	if e.Kind == store.KindUpdate || e.Kind == store.KindReplyUpdate {
		ob.store.MarkRetry(ctx, e.ID, ob.o.Now(), "outcome unknown; resending the update", false)
		return
	}
	channel, ts, err := ob.find(ctx, e)
	switch {
	case err != nil:
		log.Warn("outbox: cannot yet tell whether an interrupted message was delivered; will look again", "err", err)
	case ts != "":
		log.Info("outbox: interrupted message had been delivered; not sending it again", "channel", channel, "ts", ts)
		if err := ob.store.MarkSent(ctx, e.ID, channel, ts); err != nil {
			log.Error("outbox: marking reconciled entry sent failed", "err", err)
		}
	default:
		log.Info("outbox: interrupted message was not delivered; sending it again")
		ob.store.MarkRetry(ctx, e.ID, ob.o.Now(), "not delivered before interruption", false)
	}
}

// find searches the channel (or the thread) for the message carrying this
// entry's outbox id in its metadata.
func (ob *Outbox) find(ctx context.Context, e store.OutboxEntry) (string, string, error) {
	cctx, cancel := context.WithTimeout(ctx, ob.o.CallTimeout)
	defer cancel()
	want := strconv.FormatInt(e.ID, 10)
	match := func(m slack.Message) bool {
		return m.Metadata.EventType == MetadataEventType && fmt.Sprint(m.Metadata.EventPayload["outbox_id"]) == want
	}
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
