package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/chmedic/chmedic/internal/store"
)

func init() { commands = append(commands, registerRequests) }

var requestStates = []string{store.ReqPlanning, store.ReqPending, store.ReqApproved, store.ReqRunning, store.ReqSucceeded, store.ReqFailed,
	store.ReqPartial, store.ReqRolledBack, store.ReqInterrupted, store.ReqStopped, store.ReqAborted, store.ReqRefused, store.ReqRejected, store.ReqExpired, store.ReqStale}

func registerRequests(a *kingpin.Application, configFlag func(*kingpin.CmdClause) *string) (string, func(context.Context, io.Writer, io.Writer) int) {
	c := a.Command("requests", "List action requests, newest first.")
	cfgPath := configFlag(c)
	state := c.Flag("state", "Only requests in this state (or a comma list): "+strings.Join(requestStates, ", ")+".").String()
	return c.FullCommand(), func(ctx context.Context, stdout, stderr io.Writer) int {
		cl, code := openApprovalsCLI(ctx, *cfgPath, stderr)
		if cl == nil {
			return code
		}
		defer cl.close()
		var states []string
		if *state != "" {
			states = strings.Split(*state, ",")
			for _, st := range states {
				if !slices.Contains(requestStates, st) {
					fmt.Fprintf(stderr, "chmedic: --state %q: want one of %s\n", st, strings.Join(requestStates, ", "))
					return 2
				}
			}
		}
		rs, err := cl.st.ApprovalRequests(ctx, states, "", 500)
		if err != nil {
			return failed(stderr, err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tKIND\tCLUSTER\tREQUESTED BY\tCREATED\tEXPIRES\tPLAN HASH\tPARAMS\tREASON")
		for _, r := range rs {
			var ps []string
			for _, k := range sortedKeys(r.Params) {
				ps = append(ps, k+"="+r.Params[k])
			}
			reason, _, _ := strings.Cut(r.Reason, "\n")
			exp := "-"
			if !r.ExpiresAt.IsZero() {
				exp = r.ExpiresAt.UTC().Format(time.RFC3339)
			}
			hash := "-"
			if r.PlanHash != "" {
				hash = r.PlanHash[:min(12, len(r.PlanHash))]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s (%s)\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State, r.Kind, r.Cluster, r.RequestedBy, r.RequestedVia,
				r.CreatedAt.UTC().Format(time.RFC3339), exp, hash, strings.Join(ps, ","), reason)
		}
		tw.Flush()
		return 0
	}
}
