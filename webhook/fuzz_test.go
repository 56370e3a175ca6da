package webhook

import (
	"bytes"
	"testing"
)

// FuzzDecode checks that no input makes the decoder panic, and that it never
// accepts more than the limit nor returns a message that fails validation.
func FuzzDecode(f *testing.F) {
	// am025-*: captured from a real Alertmanager 0.25 (internal/testenv).
	for _, name := range []string{"firing-1.json", "resolved-1.json", "firing-100.json", "am025-firing.json", "am025-partial-resolve.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(`{"version":"4","groupKey":"x","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"}}]}`))
	f.Add([]byte(`{"version":"4","alerts":null}`))
	f.Add([]byte(`[]`))
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, body []byte) {
		m, raw, err := Decode(bytes.NewReader(body), limit)
		if err != nil {
			if _, ok := err.(*RequestError); !ok {
				t.Fatalf("error %T is not a *RequestError", err)
			}
			return
		}
		if len(raw) > limit {
			t.Fatalf("accepted %d bytes over the limit", len(raw))
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid message: %v", err)
		}
		_ = m.DedupKey()
	})
}
