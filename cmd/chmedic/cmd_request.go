package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/store"
)

func init() { commands = append(commands, registerRequest) }

func registerRequest(a *kingpin.Application, configFlag func(*kingpin.CmdClause) *string) (string, func(context.Context, io.Writer, io.Writer) int) {
	c := a.Command("request", "Compute an action's plan (read-only) and store it as a request awaiting approval; print its id, plan and hash.")
	cfgPath := configFlag(c)
	cluster := c.Flag("cluster", "Cluster name from the config.").Required().String()
	kind := c.Flag("action", "Action kind ("+strings.Join(actions.Names(), ", ")+").").Required().String()
	params := c.Flag("param", "Action parameter as k=v (repeatable).").Strings()
	as := c.Flag("as", "Your Slack user id: approvals.policies.<kind>.requesters must name you.").Required().String()
	format := c.Flag("format", "Output format.").Default("text").Enum("text", "json")
	return c.FullCommand(), func(ctx context.Context, stdout, stderr io.Writer) int {
		return runRequest(ctx, *cfgPath, *cluster, *kind, *params, *as, *format, stdout, stderr)
	}
}

func runRequest(ctx context.Context, path, cluster, kind string, rawParams []string, as, format string, stdout, stderr io.Writer) int {
	params := map[string]string{}
	for _, p := range rawParams {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			fmt.Fprintf(stderr, "chmedic: --param %q: want k=v\n", p)
			return 2
		}
		params[k] = v
	}
	if err := actions.Validate(kind, params); err != nil {
		return failed(stderr, err)
	}
	c, code := openApprovalsCLI(ctx, path, stderr)
	if c == nil {
		return code
	}
	defer c.close()
	if _, ok := c.cfg.Cluster(cluster); !ok {
		var names []string
		for _, cl := range c.cfg.Clusters {
			names = append(names, cl.Name)
		}
		fmt.Fprintf(stderr, "chmedic: unknown cluster %q (configured: %s)\n", cluster, strings.Join(names, ", "))
		return 1
	}
	r, plan, err := c.svc.Request(ctx, approvals.RequestInput{Kind: kind, Cluster: cluster, Params: actions.WithDefaults(kind, params), User: as, Via: "cli"})
	if err != nil {
		if r.ID != "" {
			fmt.Fprintf(stderr, "chmedic: request %s refused: %v\n", r.ID, err)
		} else {
			fmt.Fprintf(stderr, "chmedic: request refused: %v\n", err)
		}
		return 1
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(requestJSON(r, plan))
		return 0
	}
	fmt.Fprintf(stdout, "request %s: %s\n", r.ID, r.State)
	fmt.Fprintf(stdout, "kind: %s  cluster: %s  requested by: %s (cli)\n", r.Kind, r.Cluster, r.RequestedBy)
	fmt.Fprintf(stdout, "plan hash: %s\n", r.PlanHash)
	fmt.Fprintf(stdout, "expires: %s\n", r.ExpiresAt.UTC().Format(time.RFC3339))
	approvals.WritePlan(stdout, *plan)
	fmt.Fprintf(stdout, "approve with: chmedic approve --config %s %s --as USER\n", path, r.ID)
	return 0
}

type requestOut struct {
	ID          string            `json:"id"`
	State       string            `json:"state"`
	Kind        string            `json:"kind"`
	Cluster     string            `json:"cluster"`
	Params      map[string]string `json:"params"`
	RequestedBy string            `json:"requested_by"`
	Via         string            `json:"via"`
	CreatedAt   time.Time         `json:"created_at"`
	ExpiresAt   time.Time         `json:"expires_at,omitzero"`
	PlanHash    string            `json:"plan_hash,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	Plan        *actions.Plan     `json:"plan,omitempty"`
}

func requestJSON(r store.ApprovalRequest, plan *actions.Plan) requestOut {
	if plan == nil && len(r.Plan) > 0 {
		var p actions.Plan
		if json.Unmarshal(r.Plan, &p) == nil {
			plan = &p
		}
	}
	return requestOut{ID: r.ID, State: r.State, Kind: r.Kind, Cluster: r.Cluster, Params: r.Params, RequestedBy: r.RequestedBy, Via: r.RequestedVia,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, PlanHash: r.PlanHash, Reason: r.Reason, Plan: plan}
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
