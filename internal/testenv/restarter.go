package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Restarter restarts the environment's ClickHouse servers on request, for
// an action's `command` executor: chmedic runs a command (curl) that asks
// it, as an operator's `systemctl restart clickhouse-server` would, and the
// servers stay children of the test process. It listens on loopback only.
//
//	POST /restart/{name}  stop the server (SIGTERM), start it again, answer
//	                      200 once it answers /ping (or 500 with why)
//
// A restart runs to its end even when the client goes away (as systemd's
// does when the ssh session drops), so a chmedic killed mid-command leaves
// a restarted server, which is what its resume must cope with.
type Restarter struct {
	// URL is the base URL, "http://127.0.0.1:port".
	URL string

	env *Env
	srv *http.Server
	wg  sync.WaitGroup

	mu       sync.Mutex
	restarts map[string]int
	holdDown map[string]time.Duration
	busy     map[string]bool
}

// StartRestarter starts a Restarter for e's ClickHouse servers; Close it.
func (e *Env) StartRestarter() (*Restarter, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testenv: restarter: %w", err)
	}
	r := &Restarter{URL: "http://" + l.Addr().String(), env: e, restarts: map[string]int{}, holdDown: map[string]time.Duration{}, busy: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /restart/{name}", r.restart)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(l)
	return r, nil
}

// Command is the argv template of a rolling_restart `command` executor
// that restarts the node named {{.Name}} through r.
func (r *Restarter) Command() []string {
	return []string{"curl", "-fsS", "-X", "POST", "--max-time", "120", r.URL + "/restart/{{.Name}}"}
}

// Restarts returns how many restarts of name were asked for.
func (r *Restarter) Restarts(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restarts[name]
}

// HoldDown makes the next restart of name stop the server, answer at once,
// and start it again only after d: a node that does not come back within a
// gate's timeout.
func (r *Restarter) HoldDown(name string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holdDown[name] = d
}

// Wait waits for the restarts in progress (held-down nodes started again).
func (r *Restarter) Wait() { r.wg.Wait() }

// Close stops serving and waits for the restarts in progress.
func (r *Restarter) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	r.wg.Wait()
	return err
}

func (r *Restarter) server(name string) *ClickHouse {
	for _, c := range r.env.ClickHouse {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func (r *Restarter) restart(w http.ResponseWriter, req *http.Request) {
	name := req.PathValue("name")
	c := r.server(name)
	if c == nil {
		http.Error(w, "no ClickHouse server "+name, http.StatusNotFound)
		return
	}
	r.mu.Lock()
	if r.busy[name] {
		r.mu.Unlock()
		http.Error(w, name+" is already restarting", http.StatusConflict)
		return
	}
	r.busy[name] = true
	r.restarts[name]++
	hold, held := r.holdDown[name]
	delete(r.holdDown, name)
	r.mu.Unlock()
	done := make(chan error, 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() { r.mu.Lock(); r.busy[name] = false; r.mu.Unlock() }()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		r.env.logf("restarter: restarting %s", name)
		if err := c.Stop(ctx); err != nil {
			done <- err
			return
		}
		if held {
			done <- nil // answered while the server stays down
			time.Sleep(hold)
			if err := c.Start(ctx); err != nil {
				r.env.logf("restarter: start %s after holding it down: %v", name, err)
			}
			return
		}
		done <- c.Start(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			http.Error(w, strings.ReplaceAll(err.Error(), "\n", " "), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "restarted %s\n", name)
	case <-req.Context().Done():
		// The client went away; the restart goes on.
	}
}
