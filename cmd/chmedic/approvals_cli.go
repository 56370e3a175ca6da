package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/app"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
)

// approvalsCLI is what the request, approve, reject, requests and audit
// commands share: the config, the store and the approval flow.
type approvalsCLI struct {
	cfg   *config.Config
	st    *store.Store
	svc   *approvals.Service
	close func()
}

func openApprovalsCLI(ctx context.Context, path string, stderr io.Writer) (*approvalsCLI, int) {
	cfg, code := load(path, stderr)
	if cfg == nil {
		return nil, code
	}
	st, err := store.Open(ctx, cfg.Store.Path)
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return nil, 1
	}
	svc, closeRT, err := app.OpenApprovals(ctx, cfg, st, newLogger(cfg, stderr), app.ApprovalsOptions{Name: app.ProcessName("cli")})
	if err != nil {
		st.Close()
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return nil, 1
	}
	return &approvalsCLI{cfg: cfg, st: st, svc: svc, close: func() { closeRT(); st.Close() }}, 0
}

// serverAlive reports a running chmedic server (its approval worker's
// heartbeat is fresh): it executes approved requests within seconds.
func (c *approvalsCLI) serverAlive(ctx context.Context) (string, bool) {
	ws, err := c.st.LiveWorkers(ctx, time.Now().Add(-10*time.Second))
	if err != nil {
		return "", false
	}
	for _, w := range ws {
		if strings.HasPrefix(w, "server ") {
			return w, true
		}
	}
	return "", false
}

// settle takes an approved request to its end: the running server executes
// it, or — when no server runs, or none picked it up in time — this process
// does. With wait it returns once the request is final.
func (c *approvalsCLI) settle(ctx context.Context, id string, wait bool, stdout io.Writer) (store.ApprovalRequest, error) {
	pickup := time.Now().Add(15 * time.Second)
	announced, local := false, false
	for {
		r, err := c.st.ApprovalRequest(ctx, id)
		if err != nil {
			return r, err
		}
		if r.Terminal() || r.State == store.ReqInterrupted || r.State == store.ReqStopped {
			return r, nil
		}
		if r.State == store.ReqApproved {
			server, alive := c.serverAlive(ctx)
			if !alive || time.Now().After(pickup) {
				switch {
				case local:
				case alive:
					fmt.Fprintf(stdout, "the server (%s) has not started it; executing in this process\n", server)
				default:
					fmt.Fprintln(stdout, "no chmedic server is running: executing in this process")
				}
				out, err := c.svc.Execute(ctx, id)
				if err != nil || out.State != store.ReqApproved || !wait {
					return out, err
				}
				// The cluster is busy with another action: with --wait,
				// try again until it is free.
				if !local {
					fmt.Fprintf(stdout, "  %s\n", out.Reason)
				}
				local = true
			}
			if !announced {
				fmt.Fprintf(stdout, "the running server (%s) executes it within a few seconds\n", server)
				announced = true
			}
			if !wait {
				return r, nil
			}
		} else if !wait {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// printOutcome prints a request's final state and, if it ran, its steps.
func (c *approvalsCLI) printOutcome(ctx context.Context, r store.ApprovalRequest, stdout io.Writer) int {
	reason, changes, _ := strings.Cut(r.Reason, "\n")
	fmt.Fprintf(stdout, "request %s: %s\n", r.ID, r.State)
	if reason != "" {
		fmt.Fprintf(stdout, "  %s\n", reason)
	}
	for _, ch := range strings.Split(changes, "\n") {
		if ch != "" {
			fmt.Fprintf(stdout, "  changed: %s\n", ch)
		}
	}
	if e, err := c.st.ApprovalExecutionOf(ctx, r.ID); err == nil && len(e.Outcome) > 0 {
		var o actions.Outcome
		if json.Unmarshal(e.Outcome, &o) == nil {
			for _, s := range o.Steps {
				line := fmt.Sprintf("  %s %s: %s", s.Step.ID, s.Step.Node, s.State)
				if s.Result.Output != "" {
					line += ": " + s.Result.Output
				}
				if s.Error != "" {
					line += ": " + s.Error
				}
				fmt.Fprintln(stdout, line)
			}
			for _, a := range o.Artifacts {
				fmt.Fprintf(stdout, "  artifact %s (%d bytes): %s\n", a.Name, a.Bytes, a.Path)
			}
		}
	}
	switch r.State {
	case store.ReqSucceeded:
		return 0
	case store.ReqPending, store.ReqApproved, store.ReqRunning:
		return 0
	}
	return 1
}

func failed(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "chmedic: %v\n", err)
	return 1
}
