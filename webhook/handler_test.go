package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/chmedic/chmedic/internal/store"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type fakeQueue struct {
	mu     sync.Mutex
	cap    int
	used   int
	pushed []int64
}

func (q *fakeQueue) TryReserve() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.used >= q.cap {
		return false
	}
	q.used++
	return true
}
func (q *fakeQueue) Release() { q.mu.Lock(); q.used--; q.mu.Unlock() }
func (q *fakeQueue) Push(id int64, _ string) {
	q.mu.Lock()
	q.pushed = append(q.pushed, id)
	q.mu.Unlock()
}

type failingStore struct{}

func (failingStore) Accept(context.Context, store.Notification, time.Duration) (int64, bool, error) {
	return 0, false, errors.New("disk I/O error")
}

func newTestHandler(t testing.TB, st Acceptor, q *fakeQueue) *Handler {
	t.Helper()
	if st == nil {
		s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		st = s
	}
	return &Handler{
		Auth:         Auth{BearerToken: "s3cret"},
		MaxBodyBytes: 64 << 10,
		DedupWindow:  5 * time.Minute,
		Store:        st,
		Queue:        q,
		Metrics:      NewMetrics(prometheus.NewRegistry()),
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func TestHandlerRejections(t *testing.T) {
	valid := readFixture(t, "firing-1.json")
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	tests := []struct {
		name       string
		method     string
		auth       string
		body       []byte
		store      Acceptor
		queueCap   int
		wantStatus int
		wantReason string
		wantMetric string
	}{
		{name: "accepted", body: valid, wantStatus: 200},
		{name: "wrong method", method: http.MethodGet, wantStatus: 405, wantReason: "method GET not allowed", wantMetric: "method"},
		{name: "missing token", auth: "-", body: valid, wantStatus: 401, wantReason: "missing or wrong credentials", wantMetric: "unauthorized"},
		{name: "wrong token", auth: "Bearer nope", body: valid, wantStatus: 401, wantMetric: "unauthorized"},
		{name: "wrong scheme", auth: "Basic czNjcmV0", body: valid, wantStatus: 401, wantMetric: "unauthorized"},
		{name: "too large", body: append(append([]byte(`{"x":"`), bytes.Repeat([]byte("a"), 70<<10)...), '"', '}'), wantStatus: 413, wantReason: "larger than 65536 bytes", wantMetric: "too_large"},
		{name: "empty", body: []byte("  "), wantStatus: 400, wantReason: "empty body", wantMetric: "empty"},
		{name: "not json", body: []byte("hello"), wantStatus: 400, wantReason: "not valid JSON", wantMetric: "bad_json"},
		{name: "wrong type", body: mutate(func(m map[string]any) { m["alerts"] = "x" }), wantStatus: 400, wantReason: "not valid JSON: field", wantMetric: "bad_json"},
		{name: "trailing data", body: append(append([]byte{}, valid...), []byte("{}")...), wantStatus: 400, wantReason: "trailing data", wantMetric: "bad_json"},
		{name: "missing version", body: mutate(func(m map[string]any) { delete(m, "version") }), wantStatus: 400, wantReason: "missing version", wantMetric: "bad_version"},
		{name: "wrong version", body: mutate(func(m map[string]any) { m["version"] = "3" }), wantStatus: 400, wantReason: `unsupported payload version "3"`, wantMetric: "bad_version"},
		{name: "missing group key", body: mutate(func(m map[string]any) { delete(m, "groupKey") }), wantStatus: 400, wantReason: "missing groupKey", wantMetric: "missing_group_key"},
		{name: "missing alerts", body: mutate(func(m map[string]any) { delete(m, "alerts") }), wantStatus: 400, wantReason: "missing alerts", wantMetric: "missing_alerts"},
		{name: "empty alerts", body: mutate(func(m map[string]any) { m["alerts"] = []any{} }), wantStatus: 400, wantReason: "alerts is empty", wantMetric: "missing_alerts"},
		{name: "bad status", body: mutate(func(m map[string]any) { m["status"] = "pending" }), wantStatus: 400, wantReason: `status "pending"`, wantMetric: "bad_status"},
		{name: "alert without labels", body: mutate(func(m map[string]any) { m["alerts"].([]any)[0].(map[string]any)["labels"] = map[string]any{} }), wantStatus: 400, wantReason: "alerts[0].labels is empty", wantMetric: "missing_labels"},
		{name: "queue full", body: valid, queueCap: -1, wantStatus: 503, wantReason: "queue full", wantMetric: "queue_full"},
		{name: "store down", body: valid, store: failingStore{}, wantStatus: 500, wantReason: "could not store", wantMetric: "store_error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQueue{cap: 8}
			if tc.queueCap < 0 {
				q.cap = 0
			}
			h := newTestHandler(t, tc.store, q)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, "/webhook", bytes.NewReader(tc.body))
			switch tc.auth {
			case "":
				req.Header.Set("Authorization", "Bearer s3cret")
			case "-":
			default:
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.wantStatus, rec.Body)
			}
			var resp response
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
				t.Fatalf("response is not JSON: %q", rec.Body)
			}
			if tc.wantReason != "" && !strings.Contains(resp.Error, tc.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", resp.Error, tc.wantReason)
			}
			if strings.Contains(resp.Error, "\n") {
				t.Errorf("reason spans lines: %q", resp.Error)
			}
			if tc.wantMetric != "" {
				if got := testutil.ToFloat64(h.Metrics.Rejected.WithLabelValues(tc.wantMetric)); got != 1 {
					t.Errorf("rejected{reason=%q} = %v, want 1", tc.wantMetric, got)
				}
			}
			if tc.wantStatus != 200 && (len(q.pushed) != 0 || q.used != 0) {
				t.Errorf("rejected request touched the queue: pushed=%v used=%d", q.pushed, q.used)
			}
			if tc.wantStatus == 200 && len(q.pushed) != 1 {
				t.Errorf("pushed = %v, want one id", q.pushed)
			}
		})
	}
}

func TestHandlerBasicAuth(t *testing.T) {
	h := newTestHandler(t, nil, &fakeQueue{cap: 4})
	h.Auth = Auth{Username: "am", Password: "pw"}
	for _, tc := range []struct {
		user, pass string
		want       int
	}{{"am", "pw", 200}, {"am", "bad", 401}, {"bad", "pw", 401}, {"", "", 401}} {
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(readFixture(t, "firing-1.json")))
		if tc.user != "" {
			req.SetBasicAuth(tc.user, tc.pass)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("%s/%s: status %d, want %d", tc.user, tc.pass, rec.Code, tc.want)
		}
		if tc.want == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic") {
			t.Errorf("401 without a Basic challenge")
		}
	}
}

func TestHandlerDeduplicates(t *testing.T) {
	q := &fakeQueue{cap: 8}
	h := newTestHandler(t, nil, q)
	post := func(body []byte) response {
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cret")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var r response
		json.Unmarshal(rec.Body.Bytes(), &r)
		return r
	}
	firing := readFixture(t, "firing-1.json")
	first := post(firing)
	second := post(firing) // repeat_interval re-send or the HA twin
	if first.Status != "accepted" || second.Status != "duplicate" || second.ID != first.ID {
		t.Fatalf("first %+v second %+v: want accepted then duplicate of the same id", first, second)
	}
	// Same group, the same alert, but resolved: a new event.
	var m map[string]any
	json.Unmarshal(firing, &m)
	m["status"] = "resolved"
	m["alerts"].([]any)[0].(map[string]any)["status"] = "resolved"
	resolved, _ := json.Marshal(m)
	if r := post(resolved); r.Status != "accepted" {
		t.Fatalf("resolved: %+v, want accepted", r)
	}
	if len(q.pushed) != 2 || q.used != 2 {
		t.Fatalf("pushed %v (slots used %d), want two", q.pushed, q.used)
	}
	if got := testutil.ToFloat64(h.Metrics.Received.WithLabelValues("duplicate")); got != 1 {
		t.Errorf("duplicate counter = %v", got)
	}
}

func TestDedupKey(t *testing.T) {
	base, err := Parse(readFixture(t, "firing-100.json"))
	if err != nil {
		t.Fatal(err)
	}
	k := base.DedupKey()
	// Alert order does not matter.
	rev, _ := Parse(readFixture(t, "firing-100.json"))
	for i, j := 0, len(rev.Alerts)-1; i < j; i, j = i+1, j-1 {
		rev.Alerts[i], rev.Alerts[j] = rev.Alerts[j], rev.Alerts[i]
	}
	if rev.DedupKey() != k {
		t.Error("reordering alerts changed the key")
	}
	fewer, _ := Parse(readFixture(t, "firing-100.json"))
	fewer.Alerts = fewer.Alerts[1:]
	if fewer.DedupKey() == k {
		t.Error("dropping an alert kept the key")
	}
	other, _ := Parse(readFixture(t, "firing-100.json"))
	other.GroupKey += "x"
	if other.DedupKey() == k {
		t.Error("another group kept the key")
	}
}

// TestParseRealAlertmanagerPayloads reads what a real Alertmanager 0.25 sent.
func TestParseRealAlertmanagerPayloads(t *testing.T) {
	for name, want := range map[string]struct {
		status          string
		firing, resolve int
	}{
		"am025-firing.json":          {"firing", 2, 0},
		"am025-partial-resolve.json": {"firing", 1, 1},
	} {
		m, err := Parse(readFixture(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Status != want.status || len(m.Alerts.Firing()) != want.firing || len(m.Alerts.Resolved()) != want.resolve || m.GroupKey == "" {
			t.Errorf("%s: status %s, %d firing, %d resolved, group %q", name, m.Status, len(m.Alerts.Firing()), len(m.Alerts.Resolved()), m.GroupKey)
		}
	}
}
