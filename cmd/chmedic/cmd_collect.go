package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks"
)

// chmedic collect: the collect_logs action from the command line, for
// operators on the server (no approval, no Slack).
type collectCmd struct {
	clause  *kingpin.CmdClause
	config  *string
	cluster *string
	around  *string
	window  *time.Duration
	out     *string
}

func registerCollect(a *kingpin.Application, configFlag func(*kingpin.CmdClause) *string) *collectCmd {
	c := &collectCmd{clause: a.Command("collect", "Collect the logs of a cluster around a time into a redacted tar.gz bundle (the collect_logs action, without approval).")}
	c.config = configFlag(c.clause)
	c.cluster = c.clause.Flag("cluster", "Cluster name from the config.").Required().String()
	c.around = c.clause.Flag("around", "Centre of the window: RFC 3339 time or now.").Default("now").String()
	c.window = c.clause.Flag("window", "Each side of --around (10m: TIME-10m … TIME+10m); any positive duration.").Default("10m").Duration()
	c.out = c.clause.Flag("out", "Write the bundle to this file (default: the bundles/ directory beside the store).").String()
	return c
}

func (c *collectCmd) run(ctx context.Context, stdout, stderr io.Writer) int {
	cfg, code := load(*c.config, stderr)
	if cfg == nil {
		return code
	}
	cl, ok := cfg.Cluster(*c.cluster)
	if !ok {
		var names []string
		for _, x := range cfg.Clusters {
			names = append(names, x.Name)
		}
		fmt.Fprintf(stderr, "chmedic: unknown cluster %q (configured: %s)\n", *c.cluster, strings.Join(names, ", "))
		return 2
	}
	if *c.window <= 0 {
		fmt.Fprintf(stderr, "chmedic: --window must be a positive duration, got %s\n", *c.window)
		return 2
	}
	now := time.Now()
	at, anchorSource := now, "--around now"
	if *c.around != "now" {
		t, err := time.Parse(time.RFC3339, *c.around)
		if err != nil {
			fmt.Fprintf(stderr, "chmedic: --around %q: want an RFC 3339 time (2026-12-01T08:00:00Z) or now\n", *c.around)
			return 2
		}
		at, anchorSource = t, "--around "+*c.around
	}
	// The window of this run: --window on each side.
	cl.Actions.CollectLogs.WindowBefore, cl.Actions.CollectLogs.WindowAfter = *c.window, *c.window

	dataDir := filepath.Dir(cfg.Store.Path)
	if *c.out != "" {
		tmp, err := os.MkdirTemp("", "chmedic-collect-")
		if err != nil {
			fmt.Fprintf(stderr, "chmedic: %v\n", err)
			return 1
		}
		defer os.RemoveAll(tmp)
		dataDir = tmp
	}
	log := newLogger(cfg, stderr)
	reg, err := actions.NewRegistry(cfg, actions.Deps{DataDir: dataDir, Log: log})
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	act := reg[actions.CollectLogsKind].(*actions.CollectLogs)
	plan, err := act.Plan(ctx, actions.Request{Cluster: cl.Name, AlertStart: at, ReceivedAt: now, RequestedBy: "cli:" + os.Getenv("USER"), AnchorSource: anchorSource})
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	// The run is recorded in a throw-away store: collection from the CLI is
	// read-only and must not wait for (or block) an action the server runs.
	tmpStore, err := os.MkdirTemp("", "chmedic-collect-store-")
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmpStore)
	st, err := store.Open(ctx, filepath.Join(tmpStore, "run.db"))
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	defer st.Close()
	planJSON, _ := json.Marshal(plan)
	id, _, err := st.CreateExecution(ctx, store.ExecutionRecord{Cluster: cl.Name, Kind: plan.Kind, Plan: planJSON, PlanHash: plan.Hash()})
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "%s\n", plan.Summary)
	runner := actions.NewRunner(st, reg, actions.RunnerOptions{Log: log})
	out, err := runner.Run(ctx, actions.Execution{ID: id, Plan: plan}, func(p actions.Progress) {
		if p.State != actions.StepRunning {
			fmt.Fprintf(stderr, "[%d/%d] %s\n", p.Index, p.Total, firstLineOf(p.Output))
		}
	})
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	if out.State != actions.ExecSucceeded || len(out.Artifacts) == 0 {
		fmt.Fprintf(stderr, "chmedic: collection %s: %s\n", out.State, out.Error)
		return 1
	}
	bundle := out.Artifacts[0].Path
	if *c.out != "" {
		if err := moveFile(bundle, *c.out); err != nil {
			fmt.Fprintf(stderr, "chmedic: %v\n", err)
			return 1
		}
		bundle = *c.out
	}
	act.RemoveStaging(plan)
	for _, s := range out.Steps {
		if s.Step.ID == "bundle" {
			fmt.Fprintln(stdout, s.Result.Output)
		}
	}
	fmt.Fprintf(stdout, "bundle: %s\n", bundle)
	return 0
}

func firstLineOf(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// moveFile renames src to dst, copying across file systems.
func moveFile(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// checkActionNeeds is `chmedic check`'s test that every action a playbook
// offers has what it needs on every cluster (each action kind declares
// its needs; actions.CheckNeeds names the missing key).
func checkActionNeeds(cfg *config.Config, set *playbooks.Set) error {
	offered := map[string][]string{}
	for _, pb := range set.All() {
		for _, a := range pb.Actions {
			offered[a.Kind] = append(offered[a.Kind], pb.Name)
		}
	}
	return actions.CheckNeeds(cfg, offered)
}
