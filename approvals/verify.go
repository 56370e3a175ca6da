// Package approvals owns who may approve what and how a Slack click becomes
// an approval: the verification of Slack's signed requests (this file) and,
// as the approval work lands, the policy, the request store and the click
// handler. A button carries only an opaque request id; what runs is the plan
// stored on the server.
package approvals

import (
	"context"
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
// captured click cannot be replayed within the window. The signature is the
// one slack-go's SecretsVerifier computes (the tests check both agree).
//
// By default the accepted signatures are remembered in memory; with
// WithReplayStore they are remembered in the store, so a restart does not
// reopen the window.
type Verifier struct {
	secret []byte
	window time.Duration
	now    func() time.Time
	replay ReplayStore

	mu   sync.Mutex
	seen map[string]time.Time // signature → expiry
}

// NewVerifier builds a verifier for a signing secret (window 5 minutes, as
// Slack recommends).
func NewVerifier(signingSecret string) *Verifier {
	return &Verifier{secret: []byte(signingSecret), window: 5 * time.Minute, now: time.Now, seen: map[string]time.Time{}}
}

// ReplayStore remembers accepted request signatures durably
// (*store.Store implements it). MarkSlackRequestSeen reports false for a key
// already recorded and not yet expired.
type ReplayStore interface {
	MarkSlackRequestSeen(ctx context.Context, key string, now, expiresAt time.Time) (bool, error)
}

// WithReplayStore makes v remember accepted signatures in rs instead of in
// memory, and returns v.
func (v *Verifier) WithReplayStore(rs ReplayStore) *Verifier {
	v.replay = rs
	return v
}

// WithClock sets the clock the window is checked against (tests), and
// returns v.
func (v *Verifier) WithClock(now func() time.Time) *Verifier {
	v.now = now
	return v
}

// Verify checks one request's headers and body.
func (v *Verifier) Verify(h http.Header, body []byte) error {
	return v.VerifyContext(context.Background(), h, body)
}

// VerifyContext checks one request's headers and body: the headers, the
// window, the signature, then — only for a correctly signed request — the
// replay record. An error of the replay store is returned as is (neither
// ErrReplay nor accepted: the caller answers 5xx and Slack's user sees a
// failure, not a silent acceptance).
func (v *Verifier) VerifyContext(ctx context.Context, h http.Header, body []byte) error {
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
	expires := time.Unix(ts, 0).Add(v.window)
	if v.replay != nil {
		fresh, err := v.replay.MarkSlackRequestSeen(ctx, sig, now, expires)
		if err != nil {
			return fmt.Errorf("replay record: %w", err)
		}
		if !fresh {
			return ErrReplay
		}
		return nil
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
	v.seen[sig] = expires
	return nil
}
