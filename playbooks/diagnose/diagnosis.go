// Package diagnose owns a diagnosis round: it runs the probes against every
// node of one cluster under a strict load bound (a per-probe timeout, an
// overall budget, one round in flight per cluster shared by every caller, a
// short result cache, expensive probes skipped when the coordination service
// is already degraded), then turns the results into findings and a ranked
// likely cause.
package diagnose

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// Diagnosis is the outcome of one round on one cluster.
type Diagnosis struct {
	Cluster  string         `json:"cluster"`
	Started  time.Time      `json:"started"`
	Duration time.Duration  `json:"duration_ns"`
	Results  []probe.Result `json:"results"`
	Findings []Finding      `json:"findings"`
	Causes   []Cause        `json:"causes"`
	// Verdict is the one-line answer: what is going on.
	Verdict string `json:"verdict"`
	// Status is the worst finding's status.
	Status probe.Status `json:"status"`
	// NotAvailable lists the checks this cluster's server version or setup
	// cannot answer ("clickhouse.ddl_queue on ch-1: system.distributed_ddl_queue");
	// they are not findings.
	NotAvailable []string `json:"not_available,omitempty"`
	// Skipped lists, per node and reason, the checks that did not run
	// (e.g. the other four-letter words after a node did not answer ruok),
	// apart from those SkippedExpensive explains; they are not findings.
	Skipped []string `json:"skipped,omitempty"`
	// UnavailableShards lists the shards none of whose replicas is up and
	// writable (each also a "cluster.shards" finding); a rolling action
	// must not take down another replica of these.
	UnavailableShards []int `json:"unavailable_shards,omitempty"`
	// SkippedExpensive explains why the probes that read the coordination
	// service were not run, when they were not.
	SkippedExpensive string `json:"skipped_expensive,omitempty"`
	// Shared is true when this caller reused a round started by another
	// caller or a cached one (it is not stored; set per call).
	Shared bool `json:"-"`
}

// Finding is one thing worth telling the engineer, worst first.
type Finding struct {
	Status probe.Status `json:"status"`
	Probe  string       `json:"probe"`
	Node   string       `json:"node,omitempty"`
	// Shard and Replica place a ClickHouse node's finding in the
	// cluster's layout (0 / "" when unknown or not a ClickHouse node).
	Shard    int           `json:"shard,omitempty"`
	Replica  string        `json:"replica,omitempty"`
	Summary  string        `json:"summary"`
	Evidence []probe.Table `json:"evidence,omitempty"`
}

// Likelihood grades a cause.
type Likelihood string

// Likelihoods.
const (
	Likely   Likelihood = "likely"
	Possible Likelihood = "possible"
	Unlikely Likelihood = "unlikely"
)

// Cause is a candidate explanation with the evidence for and against it.
type Cause struct {
	Name       string     `json:"name"`
	Title      string     `json:"title"`
	Score      float64    `json:"score"`
	Likelihood Likelihood `json:"likelihood"`
	For        []string   `json:"for,omitempty"`
	Against    []string   `json:"against,omitempty"`
}

// Top returns the most likely cause, or false when none is at least possible.
func (d *Diagnosis) Top() (Cause, bool) {
	if len(d.Causes) == 0 || d.Causes[0].Likelihood == Unlikely {
		return Cause{}, false
	}
	return d.Causes[0], true
}

// ResultsFor returns the results of one probe, in node order.
func (d *Diagnosis) ResultsFor(name string) []probe.Result {
	var out []probe.Result
	for _, r := range d.Results {
		if r.Probe == name {
			out = append(out, r)
		}
	}
	return out
}

// findings lists every non-ok result, worst first, then by probe and node.
func findings(results []probe.Result, layout map[string]place) []Finding {
	var fs []Finding
	for _, r := range results {
		if r.Status == probe.OK || r.Skipped != "" || r.IsUnavailable() {
			continue
		}
		f := Finding{Status: r.Status, Probe: r.Probe, Node: r.Node, Summary: r.Summary, Evidence: r.Evidence}
		if p, ok := layout[r.Node]; ok && p.Shard > 0 && strings.HasPrefix(r.Probe, "clickhouse.") {
			f.Shard, f.Replica = p.Shard, p.Replica
		}
		fs = append(fs, f)
	}
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Status != fs[j].Status {
			return fs[i].Status > fs[j].Status
		}
		if fs[i].Probe != fs[j].Probe {
			return fs[i].Probe < fs[j].Probe
		}
		return fs[i].Node < fs[j].Node
	})
	return fs
}

// notAvailable lists the checks the servers cannot answer, one line each,
// collapsing nodes that share the reason. Four-letter words a whitelist
// refused make one line per kind and word set, with how to allow them.
func notAvailable(results []probe.Result) []string {
	type key struct{ probe, what string }
	nodes := map[key][]string{}
	var order []key
	refused := map[string][]string{} // node → words
	requested := map[string]string{}
	kinds := map[string]string{}
	var refusedNodes []string
	for _, r := range results {
		if w := r.Attrs[probe.AttrRefusedWord]; w != "" {
			if _, ok := refused[r.Node]; !ok {
				refusedNodes = append(refusedNodes, r.Node)
			}
			refused[r.Node] = append(refused[r.Node], w)
			requested[r.Node] = r.Attrs[probe.AttrRequestedWords]
			kinds[r.Node] = r.Attrs[probe.AttrKeeperKind]
			continue
		}
		if !r.IsUnavailable() {
			continue
		}
		k := key{r.Probe, r.Summary}
		if _, ok := nodes[k]; !ok {
			order = append(order, k)
		}
		nodes[k] = append(nodes[k], r.Node)
	}
	var out []string
	for _, k := range order {
		out = append(out, fmt.Sprintf("%s (%s): %s", k.probe, strings.Join(nodes[k], ", "), k.what))
	}
	type group struct{ kind, words, requested string }
	gnodes := map[group][]string{}
	var gorder []group
	for _, n := range refusedNodes {
		req := strings.Split(requested[n], ",")
		words := refused[n]
		sort.SliceStable(words, func(i, j int) bool { return slices.Index(req, words[i]) < slices.Index(req, words[j]) })
		g := group{kinds[n], strings.Join(words, ", "), requested[n]}
		if _, ok := gnodes[g]; !ok {
			gorder = append(gorder, g)
		}
		gnodes[g] = append(gnodes[g], n)
	}
	for _, g := range gorder {
		kind := keeper.ParseFlavor(g.kind)
		name := "ZooKeeper"
		if kind == keeper.FlavorClickHouseKeeper {
			name = "ClickHouse Keeper"
		}
		out = append(out, fmt.Sprintf("four-letter words %s refused by %s's whitelist on %s: %s",
			g.words, name, strings.Join(gnodes[g], ", "), probe.WhitelistAdvice(kind, strings.Split(g.requested, ","))))
	}
	return out
}

// skipped lists the checks that did not run, one line per node and reason,
// leaving out those skipped for the reason already given (expensive).
func skipped(results []probe.Result, expensive string) []string {
	type key struct{ node, why string }
	probes := map[key][]string{}
	var order []key
	for _, r := range results {
		if r.Skipped == "" || r.Skipped == expensive {
			continue
		}
		k := key{r.Node, strings.TrimPrefix(r.Skipped, "skipped: ")}
		if _, ok := probes[k]; !ok {
			order = append(order, k)
		}
		probes[k] = append(probes[k], r.Probe)
	}
	var out []string
	for _, k := range order {
		where := ""
		if k.node != "" {
			where = k.node + ": "
		}
		out = append(out, fmt.Sprintf("%s%s (%s)", where, strings.Join(probes[k], ", "), k.why))
	}
	return out
}
