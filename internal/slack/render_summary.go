package slack

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/store"
)

// maxSummaryAlerts bounds the alert names a summary reply lists.
const maxSummaryAlerts = 6

// RenderSummary renders an incident thread's batched summary reply: the
// group changes since the previous summary ("+37 groups firing, 12
// resolved"), by alert name, the latest groups, and the totals now. Pure.
func RenderSummary(b store.SummaryBatch) Message {
	text := summaryLines(b, escape)
	plainText := summaryLines(b, func(s string) string { return s })
	return Message{
		Text:   clip(strings.ReplaceAll(text, "\n", " "), MaxFallbackText),
		Blocks: slack.Blocks{BlockSet: []slack.Block{section("summary", clip(text, MaxTextLen))}},
		Plain:  plainText,
	}
}

func summaryLines(b store.SummaryBatch, esc func(string) string) string {
	df := b.Now.FiringGroups - b.Start.FiringGroups
	dr := b.Now.ResolvedGroups - b.Start.ResolvedGroups
	since := b.Since.UTC().Format("15:04:05")
	head := fmt.Sprintf(":bar_chart: *%s %s firing, %s resolved* since %s UTC (%d %s)", signed(df), plural(abs(df), "group", "groups"), unsigned(dr), since,
		b.Changes, plural(b.Changes, "change", "changes"))
	lines := []string{head}
	if by := alertDeltas(b.Start.ByAlert, b.Now.ByAlert, esc); by != "" {
		lines = append(lines, by)
	}
	if len(b.Latest) > 0 {
		var gs []string
		for _, g := range b.Latest {
			s := esc(g.Title) + " " + g.Status
			if g.Status == "firing" {
				s += fmt.Sprintf(" (%d %s)", g.Firing, plural(g.Firing, "alert", "alerts"))
			}
			gs = append(gs, s)
		}
		lines = append(lines, "Latest: "+strings.Join(gs, ", ")+".")
	}
	lines = append(lines, fmt.Sprintf("Now: %d of %d groups firing (%d %s), %d resolved.", b.Now.FiringGroups, b.Now.Groups,
		b.Now.FiringAlerts, plural(b.Now.FiringAlerts, "alert", "alerts"), b.Now.ResolvedGroups))
	return strings.Join(lines, "\n")
}

// alertDeltas lists the alert names whose group counts changed, the
// largest change first, bounded.
func alertDeltas(start, now []store.AlertTotals, esc func(string) string) string {
	type delta struct {
		name     string
		df, dr   int
		absTotal int
	}
	before := map[string]store.AlertTotals{}
	for _, a := range start {
		before[a.Name] = a
	}
	seen := map[string]bool{}
	var ds []delta
	add := func(name string, a, b store.AlertTotals) {
		d := delta{name: name, df: b.Firing - a.Firing, dr: b.Resolved - a.Resolved}
		d.absTotal = abs(d.df) + abs(d.dr)
		if d.absTotal > 0 {
			ds = append(ds, d)
		}
	}
	for _, a := range now {
		seen[a.Name] = true
		add(a.Name, before[a.Name], a)
	}
	for _, a := range start {
		if !seen[a.Name] {
			add(a.Name, a, store.AlertTotals{Name: a.Name})
		}
	}
	if len(ds) == 0 {
		return ""
	}
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].absTotal != ds[j].absTotal {
			return ds[i].absTotal > ds[j].absTotal
		}
		return ds[i].name < ds[j].name
	})
	var parts []string
	for i, d := range ds {
		if i == maxSummaryAlerts {
			parts = append(parts, fmt.Sprintf("and %d more alert names", len(ds)-i))
			break
		}
		var ch []string
		if d.df != 0 {
			ch = append(ch, signed(d.df)+" firing")
		}
		if d.dr != 0 {
			ch = append(ch, signed(d.dr)+" resolved")
		}
		parts = append(parts, esc(d.name)+" "+strings.Join(ch, ", "))
	}
	return strings.Join(parts, "; ")
}

func signed(n int) string {
	if n >= 0 {
		return fmt.Sprintf("+%d", n)
	}
	return fmt.Sprintf("−%d", -n)
}

func unsigned(n int) string {
	if n >= 0 {
		return fmt.Sprint(n)
	}
	return signed(n)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// summaryAge is how long a batch spans, for logs.
func summaryAge(b store.SummaryBatch) time.Duration { return b.Until.Sub(b.Since) }
