package app

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestReadyzDegradedWhileSlackRefusesTheToken: a revoked token keeps the
// message pending and /readyz says degraded (200: alerts are still
// accepted and kept) naming the error.
func TestReadyzDegradedWhileSlackRefusesTheToken(t *testing.T) {
	a, slk := startApp(t, "15s")
	slk.RevokeToken("token_revoked")
	resp, err := http.Post("http://"+a.Addr()+"/webhook", "application/json", bytes.NewReader(payload("revoked")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("webhook: %d", resp.StatusCode)
	}
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(body, "degraded") {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never said degraded: %q", body)
		}
		time.Sleep(20 * time.Millisecond)
		resp, err := http.Get("http://" + a.Addr() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("/readyz %d %q: degraded is not unready", resp.StatusCode, b)
		}
		body = string(b)
	}
	if !strings.Contains(body, "token_revoked") {
		t.Fatalf("/readyz %q does not name the error", body)
	}
	counts, err := a.Store.OutboxCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if counts["failed"] != 0 || counts["pending"] == 0 {
		t.Fatalf("outbox %v: the message must be kept pending", counts)
	}
}
