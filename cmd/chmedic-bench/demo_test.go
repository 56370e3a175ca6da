package main

import "testing"

func TestBlocksText(t *testing.T) {
	blocks := `[{"type":"header","text":{"type":"plain_text","text":":fire: FIRING: ZookeeperDown"}},
{"type":"context","elements":[{"type":"mrkdwn","text":"*Cluster:* bench"},{"type":"mrkdwn","text":"*Since:* <!date^1796116239^{date_short_pretty} {time}|2026-12-01 09:10 UTC>"}]},
{"type":"section","text":{"type":"mrkdwn","text":"*Diagnosis:* down"},"fields":[{"type":"mrkdwn","text":"a\nb"}]},
{"type":"divider"},
{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Collect logs"}}]},
{"type":"context","elements":[{"type":"mrkdwn","text":"<http://am:9093/#/silences|Silence in Alertmanager>"}]}]`
	want := `# :fire: FIRING: ZookeeperDown
  (*Cluster:* bench · *Since:* 2026-12-01 09:10 UTC)
*Diagnosis:* down
  a b
  ---
  [Collect logs]
  (Silence in Alertmanager (http://am:9093/#/silences))`
	if got := plainMrkdwn(blocksText(blocks)); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if blocksText("") != "" || blocksText("not json") != "" {
		t.Error("empty or invalid blocks should render as nothing")
	}
}

func TestParseMetrics(t *testing.T) {
	m, err := parseMetrics(stringsReader(`# HELP chmedic_x help
# TYPE chmedic_x counter
chmedic_diagnosis_rounds_total 3
chmedic_clickhouse_queries_total{node="ch-1"} 10
chmedic_clickhouse_queries_total{node="ch-2"} 12
`))
	if err != nil {
		t.Fatal(err)
	}
	if m["chmedic_diagnosis_rounds_total"] != 3 || m[`chmedic_clickhouse_queries_total{node="ch-1"}`] != 10 || m["chmedic_clickhouse_queries_total"] != 22 {
		t.Errorf("metrics: %v", m)
	}
	if findSeries(m, "chmedic_clickhouse_queries_total", "ch-2") != `chmedic_clickhouse_queries_total{node="ch-2"}` {
		t.Error("findSeries")
	}
}
