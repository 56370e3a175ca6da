package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	d := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		q    float64
		want float64
	}{
		{"one value", d(7), 0.5, 7},
		{"p50 of two is the lower", d(10, 20), 0.5, 10},
		{"p50 of three", d(30, 10, 20), 0.5, 20},
		{"p99 of 100 is the 99th", d(hundred...), 0.99, 99},
		{"p50 of 100", d(hundred...), 0.50, 50},
		{"p100 is the max", d(3, 1, 2), 1, 3},
		{"p99 of 10 is the max", d(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.in, tc.q); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if !math.IsNaN(percentile(nil, 0.5)) {
		t.Error("empty input: want NaN")
	}
	in := d(3, 1, 2)
	percentile(in, 0.5)
	if in[0] != 3*time.Millisecond {
		t.Error("percentile sorted its input")
	}
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{1234567, "/s", "1,234,567 /s"},
		{5, "", "5"},
		{0.5, "ms", "0.50 ms"},
		{12.345, "ms", "12.3 ms"},
		{1234.56, "ms", "1,235 ms"},
		{-1500, "", "-1,500"},
		{math.NaN(), "ms", "—"},
	} {
		if got := formatValue(tc.v, tc.unit); got != tc.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

func TestWriteMarkdownAndJSON(t *testing.T) {
	res := Results{Machine: "2 cores", Commit: "abc123", Started: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Elapsed: "1m0s", Rows: []Row{
		{Scenario: "Ingest", Figure: "1-alert payloads accepted/s", Value: 1000, Unit: "/s", Peer: ptr(4000), PeerName: "bare server"},
		{Scenario: "Ingest", Figure: "errors", Value: 0},
		{Scenario: "Actions", Figure: "ddl_freeze | verified", Value: math.NaN(), Text: "not available in this build"},
		{Scenario: "Alert to Slack", Figure: "lag p50", Value: math.NaN(), Unit: "ms", Peer: ptr(5)},
	}}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, res); err != nil {
		t.Fatal(err)
	}
	want := `Machine: 2 cores; commit abc123; run 2026-12-01T09:00:00Z, 1m0s.

| scenario | figure | value | peer (same run) | ratio |
|---|---|---|---|---|
| Ingest | 1-alert payloads accepted/s | 1,000 /s | 4,000 /s (bare server) | 0.25× |
| Ingest | errors | 0 |  |  |
| Actions | ddl_freeze \| verified | not available in this build |  |  |
| Alert to Slack | lag p50 | — | 5 ms |  |
`
	if md.String() != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", md.String(), want)
	}
	var js bytes.Buffer
	if err := WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	var back struct {
		Rows []map[string]any `json:"rows"`
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if r := back.Rows[0]; r["ratio"] != 0.25 || r["peer"] != 4000.0 || r["value"] != 1000.0 {
		t.Errorf("row 0: %v", r)
	}
	if r := back.Rows[2]; r["value"] != nil || !strings.Contains(r["text"].(string), "not available") {
		t.Errorf("row 2: %v", r)
	}
	if _, ok := back.Rows[3]["ratio"]; ok {
		t.Errorf("row 3 has a ratio without a value: %v", back.Rows[3])
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

func TestIngestVerdict(t *testing.T) {
	ms := func(ds ...int) []time.Duration {
		var out []time.Duration
		for _, d := range ds {
			out = append(out, time.Duration(d)*time.Millisecond)
		}
		return out
	}
	ref := loadResult{accepted: 1000, elapsed: time.Second, latencies: ms(1, 2, 10)}
	for _, tc := range []struct {
		got  loadResult
		want string
	}{
		{loadResult{accepted: 500, elapsed: time.Second, latencies: ms(1, 2, 15)}, "met (rate 0.50×, p99 1.50×)"},
		{loadResult{accepted: 300, elapsed: time.Second, latencies: ms(1, 2, 15)}, "NOT met: rate 0.30× (target ≥ 0.40×)"},
		{loadResult{accepted: 500, elapsed: time.Second, latencies: ms(1, 2, 25)}, "NOT met: p99 2.50× (target ≤ 2.0×)"},
		{loadResult{elapsed: time.Second}, "NOT met: rate 0.00× (target ≥ 0.40×), p99 NaN× (target ≤ 2.0×)"},
	} {
		if got := ingestVerdict("s", tc.got, ref).Text; got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
