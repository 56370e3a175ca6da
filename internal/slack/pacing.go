package slack

import "time"

// bucket is a token bucket pacing the posts to one channel: it holds up
// to burst tokens, refilled at one per interval; a post takes one.
type bucket struct {
	tokens float64
	at     time.Time
}

// refill brings the bucket to now.
func (b *bucket) refill(now time.Time, burst int, interval time.Duration) {
	if b.at.IsZero() {
		b.tokens, b.at = float64(burst), now
		return
	}
	if now.After(b.at) {
		b.tokens = min(float64(burst), b.tokens+float64(now.Sub(b.at))/float64(interval))
		b.at = now
	}
}

// wait is how long until a token is available.
func (b *bucket) wait(now time.Time, burst int, interval time.Duration) time.Duration {
	b.refill(now, burst, interval)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(interval))
}

// take uses a token (the bucket may go below zero when a post is made
// without waiting, e.g. a retry; later posts then wait longer).
func (b *bucket) take(now time.Time, burst int, interval time.Duration) {
	b.refill(now, burst, interval)
	b.tokens--
}
