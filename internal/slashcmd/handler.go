// Package slashcmd answers chmedic's slash command (`/chmedic diagnose
// [cluster]`, `digest [cluster]`, `freezes`, `help`) delivered by the
// approvals Dispatcher over HTTP or Socket Mode. It acknowledges at once
// (the HTTP answer or the Socket Mode ack carries "working on it" or the
// help) and answers diagnose and digest through the command's response_url
// once they are done, from the same bounded diagnosis engine as alerts, so
// that a hundred people typing it cost one probe round. Who may use it is
// policy (slack.commands); the workspace is the one the approvals accept.
package slashcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/digest"
	"github.com/chmedic/chmedic/playbooks/report"
)

// Diagnoser is the bounded diagnosis engine (diagnose.Engine): one round
// per cluster in flight, shared by every caller, cached for a while.
type Diagnoser interface {
	Diagnose(ctx context.Context, cluster string) (*diagnose.Diagnosis, error)
}

// Digester computes an on-demand digest (app.App.DigestNow): every
// cluster when cluster is "", stored as the previous of the next one;
// concurrent asks share one computation.
type Digester interface {
	DigestNow(ctx context.Context, cluster, source string) (*digest.Digest, error)
}

// DigestPoster posts a digest as a top-level message of channel through the
// durable outbox, its actions offered as buttons of the approval flow
// (app.PostDigest). The same digest posted twice to one channel is one
// message.
type DigestPoster interface {
	PostDigest(ctx context.Context, d *digest.Digest, channel string) error
}

// Freezes lists the active DDL freezes of a cluster, one line each (the
// DDL freeze action provides it; the digest's FreezesSource has the same
// method).
type Freezes interface {
	ActiveFreezes(ctx context.Context, cluster string) ([]string, error)
}

// GroupResolver returns the user ids of a Slack user group
// (internal/slack.UserGroups, cached).
type GroupResolver interface {
	Members(ctx context.Context, groupID string) ([]string, error)
}

// Auditor appends refused attempts to the audit log (approvals.Audit).
type Auditor interface {
	Refused(ctx context.Context, at approvals.Attempt) error
}

// Responder posts a message to a command's response_url.
type Responder interface {
	Respond(ctx context.Context, responseURL string, r Response) error
}

// Response is one message posted to a response_url.
type Response struct {
	// InChannel shows it to the channel (response_type in_channel); else
	// only the user who typed the command sees it.
	InChannel bool
	Message   chslack.Message
}

// Options configure the handler.
type Options struct {
	// Command is the slash command's name ("/chmedic"), shown in the help.
	Command string
	// TeamID returns the Slack workspace whose commands are accepted (the
	// approvals' team, from approvals.team_id or auth.test); "" refuses
	// every command.
	TeamID func() string
	// Clusters are the configured cluster names.
	Clusters []string
	// Policy is slack.commands: empty lists allow every channel and every
	// user of the workspace.
	Policy config.SlackCommands
	// Groups resolves the user groups of Policy.AllowedUsers (nil: group
	// entries match nobody, and the refusal says so).
	Groups GroupResolver
	// Audit records refusals (nil: logged only).
	Audit     Auditor
	Diagnoser Diagnoser
	Digests   Digester
	// PostDigest posts in-channel digests with their buttons (nil: they
	// are answered through response_url, without buttons).
	PostDigest DigestPoster
	// Freezes is nil until the DDL freeze action exists: `freezes` then
	// says DDL freeze is not available in this chmedic yet.
	Freezes Freezes
	// InChannel reports whether diagnose and digest answer in the channel
	// (channelID, channelName as the command carries them): the channels
	// chmedic posts to (see PostingChannels). nil: always privately.
	InChannel func(channelID, channelName string) bool
	// Responder posts to response_urls [HTTPResponder].
	Responder Responder
	// JobTimeout bounds one diagnose or digest [30s].
	JobTimeout time.Duration
	// Registerer receives chmedic_slack_commands_total (nil: none).
	Registerer prometheus.Registerer
	Now        func() time.Time
	Log        *slog.Logger
}

// Handler handles slash commands; it implements approvals.CommandHandler.
type Handler struct {
	o       Options
	ctx     context.Context
	cancel  context.CancelFunc
	total   *prometheus.CounterVec
	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	posted  map[string]time.Time // in-channel answers already given, by channel, subcommand, cluster and round
	replies *prometheus.CounterVec
}

var _ approvals.CommandHandler = (*Handler)(nil)

// Outcomes, the values of the outcome label of chmedic_slack_commands_total.
const (
	OutcomeAnswered = "answered" // help, freezes, or an ack with the result to follow
	OutcomeRefused  = "refused"  // another workspace, the policy
	OutcomeInvalid  = "invalid"  // a text chmedic does not understand
)

// New builds the handler.
func New(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Command == "" {
		o.Command = "/chmedic"
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 30 * time.Second
	}
	if o.Responder == nil {
		o.Responder = &HTTPResponder{}
	}
	if o.TeamID == nil {
		o.TeamID = func() string { return "" }
	}
	h := &Handler{o: o, posted: map[string]time.Time{}}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.total = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chmedic_slack_commands_total",
		Help: "Slash commands received, by subcommand and outcome (answered, refused, invalid).",
	}, []string{"subcommand", "outcome"})
	h.replies = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chmedic_slack_command_results_total",
		Help: "Results of diagnose and digest posted through response_url (or the outbox), by subcommand and result (in_channel, ephemeral, posted, failed).",
	}, []string{"subcommand", "result"})
	if o.Registerer != nil {
		o.Registerer.MustRegister(h.total, h.replies)
	}
	return h
}

// Close cancels the answers in flight and waits for them.
func (h *Handler) Close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

// Wait waits for the answers in flight (tests).
func (h *Handler) Wait() { h.wg.Wait() }

// HandleCommand answers one slash command within Slack's 3 s: refusals,
// help, freezes and mistakes at once; diagnose and digest with a "working
// on it", their result following through response_url.
func (h *Handler) HandleCommand(ctx context.Context, c approvals.Command) (approvals.Reply, error) {
	log := h.o.Log.With("team", c.TeamID, "user", c.UserID, "channel", c.ChannelID, "command", c.Command)
	sub := "unknown"
	if f := strings.Fields(c.Text); len(f) > 0 {
		sub = subLabel(strings.ToLower(f[0]))
	} else {
		sub = SubHelp
	}
	if text, ok := h.teamRefusal(ctx, c); !ok {
		h.total.WithLabelValues(sub, OutcomeRefused).Inc()
		log.Warn("slash command refused: another workspace")
		return approvals.Reply{Ephemeral: text}, nil
	}
	if text, ok := h.policyRefusal(ctx, c); !ok {
		h.total.WithLabelValues(sub, OutcomeRefused).Inc()
		log.Warn("slash command refused by slack.commands", "reason", text)
		return approvals.Reply{Ephemeral: text}, nil
	}
	inv, err := Parse(c.Text)
	var pe *ParseError
	if errors.As(err, &pe) {
		h.total.WithLabelValues(sub, OutcomeInvalid).Inc()
		return approvals.Reply{Ephemeral: chslack.Escape(pe.Msg) + "\n\n" + h.help(c.Command)}, nil
	}
	if err != nil {
		return approvals.Reply{}, err
	}
	switch inv.Sub {
	case SubHelp:
		h.total.WithLabelValues(SubHelp, OutcomeAnswered).Inc()
		return approvals.Reply{Ephemeral: h.help(c.Command)}, nil
	case SubFreezes:
		h.total.WithLabelValues(SubFreezes, OutcomeAnswered).Inc()
		return approvals.Reply{Ephemeral: h.freezes(ctx)}, nil
	}
	cluster, msg := h.cluster(inv)
	if msg != "" {
		h.total.WithLabelValues(inv.Sub, OutcomeInvalid).Inc()
		return approvals.Reply{Ephemeral: msg}, nil
	}
	if c.ResponseURL == "" {
		h.total.WithLabelValues(inv.Sub, OutcomeInvalid).Inc()
		return approvals.Reply{Ephemeral: "Slack sent no response_url with this command, so chmedic cannot send the result; nothing was done."}, nil
	}
	public := !inv.Private && h.o.InChannel != nil && h.o.InChannel(c.ChannelID, c.ChannelName)
	if !h.start(func(ctx context.Context) { h.run(ctx, c, inv.Sub, cluster, public) }) {
		return approvals.Reply{Ephemeral: "chmedic is shutting down; try again in a minute."}, nil
	}
	h.total.WithLabelValues(inv.Sub, OutcomeAnswered).Inc()
	log.Info("slash command accepted", "subcommand", inv.Sub, "cluster", cluster, "in_channel", public)
	return approvals.Reply{Ephemeral: ack(inv.Sub, cluster, public, h.o.PostDigest != nil)}, nil
}

func subLabel(s string) string {
	switch s {
	case SubDiagnose, SubDigest, SubFreezes, SubHelp:
		return s
	}
	return "unknown"
}

func ack(sub, cluster string, public, post bool) string {
	what := "all clusters"
	if cluster != "" {
		what = "*" + chslack.Escape(cluster) + "*"
	}
	if sub == SubDiagnose {
		where := "only you will see it"
		if public {
			where = "in this channel, once for everyone who asks while it runs"
		}
		return fmt.Sprintf(":stethoscope: Diagnosing %s… the result follows here (%s).", what, where)
	}
	where := "only you will see it"
	switch {
	case public && post:
		where = "posted in this channel as a message of its own"
	case public:
		where = "in this channel"
	}
	return fmt.Sprintf(":clipboard: Computing a health digest of %s… it follows here (%s).", what, where)
}

// teamRefusal refuses commands from any workspace but the approvals'.
func (h *Handler) teamRefusal(ctx context.Context, c approvals.Command) (string, bool) {
	team := h.o.TeamID()
	if team != "" && c.TeamID == team {
		return "", true
	}
	h.audit(ctx, c, approvals.RefusedOtherTeam, "")
	if team == "" {
		return "chmedic does not know which Slack workspace it serves (approvals.team_id is unset and auth.test failed at start), so it accepts no commands.", false
	}
	return "This chmedic serves another Slack workspace; nothing was done.", false
}

// policyRefusal applies slack.commands.
func (h *Handler) policyRefusal(ctx context.Context, c approvals.Command) (string, bool) {
	p := h.o.Policy
	if len(p.AllowedChannels) > 0 && !slices.Contains(p.AllowedChannels, c.ChannelID) {
		text := fmt.Sprintf("%s cannot be used in this channel: slack.commands.allowed_channels lists where it can (%s).",
			h.o.Command, channelList(p.AllowedChannels))
		h.audit(ctx, c, "channel not allowed", "slack.commands.allowed_channels")
		return text, false
	}
	if len(p.AllowedUsers) == 0 {
		return "", true
	}
	var groupErr string
	for _, e := range p.AllowedUsers {
		switch {
		case e == c.UserID:
			return "", true
		case strings.HasPrefix(e, "S"):
			if h.o.Groups == nil {
				groupErr = fmt.Sprintf(" User group %s cannot be resolved (no Slack connection), so its members are not recognised.", e)
				continue
			}
			ms, err := h.o.Groups.Members(ctx, e)
			if err != nil {
				groupErr = fmt.Sprintf(" User group %s could not be resolved (%s), so its members are not recognised.", e, chslack.Escape(err.Error()))
				continue
			}
			if slices.Contains(ms, c.UserID) {
				return "", true
			}
		}
	}
	h.audit(ctx, c, "user not allowed", "slack.commands.allowed_users"+strings.ReplaceAll(groupErr, " User", "; user"))
	return fmt.Sprintf("You are not allowed to use %s: slack.commands.allowed_users does not name you (%s).%s",
		h.o.Command, chslack.Escape(c.UserID), groupErr), false
}

func channelList(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "<#" + id + ">"
	}
	return strings.Join(out, ", ")
}

func (h *Handler) audit(ctx context.Context, c approvals.Command, reason, detail string) {
	text := c.Command + " " + c.Text
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	d := fmt.Sprintf("slash command %q in channel %s", text, c.ChannelID)
	if detail != "" {
		d += "; " + detail
	}
	if h.o.Audit == nil {
		return
	}
	if err := h.o.Audit.Refused(ctx, approvals.Attempt{UserID: c.UserID, TeamID: c.TeamID, Via: "slack", Reason: reason, Detail: d}); err != nil {
		h.o.Log.Error("audit: recording a refused slash command failed", "user", c.UserID, "err", err)
	}
}

// cluster resolves the cluster named (or not) for diagnose and digest; a
// non-empty message is the reply when it cannot.
func (h *Handler) cluster(inv Invocation) (string, string) {
	names := slices.Clone(h.o.Clusters)
	sort.Strings(names)
	list := clusterList(names)
	if inv.Cluster != "" {
		if slices.Contains(names, inv.Cluster) {
			return inv.Cluster, ""
		}
		return "", fmt.Sprintf("There is no cluster %q here. Clusters: %s.", chslack.Escape(inv.Cluster), list)
	}
	if len(names) == 0 {
		return "", "No cluster is configured in this chmedic."
	}
	if inv.Sub == SubDiagnose {
		if len(names) == 1 {
			return names[0], ""
		}
		return "", fmt.Sprintf("Name the cluster to diagnose: `%s diagnose CLUSTER`. Clusters: %s.", h.o.Command, list)
	}
	return "", "" // digest: all clusters
}

func clusterList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = "`" + chslack.Escape(n) + "`"
	}
	return strings.Join(out, ", ")
}

// help is the help text, naming the command as it was typed (Slack sends
// the command's name; the configured one otherwise).
func (h *Handler) help(typed string) string {
	cmd := h.o.Command
	if slashName.MatchString(typed) {
		cmd = typed
	}
	names := slices.Clone(h.o.Clusters)
	sort.Strings(names)
	lines := []string{
		fmt.Sprintf("*%s* asks chmedic now; it only reads, never changes a cluster:", cmd),
		fmt.Sprintf("• `%s diagnose [cluster]`: a live diagnosis (the cluster may be left out when there is only one)", cmd),
		fmt.Sprintf("• `%s digest [cluster]`: a health digest (all clusters when none is named)", cmd),
		fmt.Sprintf("• `%s freezes`: the active DDL freezes", cmd),
		fmt.Sprintf("• `%s help`: this help", cmd),
		"In a channel chmedic posts its alerts or digests to, diagnose and digest answer in the channel (a digest with its action buttons); elsewhere, or with `" + FlagPrivate + "`, only you see the answer.",
		"A diagnosis is the same bounded round the alerts use: asked for while one runs or just ran, it is shared, not repeated.",
		"Clusters: " + clusterList(names) + ".",
	}
	return strings.Join(lines, "\n")
}

// slashName is what a slash command's name looks like (Slack's rule).
var slashName = regexp.MustCompile(`^/[a-z0-9_-]{1,31}$`)

// NotAvailableFreezes is the answer to `freezes` until the DDL freeze
// action is wired in.
const NotAvailableFreezes = "DDL freeze is not available in this chmedic yet."

func (h *Handler) freezes(ctx context.Context) string {
	if h.o.Freezes == nil {
		return NotAvailableFreezes
	}
	names := slices.Clone(h.o.Clusters)
	sort.Strings(names)
	var lines []string
	var none []string
	for _, cl := range names {
		fs, err := h.o.Freezes.ActiveFreezes(ctx, cl)
		switch {
		case err != nil:
			lines = append(lines, fmt.Sprintf(":warning: *%s*: the freezes could not be read (%s).", chslack.Escape(cl), chslack.Escape(err.Error())))
		case len(fs) == 0:
			none = append(none, "`"+chslack.Escape(cl)+"`")
		default:
			lines = append(lines, fmt.Sprintf(":snowflake: *%s*: %d active DDL freeze(s):", chslack.Escape(cl), len(fs)))
			for i, f := range fs {
				if i == 20 {
					lines = append(lines, fmt.Sprintf("  … and %d more", len(fs)-i))
					break
				}
				lines = append(lines, "  • "+chslack.Escape(f))
			}
		}
	}
	if len(none) > 0 {
		lines = append(lines, "No active DDL freeze on "+strings.Join(none, ", ")+".")
	}
	if len(lines) == 0 {
		return "No cluster is configured in this chmedic."
	}
	return strings.Join(lines, "\n")
}

// start runs job in the background unless the handler is closed.
func (h *Handler) start(job func(ctx context.Context)) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.wg.Go(func() {
		ctx, cancel := context.WithTimeout(h.ctx, h.o.JobTimeout)
		defer cancel()
		job(ctx)
	})
	return true
}

// run computes and sends the result of diagnose or digest.
func (h *Handler) run(ctx context.Context, c approvals.Command, sub, cluster string, public bool) {
	log := h.o.Log.With("user", c.UserID, "channel", c.ChannelID, "subcommand", sub, "cluster", cluster)
	var r Response
	result := "ephemeral"
	switch sub {
	case SubDiagnose:
		d, err := h.o.Diagnoser.Diagnose(ctx, cluster)
		note := ""
		if err != nil {
			note = "The diagnosis did not finish: " + err.Error()
			log.Warn("slash command: diagnosis failed", "err", err)
		}
		r.Message = chslack.RenderOnDemand(report.OnDemand(cluster, d, note, h.o.Now()), c.UserID)
		// A hundred people asking in one channel get one message there;
		// the others get the same diagnosis privately.
		r.InChannel = public && d != nil && h.first(c.ChannelID, sub, cluster, d.Started)
	case SubDigest:
		d, err := h.o.Digests.DigestNow(ctx, cluster, digest.SourceSlack)
		if err != nil {
			log.Warn("slash command: digest failed", "err", err)
			r.Message = chslack.TextMessage("The digest could not be computed: " + chslack.Escape(err.Error()))
			break
		}
		if public && h.first(c.ChannelID, sub, cluster, d.GeneratedAt) {
			if h.o.PostDigest != nil {
				if err := h.o.PostDigest.PostDigest(context.WithoutCancel(ctx), d, c.ChannelID); err != nil {
					h.forget(c.ChannelID, sub, cluster, d.GeneratedAt) // the next ask may post it
					log.Error("slash command: queueing the digest failed", "err", err)
					r.Message = chslack.TextMessage("The digest was computed but could not be posted: " + chslack.Escape(err.Error()))
					break
				}
				h.replies.WithLabelValues(sub, "posted").Inc()
				r.Message = chslack.TextMessage(fmt.Sprintf("%s The digest (%s) is being posted in this channel.", digestIcon(d.Verdict), d.Verdict))
				break
			}
			r.InChannel = true
		}
		// Not offered here: no request ids, so no buttons. (A second ask in
		// the channel for the same digest gets it privately.)
		r.Message = chslack.RenderDigest(d)
	}
	if r.InChannel {
		result = "in_channel"
	}
	if err := h.o.Responder.Respond(context.WithoutCancel(ctx), c.ResponseURL, r); err != nil {
		result = "failed"
		log.Warn("slash command: sending the result failed", "err", err)
	}
	h.replies.WithLabelValues(sub, result).Inc()
}

func digestIcon(v digest.Verdict) string {
	switch v {
	case digest.Act:
		return ":red_circle:"
	case digest.Watch:
		return ":large_orange_circle:"
	}
	return ":large_green_circle:"
}

func postedKey(channel, sub, cluster string, at time.Time) string {
	return fmt.Sprintf("%s|%s|%s|%d", channel, sub, cluster, at.UnixNano())
}

// forget undoes first.
func (h *Handler) forget(channel, sub, cluster string, at time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.posted, postedKey(channel, sub, cluster, at))
}

// first reports whether this is the first in-channel answer of one round
// (or one digest) of cluster in channel, and remembers it.
func (h *Handler) first(channel, sub, cluster string, at time.Time) bool {
	key := postedKey(channel, sub, cluster, at)
	now := h.o.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, t := range h.posted {
		if now.Sub(t) > time.Hour {
			delete(h.posted, k)
		}
	}
	if _, ok := h.posted[key]; ok {
		return false
	}
	h.posted[key] = now
	return true
}
