package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
)

var nanValue = math.NaN()

// alertSpec is one alert of a generated webhook payload.
type alertSpec struct {
	Labels      map[string]string
	Annotations map[string]string
}

// webhookPayload builds an Alertmanager webhook payload (version 4) for one
// group: groupKey, the group's labels, its alerts, all firing.
func webhookPayload(groupKey string, groupLabels map[string]string, alerts []alertSpec, startsAt time.Time) []byte {
	type alert struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     string            `json:"startsAt"`
		EndsAt       string            `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	}
	msg := struct {
		Version           string            `json:"version"`
		GroupKey          string            `json:"groupKey"`
		TruncatedAlerts   int               `json:"truncatedAlerts"`
		Status            string            `json:"status"`
		Receiver          string            `json:"receiver"`
		GroupLabels       map[string]string `json:"groupLabels"`
		CommonLabels      map[string]string `json:"commonLabels"`
		CommonAnnotations map[string]string `json:"commonAnnotations"`
		ExternalURL       string            `json:"externalURL"`
		Alerts            []alert           `json:"alerts"`
	}{Version: "4", GroupKey: groupKey, Status: "firing", Receiver: "chmedic", GroupLabels: groupLabels,
		CommonLabels: groupLabels, CommonAnnotations: map[string]string{}, ExternalURL: "http://alertmanager.bench:9093"}
	for i, a := range alerts {
		msg.Alerts = append(msg.Alerts, alert{
			Status: "firing", Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: startsAt.UTC().Format(time.RFC3339Nano), EndsAt: "0001-01-01T00:00:00Z",
			GeneratorURL: "http://prometheus.bench:9090/graph?g0.expr=up", Fingerprint: fmt.Sprintf("%016x", hash(groupKey)+uint64(i)),
		})
	}
	out, err := json.Marshal(msg)
	if err != nil {
		panic(err)
	}
	return out
}

func hash(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// ingestPayload is the i-th payload of an ingest run: a unique group of n
// alerts; with n == 1 its description pads it to about 5 KB (a real
// ClickHouse alert with a long runbook text).
func ingestPayload(run string, i, n int) []byte {
	alertname := "ClickHouseReadonlyReplica"
	group := map[string]string{"alertname": alertname, "cluster": benchCluster, "bench_group": fmt.Sprintf("%s-%d", run, i)}
	desc := "Replicated table is in read-only mode: the ZooKeeper session expired or ZooKeeper is unreachable."
	if n == 1 {
		desc += " " + strings.Repeat("Check system.replicas, system.zookeeper and the coordination service's mntr. ", 58)
	}
	var alerts []alertSpec
	for j := range n {
		l := map[string]string{"alertname": alertname, "cluster": benchCluster, "bench_group": group["bench_group"],
			"instance": fmt.Sprintf("ch-%d.bench:9363", j%2+1), "table": fmt.Sprintf("db.t%03d", j), "severity": "critical"}
		alerts = append(alerts, alertSpec{Labels: l, Annotations: map[string]string{"summary": "read-only replica", "description": desc}})
	}
	key := fmt.Sprintf(`{}/{}:{alertname=%q, bench_group=%q, cluster=%q}`, alertname, group["bench_group"], benchCluster)
	return webhookPayload(key, group, alerts, time.Now())
}
