package slack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/report"
)

// TestRenderOnDemand: the message answering `/chmedic diagnose` (a diagnosis
// with no alert) against its golden file; texts from the servers are
// escaped; a failed diagnosis says why; a user id that is not one is not
// turned into a mention.
func TestRenderOnDemand(t *testing.T) {
	evil := "<!here> <https://x|y> & co"
	d := fixedDiagnosis()
	d.Verdict += " " + evil
	d.Findings[0].Summary += " " + evil
	d.Causes[0].For = append(d.Causes[0].For, "server said "+evil)
	d.Shared = true
	msg := RenderOnDemand(report.OnDemand("prod", d, "", renderNow), "U0ALICE")
	blocks := goldenMsg(t, "ondemand-diagnosis", msg)
	b := rawJSON(blocks)
	for _, h := range []string{"<!here>", "<https://x|y>", "& co"} {
		if strings.Contains(string(b), h) || strings.Contains(msg.Text, h) {
			t.Errorf("%q survives unescaped", h)
		}
	}
	if !strings.Contains(string(b), "asked by <@U0ALICE>") || !strings.Contains(msg.Text, "[DIAGNOSIS] prod: CRIT") {
		t.Errorf("text %q, blocks %s", msg.Text, b)
	}

	failed := RenderOnDemand(report.OnDemand("prod", nil, "the diagnosis did not finish within 10s", renderNow), "<!channel>")
	checkValid(t, failed)
	b = rawJSON(failed.Blocks)
	if strings.Contains(string(b), "<!channel>") || !strings.Contains(string(b), "did not finish within 10s") || !strings.Contains(failed.Text, "NOT DIAGNOSED") {
		t.Errorf("failed: %q %s", failed.Text, b)
	}
}

// rawJSON is v as JSON without HTML escaping (so that "<" reads as "<").
func rawJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return buf.Bytes()
}

// TestRenderOnDemandIsBounded: a diagnosis with hundreds of long findings
// still fits Slack's limits (blocks, section text, header).
func TestRenderOnDemandIsBounded(t *testing.T) {
	d := fixedDiagnosis()
	long := strings.Repeat("a very long exception text from the server ", 100)
	for i := range 500 {
		d.Findings = append(d.Findings, d.Findings[i%3])
		d.Findings[len(d.Findings)-1].Summary = long
	}
	for i := range 40 {
		d.Causes = append(d.Causes, diagnose.Cause{Name: fmt.Sprint("c", i), Title: long, Likelihood: diagnose.Possible, For: []string{long}})
	}
	d.Verdict = long + long
	d.NotAvailable = []string{long, long, long}
	msg := RenderOnDemand(report.OnDemand(strings.Repeat("cluster", 40), d, "", renderNow), "U0ALICE")
	blocks := checkValid(t, msg)
	if len(blocks) > MaxBlocks || len(msg.Text) > MaxFallbackText+100 {
		t.Errorf("%d blocks, text of %d", len(blocks), len(msg.Text))
	}
}
