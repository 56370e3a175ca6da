package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Row is one line of the results table: a figure of a scenario, its value,
// and the peer's value measured in the same run (the bare server,
// Alertmanager's own Slack message, a bound), when there is one.
type Row struct {
	Scenario string `json:"scenario"`
	Figure   string `json:"figure"`
	// Value is the figure, in Unit; NaN (JSON null) when it could not be
	// measured (Text says why).
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
	// Peer is the peer's value in the same unit, when one is measured.
	Peer *float64 `json:"peer,omitempty"`
	// PeerName says what the peer is ("bare server", "Alertmanager", "bound").
	PeerName string `json:"peer_name,omitempty"`
	// Text replaces Value in the table when set ("not available in this build").
	Text string `json:"text,omitempty"`
}

// Ratio is Value / Peer, or NaN without a peer (or a zero peer).
func (r Row) Ratio() float64 {
	if r.Peer == nil || *r.Peer == 0 || math.IsNaN(r.Value) {
		return math.NaN()
	}
	return r.Value / *r.Peer
}

// MarshalJSON writes NaN as null and adds the ratio.
func (r Row) MarshalJSON() ([]byte, error) {
	type plain struct {
		Scenario string   `json:"scenario"`
		Figure   string   `json:"figure"`
		Value    *float64 `json:"value"`
		Unit     string   `json:"unit,omitempty"`
		Peer     *float64 `json:"peer,omitempty"`
		PeerName string   `json:"peer_name,omitempty"`
		Ratio    *float64 `json:"ratio,omitempty"`
		Text     string   `json:"text,omitempty"`
	}
	p := plain{Scenario: r.Scenario, Figure: r.Figure, Unit: r.Unit, Peer: r.Peer, PeerName: r.PeerName, Text: r.Text}
	if !math.IsNaN(r.Value) && !math.IsInf(r.Value, 0) {
		v := r.Value
		p.Value = &v
	}
	if q := r.Ratio(); !math.IsNaN(q) && !math.IsInf(q, 0) {
		q = math.Round(q*1000) / 1000
		p.Ratio = &q
	}
	return json.Marshal(p)
}

// Results is what a run prints.
type Results struct {
	Machine string    `json:"machine"`
	Commit  string    `json:"commit"`
	Started time.Time `json:"started"`
	Elapsed string    `json:"elapsed"`
	Rows    []Row     `json:"rows"`
}

// formatValue renders v in unit with a precision fit for reading.
func formatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "—"
	}
	var s string
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		s = groupThousands(strconv.FormatInt(int64(v), 10))
	case math.Abs(v) >= 100:
		s = groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
	case math.Abs(v) >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

func groupThousands(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func formatRatio(q float64) string {
	if math.IsNaN(q) || math.IsInf(q, 0) {
		return ""
	}
	if q >= 10 {
		return strconv.FormatFloat(q, 'f', 0, 64) + "×"
	}
	return strconv.FormatFloat(q, 'f', 2, 64) + "×"
}

// escapeCell makes s safe inside a Markdown table cell.
func escapeCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// WriteMarkdown writes the table: scenario, figure, value, peer, ratio.
func WriteMarkdown(w io.Writer, res Results) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Machine: %s; commit %s; run %s, %s.\n\n", res.Machine, res.Commit, res.Started.UTC().Format(time.RFC3339), res.Elapsed)
	b.WriteString("| scenario | figure | value | peer (same run) | ratio |\n|---|---|---|---|---|\n")
	for _, r := range res.Rows {
		val := formatValue(r.Value, r.Unit)
		if r.Text != "" {
			val = r.Text
		}
		peer := ""
		if r.Peer != nil {
			peer = formatValue(*r.Peer, r.Unit)
			if r.PeerName != "" {
				peer += " (" + r.PeerName + ")"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", escapeCell(r.Scenario), escapeCell(r.Figure), escapeCell(val), escapeCell(peer), formatRatio(r.Ratio()))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the results as one indented JSON document.
func WriteJSON(w io.Writer, res Results) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}

// percentile returns the q-quantile (0 < q ≤ 1) of ds by the nearest-rank
// method: the smallest value with at least q of the values at or below it.
// It sorts a copy; an empty input gives NaN.
func percentile(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return math.NaN()
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(q * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return ms(s[rank-1])
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ptr(v float64) *float64 { return &v }
