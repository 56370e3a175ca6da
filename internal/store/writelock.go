package store

import (
	"sync"
	"time"
)

// writeLock queues this process's write transactions (SQLite has one
// writer) with two classes: urgent writers — the webhook's acceptance,
// whose callers hold an HTTP request open until their notification is on
// disk — go before background writers (notification processing, the
// outbox, approvals), which can wait a moment without anyone waiting on
// them. A background writer that has waited longer than maxDefer is not
// passed again, so a sustained flood of webhooks delays processing by at
// most about one urgent transaction per maxDefer instead of starving it.
//
// Without the classes a burst of webhooks waits behind processing
// transactions (each one synced to disk) that the burst itself caused, and
// acceptance latency grows with the processing backlog.
type writeLock struct {
	mu   sync.Mutex
	cond *sync.Cond
	held bool
	// urgent counts urgent writers waiting; background holds when each
	// waiting background writer started to wait.
	urgent     int
	background map[*int]time.Time
	maxDefer   time.Duration
	now        func() time.Time
}

// defaultMaxDefer is how long a background writer yields to urgent ones:
// a few group commits (each one sync, ~1–10 ms on the disks chmedic runs on).
const defaultMaxDefer = 25 * time.Millisecond

func newWriteLock() *writeLock {
	l := &writeLock{maxDefer: defaultMaxDefer, now: time.Now, background: map[*int]time.Time{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// agedWaiting reports whether a background writer has waited maxDefer.
func (l *writeLock) agedWaiting(now time.Time) bool {
	for _, since := range l.background {
		if now.Sub(since) >= l.maxDefer {
			return true
		}
	}
	return false
}

// lockUrgent takes the lock ahead of background writers that have not yet
// waited maxDefer.
func (l *writeLock) lockUrgent() {
	l.mu.Lock()
	l.urgent++
	for l.held || l.agedWaiting(l.now()) {
		if !l.held {
			// Free, but an aged background writer goes first: wake it, it
			// may have looked at the clock just before it aged.
			l.cond.Broadcast()
		}
		l.cond.Wait()
	}
	l.urgent--
	l.held = true
	l.mu.Unlock()
}

// lock takes the lock as a background writer: after the urgent writers
// waiting, unless this one has waited maxDefer.
func (l *writeLock) lock() {
	l.mu.Lock()
	id := new(int)
	since := l.now()
	l.background[id] = since
	for l.held || (l.urgent > 0 && l.now().Sub(since) < l.maxDefer) {
		// Each unlock wakes this writer, and urgent writers waiting mean a
		// holder is coming, so the age is looked at again.
		l.cond.Wait()
	}
	delete(l.background, id)
	l.held = true
	l.mu.Unlock()
}

func (l *writeLock) unlock() {
	l.mu.Lock()
	l.held = false
	l.cond.Broadcast()
	l.mu.Unlock()
}
