package slack

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/playbooks/report"
)

// Action ids of the approval buttons; each button's value is the opaque
// request id, nothing else.
const (
	ActionApprove = "chmedic:approve"
	ActionReject  = "chmedic:reject"
	ActionResume  = "chmedic:resume"
	ActionAbort   = "chmedic:abort"
)

// RequestView is what an approval request's message in the alert's thread
// shows: the plan approvers judge, its hash, the votes, and — once it runs —
// its progress and result per step. It has no Slack types; the approval
// flow builds it from the store.
type RequestView struct {
	ID           string
	Kind         string
	Cluster      string
	State        string // a store.Req* state
	RequestedBy  string // Slack user id
	RequestedVia string // slack | cli
	// Plan is nil until it is computed.
	Plan      *actions.Plan
	PlanHash  string
	ExpiresAt time.Time
	// Approvals are the users whose approvals count; Needed the quorum.
	Approvals  []string
	Needed     int
	RejectedBy string
	// Reason explains the state (a refusal, a failure, an expiry; an
	// approved request that waits for its cluster: "waiting: …").
	Reason string
	// Changes say how the re-computed plan differs (state stale).
	Changes []string
	// Steps are the execution's steps, once it runs.
	Steps []StepView
	// Buttons are the action ids offered (ActionApprove, …).
	Buttons []string
	// Reoffer is a fresh offer's id (state stale): a button requests the
	// action again, with a plan computed anew.
	Reoffer string
}

// StepView is one step's state in a request message.
type StepView struct {
	Title  string
	Node   string
	State  string // pending | running | done | failed | skipped
	Output string
	Error  string
}

// RequestLine is one request's state on the alert message itself.
type RequestLine struct {
	Kind        string
	State       string
	RequestedBy string
	Approvals   int
	Needed      int
	Note        string
}

var stateIcons = map[string]string{
	"planning": ":hourglass_flowing_sand:", "pending": ":raised_hand:", "approved": ":white_check_mark:", "running": ":gear:",
	"succeeded": ":white_check_mark:", "failed": ":x:", "partial": ":warning:", "rolled_back": ":leftwards_arrow_with_hook:",
	"interrupted": ":double_vertical_bar:", "aborted": ":no_entry_sign:", "refused": ":no_entry:", "rejected": ":no_entry_sign:",
	"expired": ":alarm_clock:", "stale": ":arrows_counterclockwise:",
	"stopped": ":octagonal_sign:",
}

func icon(state string) string {
	if i, ok := stateIcons[state]; ok {
		return i
	}
	return ":grey_question:"
}

// stateText is a request state in words, with who and how many.
func stateText(state, by string, approvals, needed int, reason string) string {
	switch state {
	case "planning":
		return "computing the plan"
	case "pending":
		return fmt.Sprintf("awaiting approval (%d of %d)", approvals, needed)
	case "approved":
		if strings.HasPrefix(reason, "waiting: ") {
			return fmt.Sprintf("approved (%d of %d), waiting for the cluster", approvals, needed)
		}
		return fmt.Sprintf("approved (%d of %d), starting", approvals, needed)
	case "running":
		return "running"
	case "succeeded":
		return "done: succeeded"
	case "failed":
		return "done: failed"
	case "partial":
		return "done: partially applied"
	case "rolled_back":
		return "done: failed and rolled back"
	case "interrupted":
		return "interrupted (chmedic stopped while it ran): resume or abort"
	case "stopped":
		return "stopped at a failed step (nothing after it was touched): resume or abort"
	case "aborted":
		return "aborted"
	case "refused":
		return "refused"
	case "rejected":
		return "rejected"
	case "expired":
		return "expired"
	case "stale":
		return "not run: the plan changed since the approval"
	}
	return state
}

func user(id string) string {
	if id == "" {
		return "someone"
	}
	return "<@" + id + ">"
}

// RenderRequest renders an approval request's message.
func RenderRequest(v RequestView) Message {
	var bs []slack.Block
	title := fmt.Sprintf("%s *%s* on *%s*, requested by %s", icon(v.State), escape(v.Kind), escape(v.Cluster), user(v.RequestedBy))
	if v.RequestedVia == "cli" {
		title += " (CLI)"
	}
	status := "*State:* " + stateText(v.State, v.RequestedBy, len(v.Approvals), v.Needed, v.Reason)
	if len(v.Approvals) > 0 {
		var us []string
		for _, a := range v.Approvals {
			us = append(us, user(a))
		}
		status += " · approved by " + strings.Join(us, ", ")
	}
	if v.RejectedBy != "" {
		status += " · rejected by " + user(v.RejectedBy)
	}
	if v.State == "pending" && !v.ExpiresAt.IsZero() {
		status += " · expires " + slackDate(v.ExpiresAt)
	}
	if v.Reason != "" && (v.State != "pending" && v.State != "approved" || strings.HasPrefix(v.Reason, "waiting: ")) {
		status += "\n" + escape(v.Reason)
	}
	bs = append(bs, section("request", title+"\n"+status))
	if len(v.Changes) > 0 {
		lines := []string{"*What changed since the approved plan:*"}
		for _, c := range v.Changes {
			lines = append(lines, "• "+escape(c))
		}
		bs = append(bs, section("changes", clip(strings.Join(lines, "\n"), MaxTextLen)))
	}
	// Every step is shown, in as many sections as it takes; room is
	// left for the hash and the buttons.
	if v.Plan != nil && len(v.Steps) == 0 {
		bs = append(bs, packSections("plan", planLines(v.Plan), MaxBlocks-len(bs)-2)...)
	}
	if len(v.Steps) > 0 {
		bs = append(bs, packSections("steps", stepLines(v.Steps), MaxBlocks-len(bs)-2)...)
	}
	if v.PlanHash != "" {
		bs = append(bs, slack.NewContextBlock("hash", mrkdwn(fmt.Sprintf("request `%s` · plan hash `%s` · what runs is this stored plan, re-checked before it runs", v.ID, shortHash(v.PlanHash)))))
	}
	var els []slack.BlockElement
	for _, b := range v.Buttons {
		els = append(els, requestButton(b, v))
	}
	if v.Reoffer != "" {
		// The same action id shape as the alert's offered actions.
		els = append(els, slack.NewButtonBlockElement(fmt.Sprintf("chmedic:%s:0", v.Kind), v.Reoffer, plain("Request again")))
	}
	if len(els) > 0 {
		bs = append(bs, slack.NewActionBlock("request-actions", els...))
	}
	text := fmt.Sprintf("%s on %s requested by %s: %s", v.Kind, v.Cluster, user(v.RequestedBy), stateText(v.State, v.RequestedBy, len(v.Approvals), v.Needed, v.Reason))
	return Message{Text: clip(text, MaxFallbackText), Blocks: slack.Blocks{BlockSet: bs}, Plain: requestPlain(v)}
}

func requestButton(id string, v RequestView) *slack.ButtonBlockElement {
	labels := map[string]string{ActionApprove: "Approve", ActionReject: "Reject", ActionResume: "Resume", ActionAbort: "Abort"}
	b := slack.NewButtonBlockElement(id, v.ID, plain(labels[id]))
	switch id {
	case ActionApprove, ActionResume:
		b.Style = slack.StylePrimary
	case ActionReject, ActionAbort:
		b.Style = slack.StyleDanger
	}
	if id == ActionResume {
		b.Confirm = slack.NewConfirmationBlockObject(plain("Resume?"),
			mrkdwn("The execution continues from the first step not recorded as done; done steps are not repeated."), plain("Resume"), plain("Cancel"))
	}
	return b
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func planLines(p *actions.Plan) []string {
	lines := []string{"*Plan:* " + escape(p.Summary)}
	if p.Method != "" {
		lines = append(lines, "_"+escape(p.Method)+"_")
	}
	for _, g := range p.Gates {
		mark := ":white_check_mark:"
		if !g.OK {
			mark = ":x:"
		}
		lines = append(lines, fmt.Sprintf("%s gate %s: %s", mark, escape(g.Name), escape(g.Evidence)))
	}
	for i, s := range p.Steps {
		line := fmt.Sprintf("%d. %s", i+1, escape(s.Title))
		if s.Node != "" {
			line += " on *" + escape(s.Node) + "*"
		}
		for _, q := range s.SQL {
			line += "\n```" + escape(q) + "```"
		}
		if len(s.Command) > 0 {
			line += "\n```" + escape(strings.Join(s.Command, " ")) + "```"
		}
		if s.Undo != "" {
			line += "\n  _undo:_ " + escape(s.Undo)
		}
		lines = append(lines, line)
	}
	for _, n := range p.Notes {
		lines = append(lines, ":warning: "+escape(n))
	}
	for _, o := range p.Observed {
		lines = append(lines, ":eyes: _at plan time:_ "+escape(o))
	}
	return lines
}

var stepIcons = map[string]string{"pending": ":white_circle:", "running": ":gear:", "done": ":white_check_mark:", "failed": ":x:", "skipped": ":fast_forward:", "rolled_back": ":leftwards_arrow_with_hook:"}

func stepLines(steps []StepView) []string {
	var lines []string
	for i, s := range steps {
		ic := stepIcons[s.State]
		if ic == "" {
			ic = ":grey_question:"
		}
		line := fmt.Sprintf("%s %d. %s", ic, i+1, escape(s.Title))
		if s.Node != "" {
			line += " on *" + escape(s.Node) + "*"
		}
		line += " — " + s.State
		if s.Output != "" {
			line += ": " + escape(s.Output)
		}
		if s.Error != "" {
			line += "\n  _error:_ " + escape(s.Error)
		}
		lines = append(lines, line)
	}
	return lines
}

func requestPlain(v RequestView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s on %s requested by %s (%s): %s\n", v.Kind, v.Cluster, v.RequestedBy, v.ID, stateText(v.State, v.RequestedBy, len(v.Approvals), v.Needed, v.Reason))
	if v.Reason != "" {
		fmt.Fprintf(&b, "  %s\n", v.Reason)
	}
	for _, c := range v.Changes {
		fmt.Fprintf(&b, "  changed: %s\n", c)
	}
	if v.Plan != nil {
		fmt.Fprintf(&b, "  plan %s: %s\n", shortHash(v.PlanHash), v.Plan.Summary)
	}
	for i, s := range v.Steps {
		fmt.Fprintf(&b, "  %d. %s %s: %s %s%s\n", i+1, s.Title, s.Node, s.State, s.Output, s.Error)
	}
	return b.String()
}

// RenderWithRequests renders an alert's report with the state of its
// action requests (requested by, approvals so far, running, done) under
// the buttons' message — re-rendered from the stored report, not
// re-diagnosed.
func RenderWithRequests(r *report.Report, reqs []RequestLine) Message {
	msg := Render(r)
	if len(reqs) == 0 {
		return msg
	}
	lines := []string{"*Action requests*"}
	var plainLines []string
	for _, q := range reqs {
		s := fmt.Sprintf("%s *%s* requested by %s: %s", icon(q.State), escape(q.Kind), user(q.RequestedBy), stateText(q.State, q.RequestedBy, q.Approvals, q.Needed, q.Note))
		if q.Note != "" {
			s += " — " + escape(q.Note)
		}
		lines = append(lines, s)
		plainLines = append(plainLines, fmt.Sprintf("%s requested by %s: %s", q.Kind, q.RequestedBy, stateText(q.State, q.RequestedBy, q.Approvals, q.Needed, q.Note)))
	}
	blk := section("requests", clip(strings.Join(lines, "\n"), MaxTextLen))
	bs := msg.Blocks.BlockSet
	at := len(bs) - 1 // before the footer
	for i, b := range bs {
		if a, ok := b.(*slack.ActionBlock); ok && a.BlockID == "actions" {
			at = i
		}
	}
	if len(bs) >= MaxBlocks {
		// Full: the requests take the place of the last block before them
		// (the middle was already cut and says so).
		bs[at-1] = blk
	} else {
		bs = append(bs[:at], append([]slack.Block{blk}, bs[at:]...)...)
	}
	msg.Blocks.BlockSet = bs
	msg.Plain += "\n== Action requests ==\n" + strings.Join(plainLines, "\n") + "\n"
	return msg
}
