package store

import (
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// waitFor polls the lock's state until cond holds (the waiters are
// goroutines: this only orders the test, it times nothing).
func waitFor(t *testing.T, l *writeLock, cond func() bool) {
	t.Helper()
	for range 10000 {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("the waiters never queued")
}

func TestWriteLockOrder(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first string // who holds the lock at the start: "urgent" or "background"
		age   time.Duration
		want  []string
	}{
		// A burst of webhooks goes before the processing it causes...
		{"urgent before background", "background", 0, []string{"urgent", "background"}},
		{"urgent before a background writer not yet aged", "urgent", defaultMaxDefer - time.Millisecond, []string{"urgent", "background"}},
		// ...but never starves it: once it has waited maxDefer it goes next.
		{"aged background before urgent", "urgent", defaultMaxDefer, []string{"background", "urgent"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Unix(1e9, 0)}
			l := newWriteLock()
			l.now = clk.now
			if tc.first == "urgent" {
				l.lockUrgent()
			} else {
				l.lock()
			}
			order := make(chan string, 2)
			var wg sync.WaitGroup
			wg.Go(func() { l.lock(); order <- "background"; l.unlock() })
			waitFor(t, l, func() bool { return len(l.background) == 1 })
			clk.add(tc.age)
			wg.Go(func() { l.lockUrgent(); order <- "urgent"; l.unlock() })
			waitFor(t, l, func() bool { return l.urgent == 1 })
			l.unlock()
			wg.Wait()
			got := []string{<-order, <-order}
			if got[0] != tc.want[0] || got[1] != tc.want[1] {
				t.Fatalf("order %v, want %v", got, tc.want)
			}
		})
	}
}
