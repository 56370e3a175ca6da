package webhook

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// BenchmarkHandler measures the receiver's own cost per payload: auth,
// decode, validate, deduplicate and persist to SQLite (answer 200). Each
// iteration uses a distinct group key so nothing is collapsed.
func BenchmarkHandler(b *testing.B) {
	for _, name := range []string{"firing-1.json", "firing-100.json"} {
		b.Run(name, func(b *testing.B) {
			payload := readFixture(b, name)
			q := &fakeQueue{cap: 1 << 30}
			h := newTestHandler(b, nil, q)
			h.MaxBodyBytes = 4 << 20
			bodies := make([][]byte, 0, 1024)
			for i := 0; i < 1024; i++ {
				bodies = append(bodies, bytes.Replace(payload, []byte(`"groupKey":"`), []byte(`"groupKey":"`+string(rune('a'+i%26))+strconv.Itoa(i)), 1))
			}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				body := bodies[i%len(bodies)]
				if i >= len(bodies) {
					body = bytes.Replace(payload, []byte(`"groupKey":"`), []byte(`"groupKey":"n`+strconv.Itoa(i)), 1)
				}
				req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer s3cret")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payloads/s")
		})
	}
}

// BenchmarkSummarize is acceptance's decoding: the fast pass beside Parse
// (encoding/json into the full message) on the same payloads.
//
//	go test ./webhook/ -run '^$' -bench Summarize -benchmem
func BenchmarkSummarize(b *testing.B) {
	for _, name := range []string{"firing-1.json", "firing-100.json"} {
		body := readFixture(b, name)
		b.Run("fast/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := Summarize(body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("parse/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				m, err := Parse(body)
				if err != nil {
					b.Fatal(err)
				}
				_ = m.Summary()
			}
		})
	}
}
