package slack

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/playbooks/digest"
)

// RenderDigest turns a health digest into a Block Kit message within
// Slack's limits, as a top-level message. It is a pure function of the
// digest; every text that comes from a server or an alert is escaped.
func RenderDigest(d *digest.Digest) Message {
	var bs []slack.Block
	add := func(b slack.Block) { bs = append(bs, b) }

	title := "Health digest"
	if d.Name != "" {
		title += " " + d.Name
	}
	add(slack.NewHeaderBlock(plain(clip(fmt.Sprintf("%s %s: %s", verdictIcon(d.Verdict), title, strings.ToUpper(string(d.Verdict))), MaxHeaderLen))))
	add(slack.NewContextBlock("meta", mrkdwn(digestMeta(d))))
	add(section("verdict", fmt.Sprintf("*%s*", escape(d.Headline))))
	if len(d.Notes) > 0 {
		add(section("notes", "_"+escape(strings.Join(d.Notes, "; "))+"_"))
	}
	for i, c := range d.Clusters {
		add(slack.NewDividerBlock())
		for j, text := range clusterTexts(c) {
			add(section(fmt.Sprintf("cluster-%d-%d", i, j), text))
		}
		if ab := digestActions(c, i); ab != nil {
			add(ab)
		}
	}
	add(slack.NewDividerBlock())
	add(section("chmedic", healthText(&d.Chmedic)))
	add(slack.NewContextBlock("footer", mrkdwn(fmt.Sprintf("chmedic digest · %s · `chmedic digest --format json` has every figure", slackDate(d.GeneratedAt)))))

	if len(bs) > MaxBlocks {
		bs = append(bs[:MaxBlocks-3], section("omitted", "_Some clusters were left out to fit Slack's 50-block limit; run `chmedic digest` for the full digest._"), bs[len(bs)-2], bs[len(bs)-1])
	}
	return Message{Text: clip(digestFallback(d), MaxFallbackText), Blocks: slack.Blocks{BlockSet: bs}}
}

func verdictIcon(v digest.Verdict) string {
	switch v {
	case digest.Act:
		return "🔴"
	case digest.Watch:
		return "🟠"
	}
	return "🟢"
}

func verdictEmoji(v digest.Verdict) string {
	switch v {
	case digest.Act:
		return ":red_circle:"
	case digest.Watch:
		return ":large_orange_circle:"
	}
	return ":large_green_circle:"
}

func digestMeta(d *digest.Digest) string {
	parts := []string{"*Generated:* " + slackDate(d.GeneratedAt), "*Source:* " + escape(d.Source)}
	if d.ScheduledAt != nil {
		parts = append(parts, "*Scheduled:* "+slackDate(*d.ScheduledAt))
	}
	if !d.Stored {
		parts = append(parts, "_not stored_")
	}
	return strings.Join(parts, "  ·  ")
}

func digestFallback(d *digest.Digest) string {
	s := "Health digest"
	if d.Name != "" {
		s += " " + d.Name
	}
	return fmt.Sprintf("[%s] %s: %s", strings.ToUpper(string(d.Verdict)), s, d.Headline)
}

// clusterTexts renders one cluster into as few sections as fit.
func clusterTexts(c *digest.Cluster) []string {
	var items []string
	head := fmt.Sprintf("%s *Cluster %s: %s*", verdictEmoji(c.Verdict), escape(c.Name), strings.ToUpper(string(c.Verdict)))
	if c.PreviousAt != nil {
		head += fmt.Sprintf(" _(previous digest %s)_", slackDate(*c.PreviousAt))
	}
	items = append(items, head)
	for _, r := range c.Reasons {
		line := fmt.Sprintf("%s %s", verdictEmoji(r.Level), escape(r.Text))
		if r.Playbook != "" {
			line += fmt.Sprintf(" _(playbook `%s`)_", escape(r.Playbook))
		}
		if r.Advice != "" {
			line += "\n      ↳ " + escape(r.Advice)
		}
		items = append(items, line)
	}
	if c.Diagnosis.Error != "" {
		items = append(items, "*Diagnosis failed:* "+escape(c.Diagnosis.Error))
	} else {
		items = append(items, "*Diagnosis:* "+escape(c.Diagnosis.Verdict))
	}
	ddlq := "n/a (" + escape(c.DDLQueue.NotAvailable) + ")"
	if c.DDLQueue.NotAvailable == "" {
		ddlq = fmt.Sprintf("%s unfinished, oldest %s", digest.IntText(c.DDLQueue.Unfinished), digest.SecondsText(c.DDLQueue.OldestSeconds))
	}
	ddl := digest.IntText(c.DDL.Count)
	if c.DDL.PerHour != nil {
		ddl += fmt.Sprintf(" (%s/h)", digest.FloatText(c.DDL.PerHour))
	}
	if c.DDL.Note != "" {
		ddl += " — " + escape(c.DDL.Note)
	}
	items = append(items, strings.Join([]string{
		fmt.Sprintf("*Nodes up:* %d/%d  ·  *Read-only replicas:* %s  ·  *Max replication delay:* %s  ·  *Max queue:* %s  ·  *Stuck entries:* %s",
			c.NodesUp, c.NodesTotal, digest.IntText(c.ReadonlyReplicas), digest.SecondsText(c.MaxReplicationDelaySeconds),
			digest.IntText(c.MaxReplicationQueue), digest.IntText(c.StuckQueueEntries)),
		fmt.Sprintf("*Distributed DDL queue:* %s  ·  *Replicated tables:* %s  ·  *DDL since %s:* %s",
			ddlq, digest.IntText(c.ReplicatedTables), slackDate(c.DDL.Since), ddl),
	}, "\n"))
	for _, n := range c.Nodes {
		if !n.Up {
			items = append(items, fmt.Sprintf(":red_circle: *%s* down: %s", escape(n.Name), escape(n.Note)))
		}
	}
	if len(c.Keeper) > 0 {
		rows := [][]string{{"node", "state", "avg/max ms", "outst.", "znodes", "watches", "ephem.", "conns", "fd"}}
		for _, k := range c.Keeper {
			rows = append(rows, []string{k.Name, k.State, digest.FloatText(k.AvgLatencyMs) + "/" + digest.FloatText(k.MaxLatencyMs),
				digest.IntText(k.Outstanding), digest.IntText(k.Znodes), digest.IntText(k.Watches), digest.IntText(k.Ephemerals),
				digest.IntText(k.Connections), digest.FDText(k)})
		}
		items = append(items, "*Coordination nodes*\n```"+escape(columns(rows))+"```")
	}
	var tr []string
	for _, t := range c.Trends {
		mark := "•"
		if t.Flagged {
			mark = ":chart_with_upwards_trend:"
		}
		prev := ""
		if t.Previous != nil {
			prev = fmt.Sprintf(" (was %s, %s)", digest.FloatText(t.Previous), digest.DeltaText(t))
		}
		tr = append(tr, fmt.Sprintf("%s %s: *%s*%s", mark, escape(t.Title), digest.FloatText(t.Value), prev))
	}
	items = append(items, "*Trends since the previous digest*\n"+strings.Join(tr, "\n"))
	items = append(items, alertsText(&c.Alerts))
	items = append(items, fmt.Sprintf("*DDL freezes:* %s\n*Pending approvals:* %s\n*Actions run:* %s",
		listText(c.Freezes), listText(c.Approvals), listText(c.ActionsRun)))
	var offered bool
	for _, a := range c.Actions {
		offered = offered || a.RequestID != ""
	}
	if len(c.Actions) > 0 && !offered {
		var as []string
		for _, a := range c.Actions {
			as = append(as, fmt.Sprintf("`%s`%s (playbook `%s`)", escape(a.Kind), escape(digest.ParamText(a.Params)), escape(a.Playbook)))
		}
		items = append(items, "*Suggested actions:* "+strings.Join(as, ", "))
	}
	if len(c.Notes) > 0 {
		items = append(items, "_"+escape(strings.Join(c.Notes, "; "))+"_")
	}
	return pack(items)
}

// pack joins items into sections of at most MaxTextLen characters.
func pack(items []string) []string {
	var out []string
	cur := ""
	for _, it := range items {
		it = clip(it, MaxTextLen-100)
		switch {
		case cur == "":
			cur = it
		case utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(it) > MaxTextLen:
			out = append(out, cur)
			cur = it
		default:
			cur += "\n" + it
		}
	}
	return append(out, cur)
}

func alertsText(a *digest.Alerts) string {
	if !a.Available {
		return "*Alerts received:* " + escape(a.Note)
	}
	if len(a.ByName) == 0 {
		return "*Alerts received since " + slackDate(a.Since) + ":* none"
	}
	var parts []string
	for i, x := range a.ByName {
		if i == 15 {
			parts = append(parts, fmt.Sprintf("and %d more names", len(a.ByName)-i))
			break
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", escape(x.Name), x.Firing))
	}
	more := ""
	if a.Truncated {
		more = " _(at least)_"
	}
	return "*Alerts received since " + slackDate(a.Since) + ":*" + more + " " + strings.Join(parts, ", ")
}

func listText(l digest.List) string {
	switch {
	case !l.Available:
		return "_" + escape(l.Note) + "_"
	case len(l.Items) == 0:
		return "none"
	}
	return escape(strings.Join(l.Items, "; "))
}

func healthText(h *digest.Health) string {
	lines := []string{fmt.Sprintf("%s *chmedic itself* _(since %s)_", verdictEmoji(h.Verdict), slackDate(h.Since)),
		fmt.Sprintf("*Outbox backlog:* %s  ·  *Messages given up on:* %s", digest.IntText(h.OutboxBacklog), digest.IntText(h.GivenUp))}
	rej := "*Webhook rejections:* " + escape(digest.RejectionsText(h.Rejections))
	if h.RejectionsNote != "" {
		rej += " _(" + escape(h.RejectionsNote) + ")_"
	}
	lines = append(lines, rej, "*Requests pending approval:* "+listText(h.Approvals))
	for _, n := range h.Notes {
		lines = append(lines, "_"+escape(n)+"_")
	}
	return strings.Join(lines, "\n")
}

// digestActions renders the offered actions as buttons, with the alert
// messages' conventions (the button carries only the request id).
func digestActions(c *digest.Cluster, i int) *slack.ActionBlock {
	var els []slack.BlockElement
	for j, a := range c.Actions {
		if a.RequestID == "" {
			continue
		}
		label := a.Label
		if label == "" {
			label = a.Kind
		}
		// Same action_id shape as alert messages ("chmedic:KIND:N"), unique
		// across the clusters of one message.
		b := slack.NewButtonBlockElement(fmt.Sprintf("chmedic:%s:%d", a.Kind, i*100+j), a.RequestID, plain(clip(label, MaxButtonText)))
		if a.Danger {
			b.Style = slack.StyleDanger
		} else if j == 0 {
			b.Style = slack.StylePrimary
		}
		if a.Danger || a.Confirm != "" {
			b.Confirm = slack.NewConfirmationBlockObject(plain(clip(label+"?", 100)), mrkdwn(clip(a.Confirm, 300)),
				plain("Request approval"), plain("Cancel"))
			if a.Danger {
				b.Confirm.Style = slack.StyleDanger
			}
		}
		els = append(els, b)
	}
	if len(els) == 0 {
		return nil
	}
	return slack.NewActionBlock(fmt.Sprintf("actions-%d", i), els...)
}

func columns(rows [][]string) string {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			c = strings.ReplaceAll(c, "```", "'''")
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
