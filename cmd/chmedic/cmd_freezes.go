package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/chmedic/chmedic/internal/store"
)

func init() { commands = append(commands, registerFreezes) }

// freezeJSON is one freeze as `chmedic freezes --format json` prints it.
type freezeJSON struct {
	ID        string           `json:"id"`
	Cluster   string           `json:"cluster"`
	State     string           `json:"state"`
	Method    string           `json:"method"`
	Targets   []string         `json:"targets"`
	StartedAt time.Time        `json:"started_at"`
	ExpiresAt time.Time        `json:"expires_at"`
	EndedAt   *time.Time       `json:"ended_at,omitempty"`
	EndedBy   string           `json:"ended_by,omitempty"`
	LastError string           `json:"last_error,omitempty"`
	Nodes     []freezeNodeJSON `json:"nodes"`
}

type freezeNodeJSON struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

func registerFreezes(a *kingpin.Application, configFlag func(*kingpin.CmdClause) *string) (string, func(context.Context, io.Writer, io.Writer) int) {
	c := a.Command("freezes", "List the active DDL freezes and those of the last days (ddl_freeze).")
	cfgPath := configFlag(c)
	format := c.Flag("format", "Output format: text or json.").Default("text").Enum("text", "json")
	since := c.Flag("since", "Also list freezes that ended within this.").Default("168h").Duration()
	return c.FullCommand(), func(ctx context.Context, stdout, stderr io.Writer) int {
		cfg, code := load(*cfgPath, stderr)
		if cfg == nil {
			return code
		}
		st, err := store.Open(ctx, cfg.Store.Path)
		if err != nil {
			return failed(stderr, err)
		}
		defer st.Close()
		fs, err := st.Freezes(ctx, time.Now().Add(-*since), 500)
		if err != nil {
			return failed(stderr, err)
		}
		out := make([]freezeJSON, 0, len(fs))
		for _, f := range fs {
			j := freezeJSON{ID: f.ID, Cluster: f.Cluster, State: f.State, Method: f.Method, Targets: f.Targets, StartedAt: f.StartedAt.UTC(),
				ExpiresAt: f.ExpiresAt.UTC(), EndedBy: f.EndedBy, LastError: f.LastError, Nodes: []freezeNodeJSON{}}
			if j.Targets == nil {
				j.Targets = []string{}
			}
			if !f.EndedAt.IsZero() {
				e := f.EndedAt.UTC()
				j.EndedAt = &e
			}
			if j.State == store.FreezeApplying {
				// Not verified yet (or chmedic stopped while applying):
				// frozen on some nodes at most.
				j.State = store.FreezePartial
			}
			for _, n := range f.Nodes {
				j.Nodes = append(j.Nodes, freezeNodeJSON{Name: n.Name, State: n.State, Error: n.Error})
			}
			out = append(out, j)
		}
		if *format == "json" {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(out); err != nil {
				return failed(stderr, err)
			}
			return 0
		}
		if len(out) == 0 {
			fmt.Fprintln(stdout, "no DDL freezes")
			return 0
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLUSTER\tSTATE\tMETHOD\tTARGETS\tSTARTED\tEXPIRES\tNODES\tID")
		for _, f := range out {
			var ns []string
			for _, n := range f.Nodes {
				ns = append(ns, n.Name+"="+n.State)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Cluster, f.State, f.Method, strings.Join(f.Targets, ","),
				f.StartedAt.Format(time.RFC3339), f.ExpiresAt.Format(time.RFC3339), strings.Join(ns, " "), f.ID)
		}
		tw.Flush()
		for _, f := range out {
			for _, n := range f.Nodes {
				if n.Error != "" {
					fmt.Fprintf(stdout, "%s %s: %s\n", f.Cluster, n.Name, n.Error)
				}
			}
			if f.LastError != "" {
				fmt.Fprintf(stdout, "%s: %s\n", f.Cluster, f.LastError)
			}
		}
		return 0
	}
}
