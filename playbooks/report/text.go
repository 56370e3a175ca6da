package report

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// StatusMark is a short, greppable marker for a status.
func StatusMark(s probe.Status) string {
	switch s {
	case probe.Crit:
		return "CRIT"
	case probe.Warn:
		return "WARN"
	case probe.Unknown:
		return "UNKN"
	}
	return "OK"
}

// WriteText renders the report for a terminal or a log.
func WriteText(w io.Writer, r *Report) error {
	b := bufio.NewWriter(w)
	status := strings.ToUpper(r.Status)
	fmt.Fprintf(b, "[%s] %s\n", status, r.Title)
	var meta []string
	if r.Severity != "" {
		meta = append(meta, "severity "+r.Severity)
	}
	if r.Cluster != "" {
		meta = append(meta, "cluster "+r.Cluster)
	}
	meta = append(meta, fmt.Sprintf("%d firing, %d resolved", r.Firing, r.Resolved))
	if r.Truncated > 0 {
		meta = append(meta, fmt.Sprintf("%d more not sent by Alertmanager", r.Truncated))
	}
	if !r.StartsAt.IsZero() {
		meta = append(meta, "since "+r.StartsAt.Format(time.RFC3339))
	}
	if !r.ResolvedAt.IsZero() {
		meta = append(meta, "resolved "+r.ResolvedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(b, "%s\n", strings.Join(meta, " · "))
	if r.Summary != "" {
		fmt.Fprintf(b, "%s\n", r.Summary)
	}
	if r.Description != "" && r.Description != r.Summary {
		fmt.Fprintf(b, "%s\n", strings.TrimSpace(r.Description))
	}
	if inc := r.Incident; inc != nil {
		fmt.Fprintf(b, "\nIncident: %d alert groups on this cluster", inc.Count())
		if inc.Total > 0 {
			fmt.Fprintf(b, " (%d firing, %d resolved; %d alerts firing)", inc.FiringGroups, inc.ResolvedGroups, inc.FiringAlerts)
		}
		fmt.Fprintln(b)
		if g := inc.Latest; g != nil {
			fmt.Fprintf(b, "Latest: [%s] %s %s (%d firing)\n", strings.ToUpper(g.Status), g.Title, g.Labels, g.Firing)
		}
		for _, a := range inc.ByAlert {
			fmt.Fprintf(b, "  %s: %d groups firing (%d alerts), %d resolved\n", a.Name, a.Firing, a.FiringAlerts, a.Resolved)
		}
		if inc.MoreAlertNames > 0 {
			fmt.Fprintf(b, "  and %d more alert names\n", inc.MoreAlertNames)
		}
		// The top groups only: the text stays bounded however large the storm.
		const shown = 10
		for i, g := range inc.Groups {
			if i == shown {
				break
			}
			fmt.Fprintf(b, "  - [%s] %s (%d firing)\n", strings.ToUpper(g.Status), g.Title, g.Firing)
		}
		if more := inc.Count() - min(len(inc.Groups), shown); more > 0 {
			fmt.Fprintf(b, "  and %d more groups\n", more)
		}
	}
	if r.Diagnosis != nil {
		fmt.Fprintf(b, "\nDiagnosis: %s\n", r.Diagnosis.Verdict)
	}
	for _, s := range r.Sections {
		if s.Name == "meaning" || s.Name == "impact" {
			writeSection(b, s)
		}
	}
	fmt.Fprintf(b, "\n== Live findings ==\n")
	if r.DiagnosisNote != "" {
		fmt.Fprintf(b, "%s\n", r.DiagnosisNote)
	}
	if r.Diagnosis != nil {
		writeDiagnosis(b, r.Diagnosis, r.FindingsInOrder())
	}
	for _, s := range r.Sections {
		if s.Name != "meaning" && s.Name != "impact" {
			writeSection(b, s)
		}
	}
	if len(r.Alerts) > 0 {
		fmt.Fprintf(b, "\n== Alerts ==\n")
		for _, a := range r.Alerts {
			fmt.Fprintf(b, "  [%s] %s %s", strings.ToUpper(a.Status), a.Name, LabelText(a.Labels))
			if a.Summary != "" {
				fmt.Fprintf(b, " — %s", a.Summary)
			}
			fmt.Fprintln(b)
		}
	}
	if len(r.Actions) > 0 {
		fmt.Fprintf(b, "\n== Actions (approval required) ==\n")
		for _, a := range r.Actions {
			danger := ""
			if a.Danger {
				danger = " (disruptive)"
			}
			fmt.Fprintf(b, "  - %s%s [%s] request %s\n", a.Label, danger, a.Kind, a.RequestID)
		}
	}
	if len(r.Links) > 0 {
		fmt.Fprintf(b, "\n== Links ==\n")
		for _, l := range r.Links {
			fmt.Fprintf(b, "  %s: %s\n", l.Title, l.URL)
		}
	}
	fmt.Fprintf(b, "\nplaybook %s", r.Playbook.Name)
	if !r.Playbook.Matched {
		fmt.Fprintf(b, " (no specific playbook matched)")
	}
	fmt.Fprintf(b, " · generated %s\n", r.GeneratedAt.Format(time.RFC3339))
	return b.Flush()
}

func writeSection(b *bufio.Writer, s Section) {
	fmt.Fprintf(b, "\n== %s ==\n%s\n", s.Title, strings.TrimSpace(s.Body))
}

// WriteDiagnosis renders a diagnosis alone (chmedic diagnose).
func WriteDiagnosis(w io.Writer, d *diagnose.Diagnosis) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "cluster %s · %s · %d checks in %s\n", d.Cluster, StatusMark(d.Status), len(d.Results), d.Duration.Round(time.Millisecond))
	fmt.Fprintf(b, "%s\n", d.Verdict)
	writeDiagnosis(b, d, d.Findings)
	fmt.Fprintf(b, "\n== All checks ==\n")
	rs := append([]probe.Result(nil), d.Results...)
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].Probe != rs[j].Probe {
			return rs[i].Probe < rs[j].Probe
		}
		return rs[i].Node < rs[j].Node
	})
	for _, r := range rs {
		summary := r.Summary
		if r.Skipped != "" {
			summary = "skipped: " + r.Skipped
		}
		fmt.Fprintf(b, "  %-4s %-28s %-10s %6s  %s\n", StatusMark(r.Status), r.Probe, r.Node, r.Duration.Round(time.Millisecond), summary)
	}
	return b.Flush()
}

func writeDiagnosis(b *bufio.Writer, d *diagnose.Diagnosis, fs []diagnose.Finding) {
	if d.SkippedExpensive != "" {
		fmt.Fprintf(b, "Probes that query the coordination service were skipped: %s\n", d.SkippedExpensive)
	}
	if len(fs) == 0 {
		fmt.Fprintf(b, "All %d checks passed.\n", len(d.Results)-countUnavailable(d))
	}
	for _, f := range fs {
		fmt.Fprintf(b, "  %-4s %s%s: %s\n", StatusMark(f.Status), FindingPlace(f), f.Probe, f.Summary)
		for _, t := range f.Evidence {
			writeTable(b, t, "         ")
		}
	}
	if len(d.Skipped) > 0 {
		fmt.Fprintf(b, "Not run:\n")
		for _, n := range d.Skipped {
			fmt.Fprintf(b, "  - %s\n", n)
		}
	}
	if len(d.NotAvailable) > 0 {
		fmt.Fprintf(b, "Not available on this server version or setup:\n")
		for _, n := range d.NotAvailable {
			fmt.Fprintf(b, "  - %s\n", n)
		}
	}
	if top, ok := d.Top(); ok {
		fmt.Fprintf(b, "\n== Likely cause ==\n%s (%s)\n", capitalize(top.Title), top.Likelihood)
		for _, e := range top.For {
			fmt.Fprintf(b, "  + %s\n", e)
		}
		for _, e := range top.Against {
			fmt.Fprintf(b, "  - %s\n", e)
		}
		for _, c := range d.Causes[1:] {
			if c.Likelihood == diagnose.Unlikely {
				break
			}
			fmt.Fprintf(b, "Also %s: %s (%s)\n", c.Likelihood, c.Title, strings.Join(c.For, "; "))
		}
	} else if d.Status != probe.OK {
		fmt.Fprintf(b, "\n== Likely cause ==\nNo clear cause: the evidence is thin.\n")
	}
}

// FindingPlace names where a finding is, with a trailing space: "ch-2
// (shard 1, replica r2) ", "zk-1 ", "shard 2 " or "".
func FindingPlace(f diagnose.Finding) string {
	switch {
	case f.Node != "" && f.Shard > 0 && f.Replica != "" && f.Replica != f.Node:
		return fmt.Sprintf("%s (shard %d, replica %s) ", f.Node, f.Shard, f.Replica)
	case f.Node != "" && f.Shard > 0:
		return fmt.Sprintf("%s (shard %d) ", f.Node, f.Shard)
	case f.Node != "":
		return f.Node + " "
	case f.Shard > 0:
		return fmt.Sprintf("shard %d ", f.Shard)
	}
	return ""
}

func writeTable(b *bufio.Writer, t probe.Table, indent string) {
	if t.Title != "" {
		fmt.Fprintf(b, "%s%s\n", indent, t.Title)
	}
	widths := make([]int, len(t.Columns))
	for i, c := range t.Columns {
		widths[i] = len(c)
	}
	cell := func(c string) string {
		if utf8.RuneCountInString(c) > 60 {
			return string([]rune(c)[:59]) + "…"
		}
		return c
	}
	for _, row := range t.Rows {
		for i, c := range row {
			if n := utf8.RuneCountInString(cell(c)); i < len(widths) && n > widths[i] {
				widths[i] = n
			}
		}
	}
	line := func(cells []string) {
		fmt.Fprint(b, indent)
		for i, c := range cells {
			if i >= len(widths) {
				break
			}
			c = cell(c)
			fmt.Fprint(b, c, strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)+2))
		}
		fmt.Fprintln(b)
	}
	line(t.Columns)
	for _, row := range t.Rows {
		line(row)
	}
	if t.Omitted > 0 {
		fmt.Fprintf(b, "%s… %d more rows\n", indent, t.Omitted)
	}
}

// LabelText formats a label set as {a="1", b="2"}, sorted by name.
func LabelText(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func countUnavailable(d *diagnose.Diagnosis) int {
	n := 0
	for _, r := range d.Results {
		if r.IsUnavailable() {
			n++
		}
	}
	return n
}
