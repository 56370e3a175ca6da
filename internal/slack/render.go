// Package slack owns everything chmedic says to Slack: the pure Block Kit
// renderer of a report, the durable outbox worker that posts and updates
// messages within Slack's rate limits (exactly once across restarts), and
// the log sender used when no bot token is configured. It is the only
// package that imports slack-go.
package slack

import (
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
	"github.com/chmedic/chmedic/playbooks/report"
)

// Slack's documented limits.
const (
	MaxBlocks       = 50
	MaxTextLen      = 3000 // section and context text
	MaxHeaderLen    = 150
	MaxButtonText   = 75
	MaxFallbackText = 3000 // we keep the notification text short on purpose
	maxFindings     = 12   // findings listed before "and N more"
	maxEvidenceRows = 5
)

// Message is a rendered message: the notification text and the blocks.
type Message struct {
	Text   string       `json:"text"`
	Blocks slack.Blocks `json:"blocks"`
	// Plain is the terminal rendering, written to the log when Slack is
	// not configured. It is never sent to Slack.
	Plain string `json:"plain,omitempty"`
	// Broadcast sends a thread reply to the channel too (reply_broadcast).
	Broadcast bool `json:"broadcast,omitempty"`
	// Previous, on a post, is the message this one follows (a group that
	// fired again long after it resolved): the outbox links it.
	Previous *PreviousMessage `json:"previous,omitempty"`
	// Summary, on a reply, is an incident's batched summary: the outbox
	// renders it (RenderSummary) when it sends it.
	Summary *store.SummaryBatch `json:"summary,omitempty"`
}

// PreviousMessage names an earlier message of the same alert group.
type PreviousMessage struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	// ResolvedText says when it resolved ("2026-11-23 03:04 UTC").
	ResolvedText string `json:"resolved_text"`
}

// Render turns a report into a Block Kit message within Slack's limits. It
// is a pure function of the report.
func Render(r *report.Report) Message {
	var bs []slack.Block
	add := func(b slack.Block) { bs = append(bs, b) }

	add(slack.NewHeaderBlock(plain(clip(headerText(r), MaxHeaderLen))))
	if r.Incident != nil {
		// An incident: its totals, the latest change, the counts by alert
		// name, the top groups — not the alerts of the group that changed.
		add(slack.NewContextBlock("meta", mrkdwn(incidentMeta(r))))
		if r.Diagnosis != nil {
			add(section("verdict", "*Diagnosis:* "+escape(r.Diagnosis.Verdict)))
		}
		for _, b := range incidentBlocks(r) {
			add(b)
		}
	} else {
		add(slack.NewContextBlock("meta", mrkdwn(metaText(r))))
		if r.Diagnosis != nil {
			add(section("verdict", "*Diagnosis:* "+escape(r.Diagnosis.Verdict)))
		}
		if s := summaryText(r); s != "" {
			add(section("summary", s))
		}
	}
	if r.Status == "resolved" {
		if r.Incident != nil {
			add(section("resolved", fmt.Sprintf(":white_check_mark: *Resolved:* all %d alert groups of this incident resolved.", r.Incident.Count())))
		} else {
			add(section("resolved", resolvedText(r)))
		}
	}
	add(slack.NewDividerBlock())
	for _, s := range r.Sections {
		if s.Name == "meaning" || s.Name == "impact" {
			add(section(s.Name, "*"+s.Title+"*\n"+s.Body))
		}
	}
	limit := maxFindings
	if r.Incident != nil {
		limit = incidentFindingsShown
	}
	for i, text := range findingsTexts(r, limit) {
		add(section(fmt.Sprintf("findings-%d", i), text))
	}
	if c := causeText(r.Diagnosis); c != "" {
		add(section("cause", c))
	}
	for _, s := range r.Sections {
		if s.Name != "meaning" && s.Name != "impact" {
			add(section(s.Name, "*"+s.Title+"*\n"+s.Body))
		}
	}
	if r.Status != "resolved" && len(r.Actions) > 0 {
		add(actionsBlock(r.Actions))
	}
	// An incident's links would be those of the group that changed last.
	if l := linksText(r.Links); l != "" && r.Incident == nil {
		add(slack.NewContextBlock("links", mrkdwn(l)))
	}
	add(slack.NewContextBlock("footer", mrkdwn(footerText(r))))

	if len(bs) > MaxBlocks {
		// Keep the head and the tail (actions, links, footer); drop the middle.
		tail := 1 // footer
		if r.Status != "resolved" && len(r.Actions) > 0 {
			tail++
		}
		if linksText(r.Links) != "" && r.Incident == nil {
			tail++
		}
		bs = append(bs[:MaxBlocks-tail-1], append([]slack.Block{section("omitted", "_Some sections were left out to fit Slack's 50-block limit; run `chmedic diagnose` for the full report._")}, bs[len(bs)-tail:]...)...)
	}
	return Message{Text: clip(fallbackText(r), MaxFallbackText), Blocks: slack.Blocks{BlockSet: bs}}
}

func plain(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, s, true, false)
}

func mrkdwn(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, clip(s, MaxTextLen), false, false)
}

func section(id, text string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(text), nil, nil, slack.SectionBlockOptionBlockID(id))
}

// clip shortens s to at most n characters (runes, as Slack counts them),
// saying how much was cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	note := fmt.Sprintf("… (truncated, %d more characters)", len(runes)-n)
	keep := n - utf8.RuneCountInString(note)
	if keep < 0 {
		return string(runes[:n])
	}
	head := string(runes[:keep])
	// Do not leave a code fence open.
	if strings.Count(head, "```")%2 == 1 {
		head += "```"
		if utf8.RuneCountInString(head)+utf8.RuneCountInString(note) > n {
			head = string([]rune(head)[:keep-3]) + "```"
		}
	}
	return head + note
}

// escape makes text safe inside mrkdwn and the notification text (Slack's
// three control characters): an alert's `<!here>` shows as text and pings
// nobody, `<https://x|y>` cannot disguise a link.
func escape(s string) string { return escaper.Replace(s) }

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape is escape for the other packages that compose text for Slack
// (the incident follow-ups).
func Escape(s string) string { return escape(s) }

// linkURL makes a URL safe inside Slack's <url|title> markup: the
// characters that would end the link or start another one are
// percent-encoded, & is escaped as Slack expects.
func linkURL(u string) string {
	return strings.NewReplacer("&", "&amp;", "<", "%3C", ">", "%3E", "|", "%7C", " ", "%20").Replace(u)
}

func headerText(r *report.Report) string {
	mark := ":fire: FIRING"
	if r.Status == "resolved" {
		mark = ":white_check_mark: RESOLVED"
	}
	title := r.Title
	if r.Incident != nil {
		title = fmt.Sprintf("Incident on %s: %d alert groups", r.Cluster, r.Incident.Count())
	}
	return mark + ": " + title
}

func metaText(r *report.Report) string {
	var parts []string
	if r.Severity != "" {
		parts = append(parts, "*Severity:* "+escape(r.Severity))
	}
	if r.Cluster != "" {
		parts = append(parts, "*Cluster:* "+escape(r.Cluster))
	}
	alerts := fmt.Sprintf("*Alerts:* %d firing", r.Firing)
	if r.Resolved > 0 {
		alerts += fmt.Sprintf(", %d resolved", r.Resolved)
	}
	if r.Truncated > 0 {
		alerts += fmt.Sprintf(" (+%d not sent by Alertmanager)", r.Truncated)
	}
	parts = append(parts, alerts)
	if !r.StartsAt.IsZero() {
		parts = append(parts, "*Since:* "+slackDate(r.StartsAt))
	}
	return strings.Join(parts, "  ·  ")
}

// slackDate renders a time in each reader's own time zone, with a UTC fallback.
func slackDate(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func summaryText(r *report.Report) string {
	var lines []string
	if r.Summary != "" {
		lines = append(lines, "*"+escape(r.Summary)+"*")
	}
	if r.Description != "" && r.Description != r.Summary {
		lines = append(lines, escape(strings.TrimSpace(r.Description)))
	}
	if len(r.Alerts) > 1 || (len(r.Alerts) == 1 && len(r.Alerts[0].Labels) > 0) {
		n := 0
		for _, a := range r.Alerts {
			if n == 8 {
				lines = append(lines, fmt.Sprintf("_… and %d more alerts_", len(r.Alerts)-n))
				break
			}
			icon := ":red_circle:"
			if a.Status == "resolved" {
				icon = ":white_check_mark:"
			}
			lines = append(lines, fmt.Sprintf("%s %s %s", icon, escape(a.Name), "`"+labelText(a.Labels)+"`"))
			n++
		}
	}
	return strings.Join(lines, "\n")
}

func resolvedText(r *report.Report) string {
	when := "now"
	if !r.ResolvedAt.IsZero() {
		when = slackDate(r.ResolvedAt)
		if !r.StartsAt.IsZero() && r.ResolvedAt.After(r.StartsAt) {
			when += fmt.Sprintf(" after %s", r.ResolvedAt.Sub(r.StartsAt).Round(time.Second))
		}
	}
	return fmt.Sprintf(":white_check_mark: *Resolved* %s: %d alert(s) resolved.", when, r.Resolved)
}

func statusIcon(s probe.Status) string {
	switch s {
	case probe.Crit:
		return ":red_circle:"
	case probe.Warn:
		return ":large_orange_circle:"
	case probe.Unknown:
		return ":white_circle:"
	}
	return ":large_green_circle:"
}

// findingsTexts renders the live findings into as few sections as fit.
func findingsTexts(r *report.Report, maxFindings int) []string {
	head := "*Live findings*"
	if r.Diagnosis != nil {
		head += fmt.Sprintf(" _(%d checks on cluster %s in %s",
			len(r.Diagnosis.Results), escape(r.Diagnosis.Cluster), r.Diagnosis.Duration.Round(time.Millisecond))
		if r.Diagnosis.Shared {
			head += ", shared with concurrent alerts"
		}
		head += ")_"
	}
	var items []string
	if r.DiagnosisNote != "" {
		items = append(items, "_"+escape(r.DiagnosisNote)+"_")
	}
	if d := r.Diagnosis; d != nil {
		if d.SkippedExpensive != "" {
			items = append(items, ":warning: Probes that query the coordination service were skipped: "+escape(d.SkippedExpensive))
		}
		fs := r.FindingsInOrder()
		if len(fs) == 0 {
			items = append(items, fmt.Sprintf(":large_green_circle: All %d checks passed.", len(d.Results)-len(unavailable(d))))
		}
		for i, f := range fs {
			if i == maxFindings {
				items = append(items, fmt.Sprintf("_… and %d more findings; run `chmedic diagnose --cluster %s` for all._", len(fs)-i, d.Cluster))
				break
			}
			items = append(items, findingText(f))
		}
	}
	if d := r.Diagnosis; d != nil && len(d.Skipped) > 0 {
		items = append(items, fmt.Sprintf("_Not run: %s._", escape(strings.Join(d.Skipped, "; "))))
	}
	if d := r.Diagnosis; d != nil && len(d.NotAvailable) > 0 {
		items = append(items, fmt.Sprintf("_Not available here: %s._", escape(strings.Join(d.NotAvailable, "; "))))
	}
	// Pack items into sections of at most MaxTextLen characters.
	var out []string
	cur := head
	for _, it := range items {
		it = clip(it, MaxTextLen-100)
		if utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(it) > MaxTextLen {
			out = append(out, cur)
			cur = it
			continue
		}
		cur += "\n" + it
	}
	return append(out, cur)
}

func findingText(f diagnose.Finding) string {
	node := ""
	if f.Node != "" {
		node = "*" + escape(f.Node) + "* "
	}
	s := fmt.Sprintf("%s %s`%s` %s", statusIcon(f.Status), node, f.Probe, escape(f.Summary))
	for _, t := range f.Evidence {
		if len(t.Rows) == 0 {
			continue
		}
		s += "\n```" + tableText(t) + "```"
	}
	return s
}

func tableText(t probe.Table) string {
	rows := t.Rows
	omitted := t.Omitted
	if len(rows) > maxEvidenceRows {
		omitted += len(rows) - maxEvidenceRows
		rows = rows[:maxEvidenceRows]
	}
	widths := make([]int, len(t.Columns))
	cell := func(s string) string {
		s = strings.ReplaceAll(s, "```", "'''")
		if utf8.RuneCountInString(s) > 48 {
			s = string([]rune(s)[:47]) + "…"
		}
		return s
	}
	for i, c := range t.Columns {
		widths[i] = utf8.RuneCountInString(c)
	}
	for _, r := range rows {
		for i := range widths {
			if i < len(r) {
				widths[i] = max(widths[i], utf8.RuneCountInString(cell(r[i])))
			}
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		for i := range widths {
			c := ""
			if i < len(cells) {
				c = cell(cells[i])
			}
			b.WriteString(c)
			if i < len(widths)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteString("\n")
	}
	if t.Title != "" {
		b.WriteString(t.Title + "\n")
	}
	line(t.Columns)
	for _, r := range rows {
		line(r)
	}
	if omitted > 0 {
		fmt.Fprintf(&b, "… %d more rows\n", omitted)
	}
	return escape(b.String())
}

func causeText(d *diagnose.Diagnosis) string {
	if d == nil || d.Status == probe.OK {
		return ""
	}
	top, ok := d.Top()
	if !ok {
		return "*Likely cause*\nNo clear cause: the evidence is thin. Start from the findings above."
	}
	lines := []string{fmt.Sprintf("*Likely cause:* %s _(%s)_", escape(top.Title), top.Likelihood)}
	for _, e := range top.For {
		lines = append(lines, "• "+escape(e))
	}
	for _, e := range top.Against {
		lines = append(lines, "◦ _against:_ "+escape(e))
	}
	for _, c := range d.Causes[1:] {
		if c.Likelihood == diagnose.Unlikely {
			break
		}
		lines = append(lines, fmt.Sprintf("_Also %s:_ %s", c.Likelihood, escape(c.Title)))
	}
	return strings.Join(lines, "\n")
}

func actionsBlock(actions []report.Action) *slack.ActionBlock {
	var els []slack.BlockElement
	for i, a := range actions {
		if i == 25 {
			break
		}
		b := slack.NewButtonBlockElement(fmt.Sprintf("chmedic:%s:%d", a.Kind, i), a.RequestID, plain(clip(a.Label, MaxButtonText)))
		if a.Danger {
			b.Style = slack.StyleDanger
		} else if i == 0 {
			b.Style = slack.StylePrimary
		}
		if a.Confirm != nil {
			b.Confirm = slack.NewConfirmationBlockObject(
				plain(clip(a.Confirm.Title, 100)),
				mrkdwn(clip(a.Confirm.Text, 300)),
				plain(clip(a.Confirm.OK, 30)),
				plain(clip(a.Confirm.Deny, 30)))
			if a.Danger {
				b.Confirm.Style = slack.StyleDanger
			}
		}
		els = append(els, b)
	}
	return slack.NewActionBlock("actions", els...)
}

func linksText(ls []report.Link) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("<%s|%s>", linkURL(l.URL), escape(l.Title)))
	}
	return strings.Join(parts, "  ·  ")
}

func footerText(r *report.Report) string {
	pb := "playbook `" + r.Playbook.Name + "`"
	if !r.Playbook.Matched {
		pb += " (no specific playbook matched this alert)"
	}
	return fmt.Sprintf("chmedic · %s · updated %s", pb, slackDate(r.GeneratedAt))
}

func fallbackText(r *report.Report) string {
	title := r.Title
	if r.Incident != nil {
		title = fmt.Sprintf("Incident: %d alert groups", r.Incident.Count())
	}
	s := fmt.Sprintf("[%s] %s", strings.ToUpper(r.Status), title)
	if r.Cluster != "" {
		s += " on " + r.Cluster
	}
	if r.Diagnosis != nil {
		s += ": " + r.Diagnosis.Verdict
	} else if r.Summary != "" {
		s += ": " + r.Summary
	}
	// The notification text is mrkdwn too: escape everything in it.
	return escape(s)
}

func labelText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return escape(strings.Join(parts, " "))
}

func unavailable(d *diagnose.Diagnosis) []probe.Result {
	var out []probe.Result
	for _, r := range d.Results {
		if r.IsUnavailable() {
			out = append(out, r)
		}
	}
	return out
}
