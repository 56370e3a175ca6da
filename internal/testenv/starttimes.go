package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Start times: what the rolling-restart tests watch to see which server
// restarted when, and that the two replicas were never down together.

var (
	// A new connection for every sample: a kept-alive one is served by a
	// server that is shutting down for as long as it is used.
	quickClient   = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 150 * time.Millisecond}
	patientClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
)

// StartTime reads a server's start time (Unix seconds) over HTTP as the
// admin user, on a new connection with a 150 ms timeout.
func (e *Env) StartTime(ctx context.Context, c *ClickHouse) (int64, error) {
	return e.startTime(ctx, quickClient, c)
}

func (e *Env) startTime(ctx context.Context, client *http.Client, c *ClickHouse) (int64, error) {
	q := url.Values{"user": {e.AdminUser}, "password": {e.AdminPassword}, "query": {"SELECT toUInt64(now()) - uptime()"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTPURL()+"/?"+q.Encode(), nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// StartTimes samples every ClickHouse server: the start times of those
// that answered, and the servers known to be down. A server that does not
// answer within the short timeout is asked again with 2 s (a loaded
// machine is slow, a live server answers within seconds; one shutting down
// may accept and never answer); down is refused, reset, or no answer to
// either.
func (e *Env) StartTimes(ctx context.Context) (start map[string]int64, down map[string]bool) {
	start, down = map[string]int64{}, map[string]bool{}
	for _, c := range e.ClickHouse {
		v, err := e.StartTime(ctx, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			v, err = e.startTime(ctx, patientClient, c)
		}
		if err == nil {
			start[c.Name] = v
		} else {
			down[c.Name] = true
		}
	}
	return start, down
}

// StartSample is one round of StartTimes.
type StartSample struct {
	At    time.Time
	Start map[string]int64 // the servers that answered
	Down  map[string]bool  // the servers known to be down
}

// StartWatch samples the start times in the background.
type StartWatch struct {
	mu      sync.Mutex
	samples []StartSample
	stop    chan struct{}
	done    chan struct{}
}

// WatchStartTimes samples StartTimes every interval until Stop.
func (e *Env) WatchStartTimes(every time.Duration) *StartWatch {
	w := &StartWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s := StartSample{At: time.Now()}
			s.Start, s.Down = e.StartTimes(context.Background())
			w.mu.Lock()
			w.samples = append(w.samples, s)
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Stop ends the sampling and returns the samples.
func (w *StartWatch) Stop() []StartSample {
	close(w.stop)
	<-w.done
	return w.samples
}
