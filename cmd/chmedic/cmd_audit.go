package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/chmedic/chmedic/internal/store"
)

func init() { commands = append(commands, registerAudit) }

func registerAudit(a *kingpin.Application, configFlag func(*kingpin.CmdClause) *string) (string, func(context.Context, io.Writer, io.Writer) int) {
	c := a.Command("audit", "Print the audit log: who did what, when, on which cluster and nodes, the plan hash and the outcome, and every refused attempt.")
	cfgPath := configFlag(c)
	since := c.Flag("since", "How far back.").Default("24h").Duration()
	format := c.Flag("format", "Output format.").Default("text").Enum("text", "json")
	return c.FullCommand(), func(ctx context.Context, stdout, stderr io.Writer) int {
		cl, code := openApprovalsCLI(ctx, *cfgPath, stderr)
		if cl == nil {
			return code
		}
		defer cl.close()
		es, err := cl.st.Audit(ctx, time.Now().Add(-*since), "")
		if err != nil {
			return failed(stderr, err)
		}
		if *format == "json" {
			if es == nil {
				es = []store.AuditEntry{}
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(es)
			return 0
		}
		for _, e := range es {
			fmt.Fprintln(stdout, auditLine(e))
		}
		return 0
	}
}

func auditLine(e store.AuditEntry) string {
	parts := []string{e.At.UTC().Format(time.RFC3339), e.Event, "actor=" + e.Actor}
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("via", e.Via)
	add("request", e.RequestID)
	add("kind", e.Kind)
	add("cluster", e.Cluster)
	add("nodes", strings.Join(e.Nodes, ","))
	add("plan", e.PlanHash)
	add("outcome", fmt.Sprintf("%q", e.Outcome))
	if e.Outcome == "" {
		parts = parts[:len(parts)-1]
	}
	add("detail", fmt.Sprintf("%q", strings.ReplaceAll(e.Detail, "\n", "; ")))
	if e.Detail == "" {
		parts = parts[:len(parts)-1]
	}
	return strings.Join(parts, " ")
}
