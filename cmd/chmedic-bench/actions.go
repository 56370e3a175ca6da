package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
)

// actionBenches are the action kinds this bench has a scenario for. A kind
// of the catalog (actions.Names) that this build's registry runs but that is
// missing here gets a row saying so; one the registry lacks gets "not
// available in this build"; a kind measured by a Go benchmark instead
// (goBenchmarks) gets a row naming it.
// goBenchmarks measure the kinds that need a fault set or targets of their
// own (a freeze needs application users, a roll restarts the servers the
// other scenarios use): their figures come from these benchmarks.
var goBenchmarks = map[string]string{
	"ddl_freeze":      "go test ./internal/app/ -run '^$' -bench FreezeApprovalToVerified -benchtime 5x",
	"rolling_restart": "go test ./actions/ -run '^$' -bench RollingRestart -benchtime 1x",
}

var actionBenches = map[string]func(*bench, context.Context, *chmedicProc, string){
	"collect_logs": (*bench).benchCollectLogs,
}

// availableActions is the kinds the registry of this build runs for cfg.
func availableActions(cfgPath, dataDir string) (map[string]bool, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	// The freeze kinds register only with a freeze store, as the server's
	// registry does.
	st, err := store.Open(context.Background(), filepath.Join(dataDir, "availability.db"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	reg, err := actions.NewRegistry(cfg, actions.Deps{DataDir: dataDir, Freezes: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for k := range reg {
		out[k] = true
	}
	return out, nil
}

func (b *bench) scenarioActions(ctx context.Context) {
	scen := "Actions"
	p, err := b.h.startChmedic(ctx, "actions", chOptions{StormThreshold: 1000000})
	if err != nil {
		b.fail(scen, err)
		return
	}
	defer p.stop(sigterm)
	avail, err := availableActions(p.cfgPath, b.h.dir)
	if err != nil {
		b.fail(scen, err)
		return
	}
	names := actions.Names()
	sort.Strings(names)
	for _, kind := range names {
		run, haveBench := actionBenches[kind]
		switch {
		case !avail[kind]:
			b.add(Row{Scenario: scen + ": " + kind, Figure: "(lead: fill at merge)", Value: nanValue, Text: "not available in this build"})
		case !haveBench && goBenchmarks[kind] != "":
			b.add(Row{Scenario: scen + ": " + kind, Figure: "measured by its Go benchmark, on the same real servers", Value: nanValue, Text: "`" + goBenchmarks[kind] + "`"})
		case !haveBench:
			b.add(Row{Scenario: scen + ": " + kind, Figure: "no bench scenario", Value: nanValue, Text: "available in this build, not measured here"})
		default:
			run(b, ctx, p, scen+": "+kind)
		}
	}
}

// benchCollectLogs requests collect_logs from the CLI and times
// `chmedic approve --wait` against the running server: from the approval
// to the execution's end (the bundle written and uploaded to Slack).
func (b *bench) benchCollectLogs(ctx context.Context, p *chmedicProc, scen string) {
	out, err := p.cli(ctx, "request", "--config", p.cfgPath, "--cluster", "bench", "--action", "collect_logs", "--param", "window=2m", "--as", requester, "--format", "json")
	if err != nil {
		b.fail(scen, err)
		return
	}
	var r struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.ID == "" {
		b.fail(scen, fmt.Errorf("request output %q: %v", out, err))
		return
	}
	t0 := time.Now()
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err = p.cli(actx, "approve", "--config", p.cfgPath, r.ID, "--as", approver, "--wait")
	d := time.Since(t0)
	if err != nil {
		b.fail(scen, err)
		return
	}
	outcome := "unknown"
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "request "+r.ID+": ") {
			outcome = strings.TrimPrefix(line, "request "+r.ID+": ")
			break
		}
	}
	by := "the server"
	if strings.Contains(out, "executing in this process") {
		by = "the CLI (the server did not pick it up)"
	}
	b.add(Row{Scenario: scen, Figure: "approval (chmedic approve --wait) → execution's end, run by " + by + ", outcome " + firstWord(outcome), Value: d.Seconds(), Unit: "s"})
	if ms, err := p.storeInt(`SELECT max(finished_at) - min(started_at) FROM action_executions WHERE request_id = ?`, r.ID); err == nil {
		b.add(Row{Scenario: scen, Figure: "the execution itself (store: started → finished; the rest is the server picking the approval up)", Value: float64(ms) / 1000, Unit: "s"})
	}
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return strings.TrimRight(f[0], ",.:")
	}
	return s
}
