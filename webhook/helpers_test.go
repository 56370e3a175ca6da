package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// ev is one alert of a test notification: its fingerprint, status and
// times (minutes after 03:00 UTC; end < 0 means not resolved).
type ev struct {
	fp         string
	status     string
	start, end int
}

func firingAt(fp string, start int) ev { return ev{fp: fp, status: "firing", start: start, end: -1} }

func resolvedAt(fp string, start, end int) ev {
	return ev{fp: fp, status: "resolved", start: start, end: end}
}

var t0 = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

// groupPayload builds a version-4 payload of the group key with the alerts,
// shaped like Alertmanager's (firing alerts carry the zero endsAt).
func groupPayload(t testing.TB, groupKey string, alerts ...ev) []byte {
	t.Helper()
	status := "resolved"
	var list []map[string]any
	for _, a := range alerts {
		if a.status == "firing" {
			status = "firing"
		}
		end := time.Time{}
		if a.end >= 0 {
			end = t0.Add(time.Duration(a.end) * time.Minute)
		}
		list = append(list, map[string]any{
			"status":      a.status,
			"labels":      map[string]string{"alertname": "ClickHouseReadonlyReplica", "cluster": "prod", "instance": a.fp},
			"annotations": map[string]string{"summary": "Replica is read-only"},
			"startsAt":    t0.Add(time.Duration(a.start) * time.Minute),
			"endsAt":      end,
			"fingerprint": a.fp,
		})
	}
	b, err := json.Marshal(map[string]any{
		"version": "4", "groupKey": groupKey, "status": status, "receiver": "chmedic", "alerts": list,
		"groupLabels":  map[string]string{"alertname": "ClickHouseReadonlyReplica", "cluster": "prod"},
		"commonLabels": map[string]string{"alertname": "ClickHouseReadonlyReplica", "cluster": "prod"},
		"externalURL":  "http://alertmanager:9093", "truncatedAlerts": 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// postTo sends body to h and decodes the answer.
func postTo(t testing.TB, h http.Handler, body []byte) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer s3cret")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var r response
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	return r
}
