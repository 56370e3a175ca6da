package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/ddlfreeze"
	"github.com/chmedic/chmedic/playbooks/diagnose"
)

// RollingRestartKind is the catalog name of the staged rolling restart.
const RollingRestartKind = "rolling_restart"

// The rolling restart restarts a cluster's ClickHouse nodes one at a time,
// never two replicas of a shard at once, each checked before the next
// (runbook 001, "Break the thundering herd": a restart during a
// reconnection storm makes it worse). Its steps:
//
//	preflight      the coordination service healthy (latency, quorum, no
//	               recent reconnection herd) and every shard with a healthy
//	               replica, checked again at execution time
//	<node>/before  every other replica of the node's shard up, writable,
//	               delay and queue below the thresholds
//	<node>/restart the node's start time recorded (the checkpoint), the
//	               silence created, merges stopped and drained (optional),
//	               the restart issued — once: an attempt after a crash that
//	               finds the start time newer does not restart it again
//	<node>/after   the server answers with a new start time, its replicated
//	               tables attached and not read-only, delay and queue below
//	               the thresholds; the silence expired
//
// A failed gate or timeout stops the roll there: the later nodes are not
// touched, and the outcome names the node, the gate and the figures.

// RollingRestart is the rolling_restart action.
type RollingRestart struct {
	cfg  *config.Config
	deps Deps
}

// NewRollingRestart returns the action over cfg.
func NewRollingRestart(cfg *config.Config, deps Deps) *RollingRestart {
	deps.fill()
	return &RollingRestart{cfg: cfg, deps: deps}
}

// Kind implements Action.
func (a *RollingRestart) Kind() string { return RollingRestartKind }

func rollingRestartNeeds(cl *config.Cluster) []Need {
	if cl.Actions.ClickHouse.User == "" {
		return []Need{{Key: "clickhouse.user", Why: "the user rolling_restart checks the replicas as (and sends SYSTEM statements as)"}}
	}
	return nil
}

// RestartNode is one node of the roll, in order.
type RestartNode struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Shard   int    `json:"shard"`
	Replica string `json:"replica"`
	// Discovered is set for a node found in system.clusters.
	Discovered bool `json:"discovered,omitempty"`
	// Command is the rendered restart command (executor command).
	Command []string `json:"command,omitempty"`
	// Silence are the rendered matchers of its silence (empty: none).
	Silence []string `json:"silence,omitempty"`
}

// RollingRestartDetails is the plan's kind-specific data: what runs is
// this, not the config at execution time.
type RollingRestartDetails struct {
	Nodes               []RestartNode          `json:"nodes"`
	Shards              map[int][]string       `json:"shards"`
	Executor            string                 `json:"executor"`
	CommandTimeout      time.Duration          `json:"command_timeout"`
	Order               string                 `json:"order"`
	AlertNode           string                 `json:"alert_node,omitempty"`
	MaxReplicaDelay     time.Duration          `json:"max_replica_delay"`
	MaxReplicationQueue int                    `json:"max_replication_queue"`
	MaxKeeperLatency    time.Duration          `json:"max_keeper_latency"`
	HerdWindow          time.Duration          `json:"herd_window"`
	RequireKeeper       bool                   `json:"require_keeper_healthy"`
	StopMerges          bool                   `json:"stop_merges"`
	PollInterval        time.Duration          `json:"poll_interval"`
	Timeouts            config.RestartTimeouts `json:"timeouts"`
	SilenceURL          string                 `json:"silence_url,omitempty"`
	SilenceCreatedBy    string                 `json:"silence_created_by,omitempty"`
	// Estimated is the typical duration; Bound the longest (every timeout
	// reached).
	Estimated time.Duration `json:"estimated"`
	Bound     time.Duration `json:"bound"`
}

// typicalNodeRestart is the estimate of one node's restart, gates included
// (18.16 on the test data: ~2 s to stop, ~0.2 s to answer, ~1 s for its
// tables; real servers with many parts take longer).
const typicalNodeRestart = 30 * time.Second

// RollingRestartParams are the typed parameters.
type RollingRestartParams struct {
	WaitHealthy   time.Duration
	RequireKeeper bool
	AlertNode     string
}

// DecodeRollingRestartParams reads the raw parameters.
func DecodeRollingRestartParams(raw map[string]string) (RollingRestartParams, error) {
	if err := Validate(RollingRestartKind, raw); err != nil {
		return RollingRestartParams{}, err
	}
	p := RollingRestartParams{RequireKeeper: true}
	if s, ok := raw["wait_healthy"]; ok {
		p.WaitHealthy, _ = time.ParseDuration(s)
	}
	if s, ok := raw["require_keeper_healthy"]; ok {
		p.RequireKeeper, _ = strconv.ParseBool(s)
	}
	p.AlertNode = strings.TrimSpace(raw["alert_node"])
	return p, nil
}

func capped(d, bound time.Duration) time.Duration {
	if bound > 0 && bound < d {
		return bound
	}
	return d
}

// Plan implements Action: read-only, it reads the cluster's live state (the
// diagnosis, each node's replicas) and refuses when the runbook says not to
// restart.
func (a *RollingRestart) Plan(ctx context.Context, req Request) (Plan, error) {
	cl, ok := a.cfg.Cluster(req.Cluster)
	if !ok {
		return Plan{}, fmt.Errorf("rolling_restart: unknown cluster %q", req.Cluster)
	}
	if err := needsRefusal(RollingRestartKind, cl); err != nil {
		return Plan{}, err
	}
	rc := cl.Actions.RollingRestart
	if rc.Executor == config.RestartExecutorCommand && len(rc.Command) == 0 {
		return Plan{}, &Refusal{Reason: fmt.Sprintf("rolling_restart is not configured on cluster %q: set clusters[%s].actions.rolling_restart.command (the restart argv template) or executor: sql", cl.Name, cl.Name)}
	}
	params, err := DecodeRollingRestartParams(req.Params)
	if err != nil {
		return Plan{}, err
	}
	if a.deps.Busy != nil {
		if holder, exec, held, err := a.deps.Busy(ctx, cl.Name); err != nil {
			return Plan{}, fmt.Errorf("rolling_restart: lease of cluster %q: %w", cl.Name, err)
		} else if held {
			return Plan{}, &Refusal{Reason: fmt.Sprintf("another chmedic action is running on cluster %q (execution %s, held by %s): one action at a time per cluster", cl.Name, exec, holder),
				Gates: []Gate{{Name: "no other action running", OK: false, Evidence: "execution " + exec + " holds the cluster's lease"}}}
		}
	}
	d := RollingRestartDetails{
		Executor: rc.Executor, CommandTimeout: rc.Timeout, Order: rc.Order, AlertNode: params.AlertNode,
		MaxReplicaDelay: rc.MaxReplicaDelay, MaxReplicationQueue: rc.MaxReplicationQueue,
		MaxKeeperLatency: rc.MaxKeeperLatency, HerdWindow: rc.HerdWindow, RequireKeeper: params.RequireKeeper,
		StopMerges: rc.StopMerges, PollInterval: rc.PollInterval, Timeouts: rc.Timeouts,
		Shards: map[int][]string{},
	}
	d.Timeouts.Up = capped(d.Timeouts.Up, params.WaitHealthy)
	d.Timeouts.Tables = capped(d.Timeouts.Tables, params.WaitHealthy)
	d.Timeouts.CatchUp = capped(d.Timeouts.CatchUp, params.WaitHealthy)
	if rc.Silence.Enabled() {
		d.SilenceURL, d.SilenceCreatedBy = rc.Silence.URL, rc.Silence.CreatedBy
	}
	nodes, err := a.layout(ctx, cl)
	if err != nil {
		return Plan{}, err
	}
	if params.AlertNode != "" && !slices.ContainsFunc(nodes, func(n RestartNode) bool { return n.Name == params.AlertNode }) {
		return Plan{}, fmt.Errorf("rolling_restart: alert_node %q is not a ClickHouse node of cluster %q", params.AlertNode, cl.Name)
	}

	// The live state: refusals with the figures.
	var gates []Gate
	var refusals []string
	kg, kref := a.keeperGates(ctx, cl.Name, d)
	gates = append(gates, kg...)
	refusals = append(refusals, kref...)
	states := a.readAll(ctx, cl, nodes)
	health := map[string]bool{}
	for _, n := range nodes {
		health[n.Name] = states[n.Name].healthy(d) == ""
	}
	for _, n := range nodes {
		if st := states[n.Name]; st.err != nil {
			refusals = append(refusals, fmt.Sprintf("%s is down (%s): a rolling restart does not start a server that is down, and restarting its peers would leave shard %d with fewer replicas", n.Name, clickhouse.Cause(st.err), n.Shard))
		}
	}
	shardIDs := make([]int, 0)
	for _, n := range nodes {
		if !slices.Contains(shardIDs, n.Shard) {
			shardIDs = append(shardIDs, n.Shard)
		}
		d.Shards[n.Shard] = append(d.Shards[n.Shard], n.Name)
	}
	sort.Ints(shardIDs)
	for _, s := range shardIDs {
		reps := d.Shards[s]
		var bad []string
		for _, name := range reps {
			if why := states[name].healthy(d); why != "" {
				bad = append(bad, name+": "+why)
			}
		}
		switch {
		case len(reps) == 1:
			refusals = append(refusals, fmt.Sprintf("shard %d has one replica (%s): restarting it takes the shard down; restart it by hand in a maintenance window", s, reps[0]))
		case len(bad) == len(reps):
			refusals = append(refusals, fmt.Sprintf("no replica of shard %d is healthy (%s): restarting one would take the shard down", s, strings.Join(bad, "; ")))
		}
		ev := fmt.Sprintf("%d of %d replicas healthy", len(reps)-len(bad), len(reps))
		if len(bad) > 0 {
			ev += " (" + strings.Join(bad, "; ") + ")"
		}
		gates = append(gates, Gate{Name: fmt.Sprintf("shard %d has a healthy replica", s), OK: len(bad) < len(reps) && len(reps) > 1, Evidence: ev})
	}
	if len(refusals) > 0 {
		return Plan{}, &Refusal{Reason: "rolling restart refused: " + strings.Join(refusals, "; "), Gates: gates}
	}

	nodes = orderNodes(nodes, health, params.AlertNode, rc.Order)
	for i := range nodes {
		f := NodeFields{Host: hostOf(nodes[i].Address), Name: nodes[i].Name, Shard: nodes[i].Shard, Replica: nodes[i].Replica}
		if d.Executor == config.RestartExecutorCommand {
			argv, err := RenderArgv(rc.Command, f)
			if err != nil {
				return Plan{}, fmt.Errorf("rolling_restart: node %s: restart command: %w", nodes[i].Name, err)
			}
			nodes[i].Command = argv
		}
		if rc.Silence.Enabled() {
			for _, m := range rc.Silence.Matchers {
				pm, err := config.RenderMatcher(m, f)
				if err != nil {
					return Plan{}, fmt.Errorf("rolling_restart: node %s: silence: %w", nodes[i].Name, err)
				}
				nodes[i].Silence = append(nodes[i].Silence, pm.String())
			}
		}
	}
	d.Nodes = nodes
	t := d.Timeouts
	perNode := t.Before + t.Up + t.Tables + t.CatchUp + d.CommandTimeout
	if d.StopMerges {
		perNode += t.Drain
	}
	d.Estimated = time.Duration(len(nodes)) * typicalNodeRestart
	d.Bound = time.Duration(len(nodes)) * perNode

	// The plan is hashed: its gates say what was checked and against what,
	// not the figures of the moment (those are in a refusal).
	stable := []Gate{}
	for _, g := range gates {
		g.Evidence = stableEvidence(g, d)
		stable = append(stable, g)
	}
	steps := []Step{{ID: "preflight", Title: preflightTitle(d)}}
	var order []string
	for i, n := range nodes {
		order = append(order, n.Name)
		peers := slices.DeleteFunc(slices.Clone(d.Shards[n.Shard]), func(s string) bool { return s == n.Name })
		steps = append(steps, Step{ID: n.Name + "/before", Node: n.Name,
			Title: fmt.Sprintf("node %d of %d: %s (shard %d): wait up to %s for %s to be up, writable, delay ≤ %s and queue ≤ %d", i+1, len(nodes), n.Name, n.Shard, t.Before, strings.Join(peers, ", "), d.MaxReplicaDelay, d.MaxReplicationQueue)})
		st := Step{ID: n.Name + "/restart", Node: n.Name, Command: n.Command}
		var what []string
		if len(n.Silence) > 0 {
			what = append(what, "silence its alerts ("+strings.Join(n.Silence, ", ")+")")
		}
		if d.StopMerges {
			what = append(what, fmt.Sprintf("SYSTEM STOP MERGES and wait up to %s for running merges", t.Drain))
			st.SQL = append(st.SQL, "SYSTEM STOP MERGES")
			st.Undo = "SYSTEM START MERGES when the node does not restart"
		}
		switch d.Executor {
		case config.RestartExecutorSQL:
			st.SQL = append(st.SQL, "SYSTEM SHUTDOWN")
			what = append(what, "SYSTEM SHUTDOWN (its supervisor starts it again)")
		default:
			what = append(what, fmt.Sprintf("run the restart command (timeout %s)", d.CommandTimeout))
		}
		st.Title = fmt.Sprintf("node %d of %d: restart %s: record its start time, %s", i+1, len(nodes), n.Name, strings.Join(what, ", "))
		steps = append(steps, st)
		steps = append(steps, Step{ID: n.Name + "/after", Node: n.Name,
			Title: fmt.Sprintf("node %d of %d: wait up to %s for %s to answer with a new start time, %s for its replicated tables to be attached and writable, %s for delay ≤ %s and queue ≤ %d", i+1, len(nodes), t.Up, n.Name, t.Tables, t.CatchUp, d.MaxReplicaDelay, d.MaxReplicationQueue)})
	}
	details, _ := json.Marshal(d)
	paramsJSON, _ := json.Marshal(req.Params)
	method := "command: " + strings.Join(rc.Command, " ")
	if d.Executor == config.RestartExecutorSQL {
		method = "sql: SYSTEM SHUTDOWN as " + cl.Actions.ClickHouse.User + "; the server's supervisor must start it again"
	}
	plan := Plan{
		Kind: RollingRestartKind, Cluster: cl.Name, Params: paramsJSON,
		Summary: fmt.Sprintf("Restart %d ClickHouse nodes one at a time (%s), never two replicas of a shard at once; estimated %s, at most %s", len(nodes), strings.Join(order, " → "), d.Estimated, d.Bound),
		Method:  method,
		Gates:   stable,
		Steps:   steps,
		Notes: []string{
			"Queries on a restarting node fail; clients must retry on another replica.",
			"A failed gate or timeout stops the roll at that node: the nodes after it are not touched, and Resume continues from there after re-checking it.",
			"A node is never restarted twice: its start time is recorded before the restart, and a newer one means the restart happened.",
		},
		Details:    details,
		ComputedAt: a.deps.Now().UTC(),
	}
	if d.StopMerges {
		plan.Notes = append(plan.Notes, "SYSTEM STOP MERGES is in memory only: it ends with the restart, and is undone (START MERGES) when the node does not restart, also when the roll is aborted after a chmedic crash.")
	}
	if !d.RequireKeeper {
		plan.Notes = append(plan.Notes, "require_keeper_healthy=false: the coordination service's state does not stop this roll (the runbook warns against restarting during a reconnection storm).")
	}
	return plan, nil
}

func preflightTitle(d RollingRestartDetails) string {
	if !d.RequireKeeper {
		return "check that every shard has a healthy replica (the coordination service is not checked: require_keeper_healthy=false)"
	}
	return fmt.Sprintf("check the coordination service (latency ≤ %s, quorum, no reconnection herd within %s) and that every shard has a healthy replica", d.MaxKeeperLatency, d.HerdWindow)
}

func stableEvidence(g Gate, d RollingRestartDetails) string {
	switch {
	case g.Name == "coordination latency":
		return fmt.Sprintf("at most %s", d.MaxKeeperLatency)
	case g.Name == "no reconnection herd":
		return fmt.Sprintf("none within %s", d.HerdWindow)
	case strings.HasPrefix(g.Name, "shard "):
		return "checked again before each node's restart"
	}
	return g.Evidence
}

// orderNodes orders the roll: shard by shard in config order, within a
// shard the unhealthy replicas first (restarting them is the point, and
// their healthy peers serve meanwhile), then the alert's node moved last or
// first.
func orderNodes(nodes []RestartNode, healthy map[string]bool, alertNode, order string) []RestartNode {
	out := slices.Clone(nodes)
	idx := map[string]int{}
	for i, n := range nodes {
		idx[n.Name] = i
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Shard != out[j].Shard {
			return out[i].Shard < out[j].Shard
		}
		if healthy[out[i].Name] != healthy[out[j].Name] {
			return !healthy[out[i].Name]
		}
		return idx[out[i].Name] < idx[out[j].Name]
	})
	if alertNode == "" {
		return out
	}
	i := slices.IndexFunc(out, func(n RestartNode) bool { return n.Name == alertNode })
	if i < 0 {
		return out
	}
	n := out[i]
	out = slices.Delete(out, i, i+1)
	if order == config.RestartOrderAlertFirst {
		return append([]RestartNode{n}, out...)
	}
	return append(out, n)
}

// layout returns the nodes from the config and, with discovery, the
// nodes of system.clusters the config does not list.
func (a *RollingRestart) layout(ctx context.Context, cl *config.Cluster) ([]RestartNode, error) {
	var nodes []RestartNode
	known := map[string]bool{}
	for _, n := range cl.ClickHouse.Nodes {
		nodes = append(nodes, RestartNode{Name: n.Name, Address: n.Address, Shard: n.Shard, Replica: n.Replica})
		known[n.Address] = true
	}
	if !cl.ClickHouse.Discover {
		return nodes, nil
	}
	var lastErr error
	for _, seed := range cl.ClickHouse.Nodes {
		conn, err := a.open(cl, seed.Name, seed.Address)
		if err != nil {
			return nil, err
		}
		rows, err := conn.Query(ctx, `SELECT host_name, host_address, port, shard_num, replica_num FROM system.clusters WHERE cluster = ? ORDER BY shard_num, replica_num`, cl.ClickHouse.ClusterName)
		conn.Close()
		if err != nil {
			lastErr = err
			continue
		}
		for _, r := range rows {
			addr := net.JoinHostPort(r.String("host_address"), strconv.FormatInt(r.Int("port"), 10))
			byName := net.JoinHostPort(r.String("host_name"), strconv.FormatInt(r.Int("port"), 10))
			if known[addr] || known[byName] {
				continue
			}
			known[addr] = true
			nodes = append(nodes, RestartNode{Name: byName, Address: byName, Shard: int(r.Int("shard_num")), Replica: byName, Discovered: true})
		}
		return nodes, nil
	}
	return nil, fmt.Errorf("rolling_restart: discover the nodes of cluster %q in system.clusters: %w", cl.Name, lastErr)
}

func (a *RollingRestart) open(cl *config.Cluster, name, addr string) (*clickhouse.Node, error) {
	return a.deps.OpenClickHouse(cl, config.ClickHouseNode{Name: name, Address: addr}, NodeTuning{MaxConns: 2, QueryTimeout: 10 * time.Second})
}

// nodeState is one read of a node.
type nodeState struct {
	err       error
	start     int64 // server start time, Unix seconds
	uptime    int64
	tables    int // replicated tables
	readonly  []string
	expired   []string
	maxDelay  time.Duration
	delayAt   string
	queue     int64
	merges    int64
	readAt    time.Time
	replicasE error // system.replicas could not be read
}

// healthy says why the node is not healthy, or "".
func (s nodeState) healthy(d RollingRestartDetails) string {
	switch {
	case s.err != nil:
		return "down (" + clickhouse.Cause(s.err) + ")"
	case s.replicasE != nil:
		return "system.replicas unreadable (" + clickhouse.Cause(s.replicasE) + ")"
	case len(s.readonly) > 0:
		return "read-only: " + strings.Join(s.readonly, ", ")
	case len(s.expired) > 0:
		return "coordination session expired: " + strings.Join(s.expired, ", ")
	case s.maxDelay > d.MaxReplicaDelay:
		return fmt.Sprintf("replication delay %s on %s above %s", s.maxDelay, s.delayAt, d.MaxReplicaDelay)
	case s.queue > int64(d.MaxReplicationQueue):
		return fmt.Sprintf("replication queue %d above %d", s.queue, d.MaxReplicationQueue)
	}
	return ""
}

func (s nodeState) text() string {
	if s.err != nil {
		return "down (" + clickhouse.Cause(s.err) + ")"
	}
	return fmt.Sprintf("up since %s, %d replicated tables, %d read-only, delay %s, queue %d", time.Unix(s.start, 0).UTC().Format(time.RFC3339), s.tables, len(s.readonly), s.maxDelay, s.queue)
}

// read reads one node's start time and replicas (bounded by ctx).
func (a *RollingRestart) read(ctx context.Context, cl *config.Cluster, n RestartNode) nodeState {
	st := nodeState{readAt: a.deps.Now()}
	conn, err := a.open(cl, n.Name, n.Address)
	if err != nil {
		st.err = err
		return st
	}
	defer conn.Close()
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rows, err := conn.Query(qctx, `SELECT toUInt64(now()) - uptime() AS start, uptime() AS uptime`)
	if err != nil || len(rows) == 0 {
		if err == nil {
			err = errors.New("no row")
		}
		st.err = err
		return st
	}
	st.start, st.uptime = rows[0].Int("start"), rows[0].Int("uptime")
	rows, err = conn.Query(qctx, `SELECT database, table, is_readonly, is_session_expired, absolute_delay, queue_size FROM system.replicas`)
	if err != nil {
		st.replicasE = err
		return st
	}
	for _, r := range rows {
		t := r.String("database") + "." + r.String("table")
		st.tables++
		if r.Bool("is_readonly") {
			st.readonly = append(st.readonly, t)
		}
		if r.Bool("is_session_expired") {
			st.expired = append(st.expired, t)
		}
		if d := time.Duration(r.Int("absolute_delay")) * time.Second; d > st.maxDelay {
			st.maxDelay, st.delayAt = d, t
		}
		st.queue += r.Int("queue_size")
	}
	return st
}

func (a *RollingRestart) readAll(ctx context.Context, cl *config.Cluster, nodes []RestartNode) map[string]nodeState {
	out := make(map[string]nodeState, len(nodes))
	type res struct {
		name string
		st   nodeState
	}
	ch := make(chan res, len(nodes))
	for _, n := range nodes {
		go func() { ch <- res{n.Name, a.read(ctx, cl, n)} }()
	}
	for range nodes {
		r := <-ch
		out[r.name] = r.st
	}
	return out
}

// keeperGates reads the diagnosis: coordination latency, quorum, a recent
// reconnection herd. The refusals carry the figures.
func (a *RollingRestart) keeperGates(ctx context.Context, cluster string, d RollingRestartDetails) ([]Gate, []string) {
	if a.deps.Diagnose == nil {
		if !d.RequireKeeper {
			return nil, nil
		}
		return []Gate{{Name: "coordination service", OK: false, Evidence: "no diagnosis available"}}, []string{"the coordination service cannot be checked (no diagnosis engine in this process)"}
	}
	dg, err := a.deps.Diagnose(ctx, cluster)
	if err != nil {
		if !d.RequireKeeper {
			return nil, nil
		}
		return []Gate{{Name: "coordination service", OK: false, Evidence: err.Error()}}, []string{"the coordination service cannot be checked: " + err.Error()}
	}
	gates, why := KeeperVerdict(dg, d.MaxKeeperLatency, d.HerdWindow)
	if !d.RequireKeeper {
		return gates, nil
	}
	return gates, why
}

// KeeperVerdict judges a diagnosis for a restart: the coordination
// latency at most maxLatency, quorum (a majority answering, a leader), no
// reconnection herd within herdWindow. It returns the gates and, for each
// that fails, the reason with its figures.
func KeeperVerdict(dg *diagnose.Diagnosis, maxLatency, herdWindow time.Duration) ([]Gate, []string) {
	var gates []Gate
	var why []string
	// Latency: the live round trip ClickHouse measures, and the
	// coordination nodes' own average.
	worst, at, src := -1.0, "", ""
	for _, r := range dg.ResultsFor("clickhouse.keeper_latency") {
		if r.Skipped != "" {
			continue
		}
		if v, ok := r.Fact("latency_ms"); ok && v > worst {
			worst, at, src = v, r.Node, "read of / through ClickHouse"
		}
	}
	for _, name := range []string{"keeper.mntr", "keeper.srvr"} {
		fact := "avg_latency_ms"
		if name == "keeper.srvr" {
			fact = "latency_avg_ms"
		}
		for _, r := range dg.ResultsFor(name) {
			if v, ok := r.Fact(fact); ok && v > worst {
				worst, at, src = v, r.Node, name+" average"
			}
		}
	}
	maxMS := float64(maxLatency) / float64(time.Millisecond)
	switch {
	case worst < 0:
		gates = append(gates, Gate{Name: "coordination latency", OK: false, Evidence: "not measured"})
		why = append(why, "coordination latency could not be measured")
	case worst > maxMS:
		ev := fmt.Sprintf("%.1f ms on %s (%s), above the stress threshold %s", worst, at, src, maxLatency)
		gates = append(gates, Gate{Name: "coordination latency", OK: false, Evidence: ev})
		why = append(why, "coordination latency is "+ev)
	default:
		gates = append(gates, Gate{Name: "coordination latency", OK: true, Evidence: fmt.Sprintf("%.1f ms at most (%s), threshold %s", worst, at, maxLatency)})
	}
	// Quorum.
	total, answering := 0, 0
	for _, r := range dg.ResultsFor("keeper.ruok") {
		if r.Skipped != "" {
			continue
		}
		total++
		if v, ok := r.Fact("ok"); ok && v > 0 {
			answering++
		}
	}
	leader := false
	for _, name := range []string{"keeper.mntr", "keeper.srvr"} {
		for _, r := range dg.ResultsFor(name) {
			s := r.Attrs["server_state"]
			if s == "" {
				s = r.Attrs["mode"]
			}
			if s == "leader" || s == "standalone" {
				leader = true
			}
		}
	}
	switch {
	case total == 0:
		gates = append(gates, Gate{Name: "coordination quorum", OK: false, Evidence: "no coordination node measured"})
		why = append(why, "no coordination node could be checked")
	case answering*2 <= total || !leader:
		ev := fmt.Sprintf("%d of %d coordination nodes answer", answering, total)
		if !leader {
			ev += ", none reports itself leader or standalone"
		}
		gates = append(gates, Gate{Name: "coordination quorum", OK: false, Evidence: ev})
		why = append(why, "the coordination service has no quorum: "+ev)
	default:
		gates = append(gates, Gate{Name: "coordination quorum", OK: true, Evidence: fmt.Sprintf("%d of %d coordination nodes answer, a leader is elected", answering, total)})
	}
	// A reconnection herd: the diagnosis' cause, within the window (the
	// sessions' age).
	herd := false
	for _, c := range dg.Causes {
		if c.Name != "reconnection_herd" || c.Score < 0.4 {
			continue
		}
		age := -1.0
		for _, r := range dg.ResultsFor("clickhouse.keeper_sessions") {
			if v, ok := r.Fact("session_uptime_seconds"); ok && v > age {
				age = v
			}
		}
		if age < 0 || age <= herdWindow.Seconds() {
			herd = true
			ev := strings.Join(c.For, "; ")
			gates = append(gates, Gate{Name: "no reconnection herd", OK: false, Evidence: ev})
			why = append(why, fmt.Sprintf("a reconnection herd within herd_window %s: %s (runbook: restarting now makes the storm worse)", herdWindow, ev))
		}
	}
	if !herd {
		gates = append(gates, Gate{Name: "no reconnection herd", OK: true, Evidence: fmt.Sprintf("none within %s", herdWindow)})
	}
	return gates, why
}

// Execute implements Action.
func (a *RollingRestart) Execute(ctx context.Context, plan Plan, step Step, prior map[string]StepResult) (StepResult, error) {
	d, cl, err := a.details(plan)
	if err != nil {
		return StepResult{}, err
	}
	if step.ID == "preflight" {
		return a.preflight(ctx, cl, d)
	}
	i := slices.IndexFunc(d.Nodes, func(n RestartNode) bool { return n.Name == step.Node })
	if i < 0 {
		return StepResult{}, fmt.Errorf("rolling_restart: step %s: node %q is not in the plan", step.ID, step.Node)
	}
	switch {
	case strings.HasSuffix(step.ID, "/before"):
		return a.before(ctx, cl, d, i)
	case strings.HasSuffix(step.ID, "/restart"):
		return a.restart(ctx, cl, d, i)
	case strings.HasSuffix(step.ID, "/after"):
		var rd restartData
		if r, ok := prior[step.Node+"/restart"]; ok {
			json.Unmarshal(r.Data, &rd)
		}
		return a.after(ctx, cl, d, i, rd)
	}
	return StepResult{}, fmt.Errorf("rolling_restart: unknown step %s", step.ID)
}

// Verify implements Action: every step's gates are checked inside it.
func (a *RollingRestart) Verify(context.Context, Plan, Step, StepResult) error { return nil }

func (a *RollingRestart) details(plan Plan) (RollingRestartDetails, *config.Cluster, error) {
	var d RollingRestartDetails
	if err := json.Unmarshal(plan.Details, &d); err != nil {
		return d, nil, fmt.Errorf("rolling_restart: plan details: %w", err)
	}
	cl, ok := a.cfg.Cluster(plan.Cluster)
	if !ok {
		return d, nil, fmt.Errorf("rolling_restart: cluster %q is no longer configured", plan.Cluster)
	}
	if d.PollInterval <= 0 {
		d.PollInterval = time.Second
	}
	return d, cl, nil
}

// where says where the roll stands when node i's step fails.
func where(d RollingRestartDetails, i int, phase string) string {
	var rest []string
	for _, n := range d.Nodes[i+1:] {
		rest = append(rest, n.Name)
	}
	s := fmt.Sprintf("the roll stopped at node %d of %d (%s) %s", i+1, len(d.Nodes), d.Nodes[i].Name, phase)
	if len(rest) > 0 {
		s += "; not touched: " + strings.Join(rest, ", ")
	}
	return s
}

func (a *RollingRestart) preflight(ctx context.Context, cl *config.Cluster, d RollingRestartDetails) (StepResult, error) {
	gates, why := a.keeperGates(ctx, cl.Name, d)
	states := a.readAll(ctx, cl, d.Nodes)
	var lines []string
	for _, g := range gates {
		lines = append(lines, fmt.Sprintf("%s: %s", g.Name, g.Evidence))
	}
	for s, reps := range d.Shards {
		var bad []string
		for _, name := range reps {
			if w := states[name].healthy(d); w != "" {
				bad = append(bad, name+": "+w)
			}
		}
		if len(bad) == len(reps) {
			why = append(why, fmt.Sprintf("no replica of shard %d is healthy (%s)", s, strings.Join(bad, "; ")))
		}
	}
	for _, n := range d.Nodes {
		st := states[n.Name]
		lines = append(lines, n.Name+": "+st.text())
		if st.err != nil {
			why = append(why, fmt.Sprintf("%s is down (%s)", n.Name, clickhouse.Cause(st.err)))
		}
	}
	sort.Strings(why)
	data, _ := json.Marshal(map[string]any{"checks": lines})
	res := StepResult{Output: strings.Join(lines, "; "), Data: data}
	if len(why) > 0 {
		return res, fmt.Errorf("preflight refused the roll before any restart (no node touched): %s", strings.Join(why, "; "))
	}
	return res, nil
}

// poll calls check every interval until it returns "" or timeout passes;
// it returns the last reason.
func (a *RollingRestart) poll(ctx context.Context, d RollingRestartDetails, timeout time.Duration, check func() string) (string, time.Duration, error) {
	return a.pollGate(ctx, d, "", timeout, check)
}

// pollGate is poll that first reports the gate it waits for (the
// thread's progress message shows it).
func (a *RollingRestart) pollGate(ctx context.Context, d RollingRestartDetails, gate string, timeout time.Duration, check func() string) (string, time.Duration, error) {
	if gate != "" {
		ReportProgress(ctx, fmt.Sprintf("waiting for %s (up to %s)", gate, timeout))
	}
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		why := check()
		if why == "" {
			return "", time.Since(start), nil
		}
		if ctx.Err() != nil {
			return why, time.Since(start), ctx.Err()
		}
		if !time.Now().Add(d.PollInterval).Before(deadline) {
			return why, time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return why, time.Since(start), ctx.Err()
		case <-time.After(d.PollInterval):
		}
	}
}

func (a *RollingRestart) before(ctx context.Context, cl *config.Cluster, d RollingRestartDetails, i int) (StepResult, error) {
	n := d.Nodes[i]
	var peers []RestartNode
	for _, p := range d.Nodes {
		if p.Shard == n.Shard && p.Name != n.Name {
			peers = append(peers, p)
		}
	}
	var lines []string
	why, took, err := a.pollGate(ctx, d, fmt.Sprintf("the other replicas of shard %d to be healthy", n.Shard), d.Timeouts.Before, func() string {
		var bad string
		bad, lines = a.beforeCheck(ctx, cl, d, n, peers)
		return bad
	})
	res := StepResult{Output: strings.Join(lines, "; ")}
	if err != nil {
		return res, err
	}
	if why != "" {
		return res, fmt.Errorf("gate before %s failed after %s: %s: %s", n.Name, took.Round(time.Millisecond), why, where(d, i, "before its restart: it was not restarted"))
	}
	res.Output = fmt.Sprintf("the other replicas of shard %d are healthy: %s", n.Shard, res.Output)
	return res, nil
}

// beforeCheck is one read of the gate before node n's restart: n itself up
// and its peers healthy. It returns why not ("" when the gate passes) and
// the peers' figures.
func (a *RollingRestart) beforeCheck(ctx context.Context, cl *config.Cluster, d RollingRestartDetails, n RestartNode, peers []RestartNode) (string, []string) {
	var lines, bad []string
	self := a.read(ctx, cl, n)
	if self.err != nil {
		bad = append(bad, fmt.Sprintf("%s itself is down (%s): chmedic did not stop it and does not start it", n.Name, clickhouse.Cause(self.err)))
	}
	for _, p := range peers {
		st := a.read(ctx, cl, p)
		lines = append(lines, fmt.Sprintf("%s (shard %d): %s", p.Name, p.Shard, st.text()))
		if w := st.healthy(d); w != "" {
			bad = append(bad, fmt.Sprintf("replica %s of shard %d is %s", p.Name, p.Shard, w))
		}
	}
	return strings.Join(bad, "; "), lines
}

func peersOf(d RollingRestartDetails, n RestartNode) []RestartNode {
	var peers []RestartNode
	for _, p := range d.Nodes {
		if p.Shard == n.Shard && p.Name != n.Name {
			peers = append(peers, p)
		}
	}
	return peers
}

// restartData is the restart step's checkpoint and result.
type restartData struct {
	StartBefore   int64          `json:"start_before"`
	UptimeBefore  int64          `json:"uptime_before"`
	Tables        int            `json:"replicated_tables"`
	RecordedAt    time.Time      `json:"recorded_at"`
	SilenceID     string         `json:"silence_id,omitempty"`
	MergesStopped bool           `json:"merges_stopped,omitempty"`
	IssuedAt      time.Time      `json:"issued_at,omitzero"`
	Command       *CommandResult `json:"command,omitempty"`
	CommandOutput string         `json:"command_output,omitempty"`
	// Resumed says what a later attempt found.
	Resumed string `json:"resumed,omitempty"`
	// NotRestarted is set when the attempt failed with the node up with
	// its old start time after the restart was issued (the command or
	// statement failed and the server did not restart): a Resume issues
	// the restart again at once, since it never happened.
	NotRestarted bool `json:"not_restarted,omitempty"`
	// Running is the restart command while it runs (see orphan.go); Reaped
	// says what a later attempt found of it.
	Running *orphanCommand `json:"running_command,omitempty"`
	Reaped  string         `json:"reaped,omitempty"`
}

// restarted reports whether the server started after the recorded read:
// start times are whole seconds and now()-uptime() may differ by one
// between two reads of the same process, so a new process is one that
// started at least 2 s after the recorded start, or one whose uptime
// (whole seconds, truncated) is shorter than the time since the record.
func restarted(st nodeState, rd restartData) bool {
	if st.err != nil {
		return false
	}
	if st.start >= rd.StartBefore+2 {
		return true
	}
	return !rd.RecordedAt.IsZero() && !st.readAt.IsZero() && float64(st.uptime+1) < st.readAt.Sub(rd.RecordedAt).Seconds()
}

func (a *RollingRestart) silences(d RollingRestartDetails) *SilenceClient {
	return &SilenceClient{URL: d.SilenceURL, HTTP: a.deps.HTTPClient}
}

func (a *RollingRestart) expireSilence(ctx context.Context, d RollingRestartDetails, id string) string {
	if id == "" {
		return ""
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.silences(d).Expire(ectx, id); err != nil {
		a.deps.Log.Error("expire silence", "silence", id, "err", err)
		return fmt.Sprintf("; silence %s could not be expired (%v): it ends by itself at its end time", id, err)
	}
	return fmt.Sprintf("; silence %s expired", id)
}

func (a *RollingRestart) restart(ctx context.Context, cl *config.Cluster, d RollingRestartDetails, i int) (_ StepResult, err error) {
	n := d.Nodes[i]
	save := func(rd restartData) error {
		b, _ := json.Marshal(rd)
		return SaveCheckpoint(ctx, b)
	}
	result := func(rd restartData, out string) StepResult {
		if rd.Reaped != "" && out != "" {
			out = rd.Reaped + "; " + out
		}
		b, _ := json.Marshal(rd)
		return StepResult{Output: out, Data: b}
	}
	var rd restartData
	defer func() {
		if err != nil && rd.Reaped != "" {
			err = fmt.Errorf("%s; %w", rd.Reaped, err)
		}
	}()
	resumed := false
	if prev := PreviousCheckpoint(ctx); len(prev) > 0 && json.Unmarshal(prev, &rd) == nil && !rd.RecordedAt.IsZero() {
		resumed = true
	}
	if resumed && rd.Running != nil {
		// The interrupted attempt's command may still run (chmedic was
		// killed, its child was not): its timeout is enforced here, before
		// the node is looked at.
		note, err := reapOrphan(ctx, *rd.Running, a.deps.Now, d.PollInterval, func(s string) { ReportProgress(ctx, s) })
		if err != nil {
			return result(rd, ""), err
		}
		rd.Running, rd.Reaped = nil, note
	}
	st := a.read(ctx, cl, n)
	if resumed {
		// A previous attempt was interrupted: find out what it did.
		switch {
		case restarted(st, rd):
			rd.Resumed = fmt.Sprintf("found %s restarted (start time %s → %s): not restarted again", n.Name, unixText(rd.StartBefore), unixText(st.start))
			return result(rd, rd.Resumed), nil
		case st.err != nil && !rd.IssuedAt.IsZero():
			rd.Resumed = fmt.Sprintf("found %s down after the restart was issued at %s: not issued again; the next step waits for it", n.Name, rd.IssuedAt.UTC().Format(time.RFC3339))
			return result(rd, rd.Resumed), nil
		case st.err != nil:
			return result(rd, ""), fmt.Errorf("%s is down and chmedic had not issued its restart (%s): %s", n.Name, clickhouse.Cause(st.err), where(d, i, "at its restart"))
		case !rd.IssuedAt.IsZero() && rd.NotRestarted:
			// The stopped attempt's restart failed and the server kept
			// its start time: it never happened, so it is issued again.
			rd.Resumed = fmt.Sprintf("the restart issued at %s failed and %s kept its start time %s (not restarted): issued again", rd.IssuedAt.UTC().Format(time.RFC3339), n.Name, unixText(st.start))
			rd.IssuedAt, rd.NotRestarted = time.Time{}, false
		case !rd.IssuedAt.IsZero():
			// Up with the old start time after the restart was issued: the
			// interrupted command may still act. Wait for it up to its
			// timeout before issuing it again.
			wait := time.Until(rd.IssuedAt.Add(d.CommandTimeout))
			if wait > 0 {
				why, _, err := a.poll(ctx, d, wait, func() string {
					if s := a.read(ctx, cl, n); restarted(s, rd) || s.err != nil {
						st = s
						return ""
					}
					return "not restarted yet"
				})
				if err != nil {
					return result(rd, ""), err
				}
				if why == "" {
					rd.Resumed = fmt.Sprintf("found %s restarting after the interrupted command: not issued again", n.Name)
					return result(rd, rd.Resumed), nil
				}
			}
			rd.Resumed = fmt.Sprintf("the restart issued at %s did not act within its timeout %s: issued again", rd.IssuedAt.UTC().Format(time.RFC3339), d.CommandTimeout)
			rd.IssuedAt = time.Time{}
		}
	} else {
		if st.err != nil {
			return StepResult{}, fmt.Errorf("%s is down before its restart (%s): %s", n.Name, clickhouse.Cause(st.err), where(d, i, "at its restart: it was not restarted"))
		}
		rd = restartData{StartBefore: st.start, UptimeBefore: st.uptime, Tables: st.tables, RecordedAt: a.deps.Now().UTC()}
		if err := save(rd); err != nil {
			return StepResult{}, fmt.Errorf("%w: not restarting %s without a record of its start time", err, n.Name)
		}
	}
	// The silence, for the restart and the checks after it. One made by
	// an interrupted attempt is kept while it is active.
	if len(n.Silence) > 0 && rd.SilenceID != "" {
		if st, err := a.silences(d).State(ctx, rd.SilenceID); err != nil || st != "active" {
			rd.SilenceID = ""
		}
	}
	if len(n.Silence) > 0 && rd.SilenceID == "" {
		id, err := a.createSilence(ctx, d, n, plannedNodeBound(d))
		if err != nil {
			return result(rd, ""), fmt.Errorf("silence the alerts of %s: %w: %s", n.Name, err, where(d, i, "before its restart: it was not restarted"))
		}
		rd.SilenceID = id
		if err := save(rd); err != nil {
			return result(rd, ""), err
		}
	}
	conn, err := a.open(cl, n.Name, n.Address)
	if err != nil {
		return result(rd, ""), err
	}
	defer conn.Close()
	if d.StopMerges {
		if err := a.exec(ctx, cl, n, "SYSTEM STOP MERGES", 10*time.Second); err != nil {
			note := a.expireSilence(ctx, d, rd.SilenceID)
			return result(rd, ""), fmt.Errorf("SYSTEM STOP MERGES on %s: %w%s: %s", n.Name, err, note, where(d, i, "before its restart: it was not restarted"))
		}
		rd.MergesStopped = true
		if err := save(rd); err != nil {
			return result(rd, ""), err
		}
		why, took, err := a.pollGate(ctx, d, "the running merges of "+n.Name+" to finish", d.Timeouts.Drain, func() string {
			rows, err := conn.Query(ctx, "SELECT count() AS n FROM system.merges")
			if err != nil {
				return "system.merges: " + clickhouse.Cause(err)
			}
			if c := rows[0].Int("n"); c > 0 {
				return fmt.Sprintf("%d merges still running", c)
			}
			return ""
		})
		if err != nil {
			return result(rd, ""), err
		}
		if why != "" {
			undo := a.startMerges(ctx, cl, n)
			if !strings.Contains(undo, "failed") {
				rd.MergesStopped = false
			}
			note := a.expireSilence(ctx, d, rd.SilenceID)
			return result(rd, ""), fmt.Errorf("merges on %s did not drain within %s (%s; after %s)%s%s: %s", n.Name, d.Timeouts.Drain, why, took.Round(time.Millisecond), undo, note, where(d, i, "before its restart: it was not restarted"))
		}
	}
	rd.IssuedAt = a.deps.Now().UTC()
	if err := save(rd); err != nil {
		return result(rd, ""), err
	}
	ReportProgress(ctx, "restarting "+n.Name)
	var cmdErr error
	switch d.Executor {
	case config.RestartExecutorSQL:
		cmdErr = a.exec(ctx, cl, n, "SYSTEM SHUTDOWN", d.CommandTimeout)
	default:
		var cr CommandResult
		cr, cmdErr = a.deps.Commands.Run(ctx, Command{Argv: n.Command, Timeout: d.CommandTimeout, MaxOutput: 64 << 10, OnStart: func(pid int) {
			rd.Running = &orphanCommand{PID: pid, Ticks: processStartTicks(pid), Deadline: a.deps.Now().UTC().Add(d.CommandTimeout)}
			if err := save(rd); err != nil {
				a.deps.Log.Error("record the restart command's pid", "node", n.Name, "pid", pid, "err", err)
			}
		}})
		if ctx.Err() == nil {
			rd.Running = nil // it ended (a cancelled one stays recorded: it may outlive a kill)
		}
		rd.Command = &cr
		rd.CommandOutput = firstLine(strings.TrimSpace(string(cr.Output)), 500)
	}
	if ctx.Err() != nil {
		return result(rd, ""), ctx.Err()
	}
	if cmdErr != nil {
		// The command failed: did the node restart or go down anyway (a
		// SYSTEM SHUTDOWN loses its connection; an ssh session may drop)?
		// A server shutting down may accept connections for a moment.
		var st nodeState
		why, _, err := a.poll(ctx, d, min(restartSettle, d.CommandTimeout), func() string {
			st = a.read(ctx, cl, n)
			if st.err != nil || restarted(st, rd) {
				return ""
			}
			return "up with its old start time"
		})
		if err != nil {
			return result(rd, ""), err
		}
		if why != "" {
			undo := ""
			if rd.MergesStopped {
				undo = a.startMerges(ctx, cl, n)
				if !strings.Contains(undo, "failed") {
					rd.MergesStopped = false
				}
			}
			rd.NotRestarted = true
			note := a.expireSilence(ctx, d, rd.SilenceID)
			return result(rd, ""), fmt.Errorf("restart of %s failed: %v; it was not restarted (start time unchanged, %s)%s%s: %s", n.Name, cmdErr, unixText(st.start), undo, note, where(d, i, "at its restart"))
		}
	}
	out := fmt.Sprintf("restart of %s issued (start time was %s, up %s, %d replicated tables)", n.Name, unixText(rd.StartBefore), time.Duration(rd.UptimeBefore)*time.Second, rd.Tables)
	if rd.Command != nil {
		out += fmt.Sprintf("; command exited %d after %s", rd.Command.ExitCode, rd.Command.Duration.Round(time.Millisecond))
	}
	if cmdErr != nil {
		out += fmt.Sprintf("; it ended with an error (%v) but the server went down", cmdErr)
	}
	if rd.Resumed != "" {
		out = rd.Resumed + "; " + out
	}
	return result(rd, out), nil
}

// restartSettle is how long a failed restart command or statement is
// given to show its effect (the server going down) before the restart is
// declared failed.
const restartSettle = 15 * time.Second

func (a *RollingRestart) startMerges(ctx context.Context, cl *config.Cluster, n RestartNode) string {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.exec(uctx, cl, n, "SYSTEM START MERGES", 10*time.Second); err != nil {
		return fmt.Sprintf("; SYSTEM START MERGES failed (%v): run it by hand", err)
	}
	return "; merges started again (SYSTEM START MERGES)"
}

// plannedNodeBound is how long one node's restart may take at most: its
// silence ends by itself then, even when chmedic never expires it.
func plannedNodeBound(d RollingRestartDetails) time.Duration {
	t := d.Timeouts
	return t.Drain + d.CommandTimeout + t.Up + t.Tables + t.CatchUp + time.Minute
}

func (a *RollingRestart) createSilence(ctx context.Context, d RollingRestartDetails, n RestartNode, bound time.Duration) (string, error) {
	var ms []*labels.Matcher
	for _, s := range n.Silence {
		m, err := labels.ParseMatcher(s)
		if err != nil {
			return "", err
		}
		ms = append(ms, m)
	}
	now := a.deps.Now()
	return a.silences(d).Create(ctx, Silence{Matchers: ms, StartsAt: now, EndsAt: now.Add(bound), CreatedBy: d.SilenceCreatedBy,
		Comment: fmt.Sprintf("chmedic rolling_restart: %s is restarting", n.Name)})
}

func unixText(s int64) string {
	if s <= 0 {
		return "unknown"
	}
	return time.Unix(s, 0).UTC().Format("15:04:05")
}

// afterData is the after step's checkpoint: the silence a resumed attempt
// made (the stopped one's was expired when it stopped).
type afterData struct {
	SilenceID string `json:"silence_id,omitempty"`
}

func (a *RollingRestart) after(ctx context.Context, cl *config.Cluster, d RollingRestartDetails, i int, rd restartData) (res StepResult, err error) {
	n := d.Nodes[i]
	var ad afterData
	if prev := PreviousCheckpoint(ctx); len(prev) > 0 {
		json.Unmarshal(prev, &ad)
	}
	if ad.SilenceID != "" {
		rd.SilenceID = ad.SilenceID
	}
	if len(n.Silence) > 0 && rd.SilenceID != "" {
		// A resume after a stop (the silence was expired when it
		// stopped) or after a crash past the silence's end: the node's
		// alerts are silenced again for the checks.
		if st, serr := a.silences(d).State(ctx, rd.SilenceID); serr == nil && st != "active" {
			id, cerr := a.createSilence(ctx, d, n, plannedNodeBound(d))
			if cerr != nil {
				a.deps.Log.Error("silence again for the checks after the restart", "node", n.Name, "err", cerr)
			} else {
				rd.SilenceID, ad.SilenceID = id, id
				b, _ := json.Marshal(ad)
				if serr := SaveCheckpoint(ctx, b); serr != nil {
					a.deps.Log.Error("record the silence", "node", n.Name, "silence", id, "err", serr)
				}
			}
		}
	}
	defer func() {
		if ctx.Err() == nil {
			note := a.expireSilence(ctx, d, rd.SilenceID)
			if err != nil {
				err = fmt.Errorf("%w%s", err, note)
			} else {
				res.Output += note
			}
		}
		if err != nil && res.Data == nil && ad.SilenceID != "" {
			res.Data, _ = json.Marshal(ad)
		}
	}()
	var last nodeState
	fail := func(gate string, limit, took time.Duration, why string) error {
		return fmt.Errorf("gate %q of %s failed: %s after %s (timeout %s): %s", gate, n.Name, why, took.Round(time.Millisecond), limit, where(d, i, "after its restart"))
	}
	why, took, err := a.pollGate(ctx, d, n.Name+" to answer with a new start time", d.Timeouts.Up, func() string {
		last = a.read(ctx, cl, n)
		switch {
		case last.err != nil:
			return "it does not answer (" + clickhouse.Cause(last.err) + ")"
		case !restarted(last, rd):
			return fmt.Sprintf("it answers with its old start time %s: not restarted", unixText(last.start))
		}
		return ""
	})
	if err != nil {
		return StepResult{}, err
	}
	if why != "" {
		err := fail("up with a new start time", d.Timeouts.Up, took, why)
		if last.err == nil && rd.MergesStopped {
			// Up with its old start time: its SYSTEM STOP MERGES did not
			// end with a restart; not left stopped while nobody decides.
			err = fmt.Errorf("%w%s", err, a.startMerges(ctx, cl, n))
		}
		return StepResult{}, err
	}
	upAfter := took
	why, took, err = a.pollGate(ctx, d, n.Name+"'s replicated tables to be attached and writable", d.Timeouts.Tables, func() string {
		last = a.read(ctx, cl, n)
		switch {
		case last.err != nil:
			return "it does not answer (" + clickhouse.Cause(last.err) + ")"
		case last.replicasE != nil:
			return "system.replicas does not answer (" + clickhouse.Cause(last.replicasE) + ")"
		case last.tables < rd.Tables:
			return fmt.Sprintf("%d of %d replicated tables attached", last.tables, rd.Tables)
		case len(last.readonly) > 0:
			return "read-only: " + strings.Join(last.readonly, ", ")
		case len(last.expired) > 0:
			return "coordination session expired: " + strings.Join(last.expired, ", ")
		}
		return ""
	})
	if err != nil {
		return StepResult{}, err
	}
	if why != "" {
		return StepResult{}, fail("replicated tables attached and writable", d.Timeouts.Tables, took, why)
	}
	tablesAfter := took
	why, took, err = a.pollGate(ctx, d, n.Name+" to catch up (delay and queue below the thresholds)", d.Timeouts.CatchUp, func() string {
		last = a.read(ctx, cl, n)
		return last.healthy(d)
	})
	if err != nil {
		return StepResult{}, err
	}
	if why != "" {
		return StepResult{}, fail("replication caught up", d.Timeouts.CatchUp, took, why)
	}
	data, _ := json.Marshal(map[string]any{"start_before": rd.StartBefore, "start_after": last.start, "up_after_ms": upAfter.Milliseconds(),
		"tables_after_ms": tablesAfter.Milliseconds(), "caught_up_after_ms": took.Milliseconds(), "replicated_tables": last.tables})
	return StepResult{Data: data, Output: fmt.Sprintf("%s restarted (start time %s → %s): answering after %s, %d replicated tables writable after %s more, delay %s and queue %d after %s more",
		n.Name, unixText(rd.StartBefore), unixText(last.start), upAfter.Round(time.Millisecond), last.tables, tablesAfter.Round(time.Millisecond), last.maxDelay, last.queue, took.Round(time.Millisecond))}, nil
}

// exec runs one statement that returns no rows with the actions
// credentials. clickhouse.Node is for queries (its Query reads EOF after a
// statement on 18.16 although it ran); the driver's Exec is used instead.
func (a *RollingRestart) exec(ctx context.Context, cl *config.Cluster, n RestartNode, stmt string, timeout time.Duration) error {
	c, err := ddlfreeze.DialNative(clickhouse.NodeConfig{Name: n.Name, Addr: n.Address, User: cl.Actions.ClickHouse.User,
		Password: cl.Actions.ClickHouse.Password.Value(), Database: cl.ClickHouse.Database, Secure: cl.ClickHouse.Secure}, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Exec(ctx, stmt)
}
