// Package approvals owns who may approve what and how a Slack click becomes
// an approval: the verification of Slack's signed requests (this file) and,
// as the approval work lands, the policy, the request store and the click
// handler. A button carries only an opaque request id; what runs is the plan
// stored on the server.
package approvals

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Errors a verification can return.
var (
	ErrMissingHeaders = errors.New("missing X-Slack-Request-Timestamp or X-Slack-Signature")
	ErrStale          = errors.New("request timestamp outside the allowed window")
	ErrBadSignature   = errors.New("signature does not match")
	ErrReplay         = errors.New("request already seen (replay)")
)

// Verifier checks Slack's request signatures: v0=HMAC-SHA256(secret,
// "v0:"+timestamp+":"+body), a timestamp within Window of now, and — what
// Slack's own helper does not do — each signature accepted once, so a
// captured click cannot be replayed within the window.
type Verifier struct {
	secret []byte
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]time.Time // signature → expiry
}

// NewVerifier builds a verifier for a signing secret (window 5 minutes, as
// Slack recommends).
func NewVerifier(signingSecret string) *Verifier {
	return &Verifier{secret: []byte(signingSecret), window: 5 * time.Minute, now: time.Now, seen: map[string]time.Time{}}
}

// Verify checks one request's headers and body.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	tsText, sig := h.Get("X-Slack-Request-Timestamp"), h.Get("X-Slack-Signature")
	if tsText == "" || sig == "" {
		return ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q", ErrStale, tsText)
	}
	now := v.now()
	if d := now.Sub(time.Unix(ts, 0)); d > v.window || d < -v.window {
		return fmt.Errorf("%w: %s old", ErrStale, d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, v.secret)
	fmt.Fprintf(mac, "v0:%s:", tsText)
	mac.Write(body)
	want := "v0=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return ErrBadSignature
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for s, exp := range v.seen {
		if now.After(exp) {
			delete(v.seen, s)
		}
	}
	if _, dup := v.seen[sig]; dup {
		return ErrReplay
	}
	v.seen[sig] = time.Unix(ts, 0).Add(v.window)
	return nil
}
