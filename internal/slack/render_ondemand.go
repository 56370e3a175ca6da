package slack

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/playbooks/probe"
	"github.com/chmedic/chmedic/playbooks/report"
)

// slackIDRE is what a user id must look like to be put in a <@…> mention.
var slackIDRE = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)

// RenderOnDemand turns the report of a diagnosis asked for with no alert
// (report.OnDemand, `/chmedic diagnose`) into a Block Kit message within
// Slack's limits: a header with the cluster and the worst status, who asked,
// the verdict, the live findings and the likely cause. Every text from a
// server is escaped. askedBy is the Slack user id of who asked ("": none).
func RenderOnDemand(r *report.Report, askedBy string) Message {
	var bs []slack.Block
	add := func(b slack.Block) { bs = append(bs, b) }

	status := "NOT DIAGNOSED"
	icon := ":white_circle:"
	if d := r.Diagnosis; d != nil {
		status = strings.ToUpper(d.Status.String())
		icon = statusIcon(d.Status)
		if d.Status == probe.OK {
			status = "OK"
		}
	}
	add(slack.NewHeaderBlock(plain(clip(fmt.Sprintf("%s: %s", r.Title, status), MaxHeaderLen))))
	meta := []string{icon + " *Cluster:* " + escape(r.Cluster)}
	if slackIDRE.MatchString(askedBy) {
		meta = append(meta, "asked by <@"+askedBy+">")
	}
	if d := r.Diagnosis; d != nil {
		meta = append(meta, "diagnosed "+slackDate(d.Started))
	}
	add(slack.NewContextBlock("meta", mrkdwn(strings.Join(meta, "  ·  "))))
	if r.Diagnosis != nil {
		add(section("verdict", "*Diagnosis:* "+escape(r.Diagnosis.Verdict)))
	}
	add(slack.NewDividerBlock())
	for i, text := range findingsTexts(r, maxFindings) {
		add(section(fmt.Sprintf("findings-%d", i), text))
	}
	if c := causeText(r.Diagnosis); c != "" {
		add(section("cause", c))
	}
	footer := fmt.Sprintf("chmedic · on demand, no alert: the runbook's mitigation comes with the alert's message · `chmedic diagnose --cluster %s` prints everything", escape(r.Cluster))
	add(slack.NewContextBlock("footer", mrkdwn(footer)))
	if len(bs) > MaxBlocks {
		bs = append(bs[:MaxBlocks-2], section("omitted", "_Some findings were left out to fit Slack's 50-block limit; run `chmedic diagnose` for the full report._"), bs[len(bs)-1])
	}
	text := "[DIAGNOSIS] " + r.Cluster + ": " + status
	if r.Diagnosis != nil {
		text += ": " + r.Diagnosis.Verdict
	} else if r.DiagnosisNote != "" {
		text += ": " + r.DiagnosisNote
	}
	return Message{Text: clip(escape(text), MaxFallbackText), Blocks: slack.Blocks{BlockSet: bs}}
}

// TextMessage is a message of one mrkdwn section (the caller escapes what
// comes from elsewhere).
func TextMessage(text string) Message {
	return Message{Text: clip(text, MaxFallbackText), Blocks: slack.Blocks{BlockSet: []slack.Block{section("text", text)}}}
}
