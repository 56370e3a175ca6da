package digest

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// VerdictMark is the greppable marker of a verdict.
func VerdictMark(v Verdict) string { return strings.ToUpper(string(v)) }

// WriteText renders the digest for a terminal or a log.
func WriteText(w io.Writer, d *Digest) error {
	b := bufio.NewWriter(w)
	title := "Health digest"
	if d.Name != "" {
		title += " " + d.Name
	}
	fmt.Fprintf(b, "[%s] %s: %s\n", VerdictMark(d.Verdict), title, d.Headline)
	meta := []string{"generated " + d.GeneratedAt.UTC().Format(time.RFC3339), "source " + d.Source}
	if d.ScheduledAt != nil {
		meta = append(meta, "scheduled "+d.ScheduledAt.UTC().Format(time.RFC3339))
	}
	if !d.Stored {
		meta = append(meta, "not stored")
	}
	fmt.Fprintln(b, strings.Join(meta, " · "))
	for _, n := range d.Notes {
		fmt.Fprintf(b, "note: %s\n", n)
	}
	for _, c := range d.Clusters {
		writeCluster(b, c)
	}
	writeHealth(b, &d.Chmedic)
	return b.Flush()
}

func writeCluster(b *bufio.Writer, c *Cluster) {
	fmt.Fprintf(b, "\n== Cluster %s: %s\n", c.Name, VerdictMark(c.Verdict))
	if c.PreviousAt != nil {
		fmt.Fprintf(b, "previous digest %s\n", c.PreviousAt.UTC().Format(time.RFC3339))
	}
	for _, r := range c.Reasons {
		fmt.Fprintf(b, "  %-5s %s\n", VerdictMark(r.Level), r.Text)
		if r.Advice != "" {
			fmt.Fprintf(b, "        advice: %s\n", r.Advice)
		}
		if r.Playbook != "" {
			fmt.Fprintf(b, "        playbook: %s\n", r.Playbook)
		}
	}
	for _, a := range c.Actions {
		fmt.Fprintf(b, "  action: %s (%s%s) from playbook %s, for: %s\n", a.Label, a.Kind, paramText(a.Params), a.Playbook, a.Reason)
	}
	if c.Diagnosis.Error != "" {
		fmt.Fprintf(b, "diagnosis: failed: %s\n", c.Diagnosis.Error)
	} else {
		shared := ""
		if c.Diagnosis.Shared {
			shared = ", shared with a concurrent or recent round"
		}
		fmt.Fprintf(b, "diagnosis: %s (%d checks in %s%s)\n", c.Diagnosis.Verdict, c.Diagnosis.Checks, c.Diagnosis.Duration.Round(time.Millisecond), shared)
	}
	fmt.Fprintf(b, "nodes up: %d/%d · read-only replicas: %s · max replication delay: %s · max replication queue: %s · stuck queue entries: %s\n",
		c.NodesUp, c.NodesTotal, ip(c.ReadonlyReplicas), secs(c.MaxReplicationDelaySeconds), ip(c.MaxReplicationQueue), ip(c.StuckQueueEntries))
	if c.DDLQueue.NotAvailable != "" {
		fmt.Fprintf(b, "distributed DDL queue: not available (%s)\n", c.DDLQueue.NotAvailable)
	} else {
		fmt.Fprintf(b, "distributed DDL queue: %s unfinished, oldest %s\n", ip(c.DDLQueue.Unfinished), secs(c.DDLQueue.OldestSeconds))
	}
	ddl := fmt.Sprintf("DDL since %s: %s", c.DDL.Since.UTC().Format("2006-01-02 15:04 UTC"), ip(c.DDL.Count))
	if c.DDL.PerHour != nil {
		ddl += fmt.Sprintf(" (%s/h)", fmtNum(*c.DDL.PerHour))
	}
	if c.DDL.Note != "" {
		ddl += " — " + c.DDL.Note
	}
	fmt.Fprintf(b, "replicated tables: %s (largest on one server) · %s\n", ip(c.ReplicatedTables), ddl)

	fmt.Fprintln(b, "ClickHouse nodes:")
	tw := [][]string{{"node", "up", "version", "repl.tables", "read-only", "max delay", "max queue", "stuck", "DDL", "note"}}
	for _, n := range c.Nodes {
		up := "yes"
		if !n.Up {
			up = "NO"
		}
		tw = append(tw, []string{n.Name, up, n.Version, ip(n.ReplicatedTables), ip(n.ReadonlyReplicas), secs(n.MaxDelaySeconds), ip(n.MaxQueueSize), ip(n.StuckQueueEntries), ip(n.DDLCount), n.Note})
	}
	writeCols(b, tw)
	fmt.Fprintln(b, "Coordination nodes:")
	tk := [][]string{{"node", "state", "avg ms", "max ms", "outstanding", "znodes", "watches", "ephemerals", "connections", "fd", "note"}}
	for _, k := range c.Keeper {
		tk = append(tk, []string{k.Name, k.State, fp(k.AvgLatencyMs), fp(k.MaxLatencyMs), ip(k.Outstanding), ip(k.Znodes), ip(k.Watches), ip(k.Ephemerals), ip(k.Connections), fdText(k), k.Note})
	}
	writeCols(b, tk)
	fmt.Fprintln(b, "Trends (against the previous digest):")
	tt := [][]string{{"figure", "now", "previous", "delta", "flag"}}
	for _, t := range c.Trends {
		flag := ""
		if t.Flagged {
			flag = "GROWING (threshold " + t.Threshold + ")"
		}
		tt = append(tt, []string{t.Name, fp(t.Value), fp(t.Previous), deltaText(t), flag})
	}
	writeCols(b, tt)
	writeAlerts(b, &c.Alerts)
	writeList(b, "active DDL freezes", c.Freezes)
	writeList(b, "pending approvals", c.Approvals)
	writeList(b, "actions run since the previous digest", c.ActionsRun)
	for _, f := range c.Diagnosis.Findings {
		fmt.Fprintf(b, "finding: %s\n", f)
	}
	if len(c.Diagnosis.NotAvailable) > 0 {
		fmt.Fprintf(b, "not available here: %s\n", strings.Join(c.Diagnosis.NotAvailable, "; "))
	}
	if len(c.Diagnosis.Skipped) > 0 {
		fmt.Fprintf(b, "not run: %s\n", strings.Join(c.Diagnosis.Skipped, "; "))
	}
	for _, n := range c.Notes {
		fmt.Fprintf(b, "note: %s\n", n)
	}
}

func writeAlerts(b *bufio.Writer, a *Alerts) {
	if !a.Available {
		fmt.Fprintf(b, "alerts received: %s\n", a.Note)
		return
	}
	if len(a.ByName) == 0 {
		fmt.Fprintf(b, "alerts received since %s: none\n", a.Since.UTC().Format("2006-01-02 15:04 UTC"))
		return
	}
	var parts []string
	for _, x := range a.ByName {
		parts = append(parts, fmt.Sprintf("%s ×%d (%d notifications)", x.Name, x.Firing, x.Notifications))
	}
	more := ""
	if a.Truncated {
		more = " (at least: only the latest notifications were read)"
	}
	fmt.Fprintf(b, "alerts received since %s%s: %s\n", a.Since.UTC().Format("2006-01-02 15:04 UTC"), more, strings.Join(parts, ", "))
}

func writeList(b *bufio.Writer, what string, l List) {
	switch {
	case !l.Available:
		fmt.Fprintf(b, "%s: %s\n", what, l.Note)
	case len(l.Items) == 0:
		fmt.Fprintf(b, "%s: none\n", what)
	default:
		fmt.Fprintf(b, "%s: %s\n", what, strings.Join(l.Items, "; "))
	}
}

func writeHealth(b *bufio.Writer, h *Health) {
	fmt.Fprintf(b, "\n== chmedic itself: %s (since %s)\n", VerdictMark(h.Verdict), h.Since.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(b, "outbox backlog: %s · messages given up on: %s\n", ip(h.OutboxBacklog), ip(h.GivenUp))
	fmt.Fprintf(b, "webhook rejections: %s", RejectionsText(h.Rejections))
	if h.RejectionsNote != "" {
		fmt.Fprintf(b, " (%s)", h.RejectionsNote)
	}
	fmt.Fprintln(b)
	writeList(b, "requests pending approval", h.Approvals)
	for _, n := range h.Notes {
		fmt.Fprintf(b, "note: %s\n", n)
	}
}

// RejectionsText lists rejections by reason, "none" when there are none.
func RejectionsText(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s", k, fmtNum(m[k])))
	}
	return strings.Join(parts, ", ")
}

func writeCols(b *bufio.Writer, rows [][]string) {
	if len(rows) <= 1 {
		fmt.Fprintln(b, "  (none)")
		return
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			if i < len(widths)-1 && len([]rune(c)) > widths[i] {
				widths[i] = len([]rune(c))
			}
		}
	}
	for _, r := range rows {
		var line strings.Builder
		line.WriteString("  ")
		for i, c := range r {
			line.WriteString(c)
			if i < len(r)-1 {
				line.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
			}
		}
		fmt.Fprintln(b, strings.TrimRight(line.String(), " "))
	}
}

// IntText prints an optional integer ("n/a" when it was not read).
func IntText(v *int64) string { return ip(v) }

// FloatText prints an optional figure ("n/a" when it was not read).
func FloatText(v *float64) string { return fp(v) }

// SecondsText prints an optional duration in seconds.
func SecondsText(v *float64) string { return secs(v) }

// DeltaText prints a trend's delta with its sign and percentage.
func DeltaText(t Trend) string { return deltaText(t) }

// FDText prints a coordination node's file descriptor use.
func FDText(k KeeperNode) string { return fdText(k) }

func ip(v *int64) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf("%d", *v)
}

func fp(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return fmtNum(round1(*v))
}

func secs(v *float64) string {
	if v == nil {
		return "n/a"
	}
	return (time.Duration(*v) * time.Second).String()
}

func deltaText(t Trend) string {
	if t.Delta == nil {
		if t.Previous == nil {
			return "no previous"
		}
		return "n/a"
	}
	s := fmtNum(round1(*t.Delta))
	if *t.Delta > 0 {
		s = "+" + s
	}
	if t.DeltaPercent != nil {
		p := fmtNum(*t.DeltaPercent)
		if *t.DeltaPercent > 0 {
			p = "+" + p
		}
		s += " (" + p + "%)"
	}
	return s
}

func fdText(k KeeperNode) string {
	if k.OpenFDs == nil || k.MaxFDs == nil {
		return "n/a"
	}
	s := fmt.Sprintf("%d/%d", *k.OpenFDs, *k.MaxFDs)
	if k.FDRatio != nil {
		s += fmt.Sprintf(" (%.0f%%)", *k.FDRatio*100)
	}
	return s
}

func paramText(p map[string]string) string {
	if len(p) == 0 {
		return ""
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+p[k])
	}
	return " " + strings.Join(parts, " ")
}

// ParamText prints action parameters as " k=v k=v" (sorted).
func ParamText(p map[string]string) string { return paramText(p) }
