package slack

import (
	"strings"
	"testing"

	"github.com/prometheus/alertmanager/template"

	"github.com/chmedic/chmedic/playbooks/report"
)

// TestRenderEscapesAlertText: mentions and links in every text field of an
// alert (name, labels, annotations, generator and runbook URLs) reach the
// rendered message escaped; the golden file shows how they read.
func TestRenderEscapesAlertText(t *testing.T) {
	evil := "<!here> <!channel> <https://x|y> & co"
	set := builtinSet(t)
	pb, _ := set.Get("keeper-down")
	d := alertData("ZookeeperDown"+evil, "firing", 2)
	d.CommonLabels["alertname"] = "ZookeeperDown" + evil
	d.CommonLabels["severity"] = "critical " + evil
	d.CommonAnnotations = template.KV{"summary": "sum " + evil, "description": "desc " + evil, "runbook_url": "https://wiki.example.com/r?a=1&b=" + evil}
	for i := range d.Alerts {
		d.Alerts[i].Labels["alertname"] = "ZookeeperDown" + evil
		d.Alerts[i].Labels["instance"] = evil
		d.Alerts[i].GeneratorURL = "http://prometheus.example.com:9090/graph?g0.expr=" + evil
	}
	in := inputFor(pb, true, d)
	in.Note = "note " + evil
	msg, blocks := golden(t, "hostile", report.Build(in))
	// Every mrkdwn text and the notification text. (plain_text, the header
	// and button labels, is not parsed by Slack: nothing in it is live.)
	texts := []string{msg.Text}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["text"].(string); ok && x["type"] == "mrkdwn" {
				texts = append(texts, s)
			}
			for _, c := range x {
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		case []map[string]any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(blocks)
	if len(texts) < 8 {
		t.Fatalf("only %d texts found", len(texts))
	}
	for _, s := range texts {
		for _, h := range []string{"<!here>", "<!channel>", "<https://x|y>", "|y>", "expr=<", "& co"} {
			if strings.Contains(s, h) {
				t.Errorf("%q survives unescaped in %q", h, s)
			}
		}
	}
	if !strings.Contains(msg.Text, "ZookeeperDown&lt;!here&gt;") {
		t.Errorf("notification text %q", msg.Text)
	}
}
