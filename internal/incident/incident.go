// Package incident owns the path from one accepted Alertmanager
// notification to one Slack message: pick the cluster and the playbook,
// diagnose (bounded, shared), build the report, offer the playbook's
// actions, decide the thread (one message per alert group, or one incident
// message per cluster during a storm), and queue the message in the durable
// outbox.
package incident

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/report"
	"github.com/chmedic/chmedic/webhook"
)

// Diagnoser runs (or shares) a diagnosis round of a cluster.
type Diagnoser interface {
	Diagnose(ctx context.Context, cluster string) (*diagnose.Diagnosis, error)
}

// Store is the part of the store the processor uses.
type Store interface {
	RouteGroup(ctx context.Context, g store.GroupView, threshold int, window time.Duration) (string, *store.Incident, error)
	Thread(ctx context.Context, key string) (store.Thread, error)
	ApplyThreadChange(ctx context.Context, c store.ThreadChange) (store.ThreadChangeResult, error)
	// PrepareOffers gives the message's offers their ids; they are
	// recorded with the message (store.ThreadChange.NewOffers).
	PrepareOffers(ctx context.Context, offers []store.ActionRequest) ([]store.ActionRequest, error)
}

// Kicker wakes the outbox worker.
type Kicker interface{ Kick() }

// Reports stores each thread's report and renders it with the state of the
// thread's action requests (approvals.Service), so that the message can be
// re-rendered when a request changes without diagnosing again.
type Reports interface {
	SaveAndRender(ctx context.Context, threadKey string, r *report.Report) ([]byte, error)
}

// ReportRenderer is Reports that can render without storing: the report
// is then stored in the transaction that queues the message
// (store.ThreadChange.Report), not in one of its own.
type ReportRenderer interface {
	Render(ctx context.Context, threadKey string, r *report.Report) ([]byte, error)
}

// Processor implements webhook.Processor.
type Processor struct {
	Config    *config.Config
	Playbooks *playbooks.Set
	// Diagnoser may be nil (offline: no probes are run).
	Diagnoser Diagnoser
	Store     Store
	Outbox    Kicker
	Now       func() time.Time
	Log       *slog.Logger
	Reports   Reports // may be nil: reports are not stored

	choicesOnce sync.Once
	choices     *playbookChoices // incident playbook choices (storm_state.go)
}

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Plan is the report for one notification and where it goes.
type Plan struct {
	Report   *report.Report
	Cluster  *config.Cluster
	Channel  string
	Playbook *playbooks.Playbook
	Labels   map[string]string
}

// BuildReport matches the cluster and the playbook, diagnoses (unless
// offline) and builds the report, without offering actions or routing. It is
// what `chmedic render` prints.
func (p *Processor) BuildReport(ctx context.Context, m *webhook.Message, offline bool) *Plan {
	common := map[string]string(m.CommonLabels)
	var alerts []map[string]string
	for _, a := range m.Alerts {
		alerts = append(alerts, a.Labels)
	}
	cluster, ok := p.Config.ClusterFor(common)
	if !ok {
		for _, a := range alerts {
			if cluster, ok = p.Config.ClusterFor(a); ok {
				break
			}
		}
	}
	pb, matched := p.Playbooks.MatchGroup(common, alerts)
	in := report.Input{
		Data:            m.Data,
		GroupKey:        m.GroupKey,
		Truncated:       m.TruncatedAlerts,
		Playbook:        report.Playbook{Name: pb.Name, Title: pb.Title, Matched: matched},
		Sections:        sections(pb),
		Focus:           pb.Probes,
		AlertmanagerURL: p.Config.Alertmanager.URL,
		Now:             p.now(),
	}
	switch {
	case !ok:
		in.Note = fmt.Sprintf("No configured cluster matches this alert's labels %s, so no live diagnosis was run.", report.LabelText(common))
	case offline || p.Diagnoser == nil:
		in.Cluster = cluster.Name
		in.Note = "Offline render: no probes were run, so there are no live findings."
	default:
		in.Cluster = cluster.Name
		d, err := p.Diagnoser.Diagnose(ctx, cluster.Name)
		if err != nil {
			in.Note = "The live diagnosis failed: " + err.Error()
		} else {
			in.Diagnosis = d
		}
	}
	plan := &Plan{Report: report.Build(in), Playbook: pb, Labels: common}
	if ok {
		plan.Cluster = cluster
	}
	plan.Channel = p.Config.Slack.ChannelFor(plan.Cluster, common)
	if plan.Channel == "" {
		plan.Channel = "log"
	}
	for i, a := range pb.Actions {
		plan.Report.Actions = append(plan.Report.Actions, offered(a, fmt.Sprintf("preview-%d", i)))
	}
	return plan
}

func offered(a playbooks.ActionRef, requestID string) report.Action {
	k := actions.Catalog()[a.Kind]
	label := a.Label
	if label == "" {
		label = k.Label
	}
	ra := report.Action{Kind: a.Kind, Label: label, RequestID: requestID, Danger: k.Danger}
	if k.Danger || k.Confirm != "" {
		ra.Confirm = &report.Confirm{Title: label + "?", Text: k.Confirm, OK: "Request approval", Deny: "Cancel"}
	}
	return ra
}

func sections(pb *playbooks.Playbook) []report.Section {
	return []report.Section{
		{Name: "meaning", Title: "What it means", Body: strings.TrimSpace(pb.Sections.Meaning)},
		{Name: "impact", Title: "Impact", Body: strings.TrimSpace(pb.Sections.Impact)},
		{Name: "diagnosis", Title: "How to confirm", Body: strings.TrimSpace(pb.Sections.Diagnosis)},
		{Name: "mitigation", Title: "Mitigation", Body: strings.TrimSpace(pb.Sections.Mitigation)},
	}
}

// Process handles one accepted notification. It is idempotent: processing
// the same notification again updates the same message and offers the same
// action requests.
func (p *Processor) Process(ctx context.Context, n store.Notification, m *webhook.Message) error {
	return p.process(ctx, n, m, nil)
}

// ProcessAndFinish is Process that also records the notification done,
// with its group's mark, in the transaction that queues its message
// (webhook.FinishingProcessor): the message, its offers, the thread's
// report and the notification's outcome are one commit.
func (p *Processor) ProcessAndFinish(ctx context.Context, n store.Notification, m *webhook.Message, mark store.GroupMark) error {
	return p.process(ctx, n, m, &store.FinishMark{NotificationID: n.ID, Mark: mark})
}

func (p *Processor) process(ctx context.Context, n store.Notification, m *webhook.Message, finish *store.FinishMark) error {
	plan := p.BuildReport(ctx, m, false)
	r := plan.Report
	clusterName := ""
	if plan.Cluster != nil {
		clusterName = plan.Cluster.Name
	}
	threadKey, inc, err := p.Store.RouteGroup(ctx, store.GroupView{
		Cluster: clusterName, GroupKey: m.GroupKey, Title: r.Title, Status: m.Status, Firing: r.Firing,
	}, p.Config.Slack.StormThreshold, p.Config.Slack.StormWindow)
	if err != nil {
		return err
	}
	var totals store.IncidentTotals
	if inc != nil {
		r.Incident = incidentView(inc, &report.Group{Title: r.Title, Status: m.Status, Firing: r.Firing,
			Labels: groupLabels(m.GroupLabels)})
		totals = incidentTotals(r.Incident)
		r.Status = "resolved"
		if inc.OpenGroups > 0 {
			r.Status = "firing"
		}
		// The incident follows the most important runbook among its
		// firing groups, not whichever group changed last.
		if pb := p.incidentPlaybook(inc, plan); pb != plan.Playbook {
			plan.Playbook = pb
			r.Playbook = report.Playbook{Name: pb.Name, Title: pb.Title, Matched: true}
			r.Sections = sections(pb)
			r.FocusProbes = pb.Probes
		}
	}
	// Offer the playbook's actions under ids the buttons carry.
	r.Actions = nil
	var offers []string
	var newOffers []store.ActionRequest
	if r.Status == "firing" && len(plan.Playbook.Actions) > 0 {
		for i, a := range plan.Playbook.Actions {
			newOffers = append(newOffers, store.ActionRequest{
				OfferKey: fmt.Sprintf("n%d/%d", n.ID, i), Kind: a.Kind, Params: actions.WithDefaults(a.Kind, a.Params),
				Cluster: clusterName, GroupKey: m.GroupKey, ThreadKey: threadKey, AlertStart: r.StartsAt,
			})
		}
		if newOffers, err = p.Store.PrepareOffers(ctx, newOffers); err != nil {
			return err
		}
		for i, a := range plan.Playbook.Actions {
			r.Actions = append(r.Actions, offered(a, newOffers[i].ID))
			offers = append(offers, newOffers[i].ID)
		}
	}
	prev, prevErr := p.Store.Thread(ctx, threadKey)
	if prevErr != nil && !errors.Is(prevErr, store.ErrNotFound) {
		return prevErr
	}
	known := prevErr == nil
	change := store.ThreadChange{
		Thread: store.Thread{Key: threadKey, Channel: plan.Channel, Cluster: clusterName, Status: r.Status, Firing: r.Firing, ResolvedAt: r.ResolvedAt},
		// The message now carries these offers (none once resolved): the
		// thread's older ones are superseded with it.
		SupersedeOffers: true, Offers: offers,
		// Recorded with the message: its buttons carry their ids.
		NewOffers: newOffers, Finish: finish,
	}
	refire := known && prev.Status == "resolved" && r.Status == "firing"
	var msg chslack.Message
	if refire && prev.TS != "" && p.refireIsNew(prev, r) {
		// Fired again long after it resolved: a new message, linking the
		// old one far up the channel, rather than an edit nobody sees.
		change.NewMessage = true
		resolved := prev.ResolvedAt
		if resolved.IsZero() {
			resolved = prev.UpdatedAt
		}
		msg.Previous = &chslack.PreviousMessage{Channel: prev.Channel, TS: prev.TS, ResolvedText: resolved.UTC().Format("2006-01-02 15:04 UTC")}
	} else if known {
		if inc != nil {
			// A group's change in an incident: batched into the thread's
			// next summary reply (at most one per slack.summary_interval),
			// not a reply per group.
			change.Summary = &store.SummaryChange{Totals: totals, Batch: true, Interval: p.Config.Slack.SummaryInterval,
				Group: store.SummaryGroup{Title: r.Title, Status: m.Status, Firing: r.Firing}}
		}
		if note := followUp(prev, r, inc != nil, m); note != "" {
			// The note carries alert names and label values: escaped for
			// Slack, as they are for the log. A quick re-fire is also
			// broadcast to the channel: the message it updates may be far up.
			reply, err := json.Marshal(chslack.Message{Text: chslack.Escape(note), Plain: note, Broadcast: refire})
			if err != nil {
				return err
			}
			change.Reply = reply
		}
	}
	if inc != nil && change.Summary == nil {
		// The incident's first message shows its groups: the totals are
		// the start of its first summary.
		change.Summary = &store.SummaryChange{Totals: totals, Interval: p.Config.Slack.SummaryInterval}
	}
	body, err := Encode(r, msg.Previous)
	if err == nil && p.Reports != nil {
		if rr, ok := p.Reports.(ReportRenderer); ok {
			// The report is stored with the message (one transaction).
			if change.Report, err = json.Marshal(r); err == nil {
				body, err = rr.Render(ctx, threadKey, r)
			}
		} else {
			body, err = p.Reports.SaveAndRender(ctx, threadKey, r)
		}
		if err == nil && msg.Previous != nil {
			body, err = withPrevious(body, msg.Previous)
		}
	}
	if err != nil {
		return err
	}
	change.Body = body
	// The message, its follow-up, the offers, the report and (finish) the
	// notification's outcome in one transaction: a crash never keeps one
	// without the others.
	if _, err := p.Store.ApplyThreadChange(ctx, change); err != nil {
		return err
	}
	if p.Outbox != nil {
		p.Outbox.Kick()
	}
	if p.Log != nil {
		p.Log.Info("notification processed", "notification_id", n.ID, "thread_key", threadKey, "playbook", plan.Playbook.Name,
			"cluster", clusterName, "channel", plan.Channel, "status", r.Status)
	}
	return nil
}

// refireIsNew reports whether a group that fires again after prev
// resolved gets a new message: its alerts started more than
// slack.refire_window after the resolve.
func (p *Processor) refireIsNew(prev store.Thread, r *report.Report) bool {
	resolved := prev.ResolvedAt
	if resolved.IsZero() {
		resolved = prev.UpdatedAt
	}
	started := time.Time{}
	for _, a := range r.Alerts {
		if a.Status == "firing" && (started.IsZero() || a.StartsAt.Before(started)) {
			started = a.StartsAt
		}
	}
	if started.IsZero() {
		started = p.now()
	}
	return started.Sub(resolved) > p.Config.Slack.RefireWindow
}

// followUp is the thread reply for a change worth a notification: the
// group resolved, fired again, gained or lost firing alerts, or (in an
// incident) one of its groups changed.
func followUp(prev store.Thread, r *report.Report, incident bool, m *webhook.Message) string {
	switch {
	case prev.Status == "firing" && r.Status == "resolved":
		when := r.ResolvedAt
		if when.IsZero() {
			when = r.GeneratedAt
		}
		return fmt.Sprintf(":white_check_mark: Resolved at %s UTC: %s.", when.UTC().Format("15:04:05"), resolvedList(m))
	case prev.Status == "resolved" && r.Status == "firing":
		return fmt.Sprintf(":fire: Firing again: %d alert(s).", r.Firing)
	case incident:
		// A group's change in an incident goes into the thread's batched
		// summary (ThreadChange.Summary), not a reply of its own.
		return ""
	case prev.Status == "firing" && r.Firing > prev.Firing:
		return fmt.Sprintf(":arrow_up: %d alerts firing now (was %d).", r.Firing, prev.Firing)
	case prev.Status == "firing" && r.Firing < prev.Firing && r.Firing > 0:
		return fmt.Sprintf(":arrow_down: %d alerts firing now (was %d): %s resolved.", r.Firing, prev.Firing, resolvedList(m))
	}
	return ""
}

func resolvedList(m *webhook.Message) string {
	var names []string
	for _, a := range m.Alerts {
		if a.Status == "resolved" {
			names = append(names, a.Labels["alertname"]+" "+report.LabelText(distinctLabels(a.Labels, m.CommonLabels)))
		}
	}
	if len(names) > 5 {
		names = append(names[:5], fmt.Sprintf("and %d more", len(names)-5))
	}
	return strings.Join(names, ", ")
}

func distinctLabels(l, common map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range l {
		if common[k] != v {
			out[k] = v
		}
	}
	return out
}

// Encode renders a report into an outbox body: the Slack blocks and, for
// the log, the plain text; previous, if set, is the message this one
// follows (the outbox links it).
func Encode(r *report.Report, previous *chslack.PreviousMessage) ([]byte, error) {
	msg := chslack.Render(r)
	msg.Previous = previous
	var buf bytes.Buffer
	if err := report.WriteText(&buf, r); err != nil {
		return nil, err
	}
	msg.Plain = buf.String()
	return json.Marshal(msg)
}

// withPrevious adds the link to the message a re-fire follows to an
// encoded message (the approvals renderer does not know about it).
func withPrevious(body []byte, previous *chslack.PreviousMessage) ([]byte, error) {
	var msg chslack.Message
	if err := json.Unmarshal(body, &msg); err != nil {
		return nil, err
	}
	msg.Previous = previous
	return json.Marshal(msg)
}

// groupLabels names a group by its labels other than alertname, "" when
// it has none.
func groupLabels(l map[string]string) string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		if k != "alertname" {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return ""
	}
	return report.LabelText(out)
}
