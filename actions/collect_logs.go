package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chmedic/chmedic/internal/config"
)

// collect_logs: the logs of every node of a cluster and its coordination
// layer for a window around the alert, redacted, in one tar.gz bundle
// attached to the alert's thread. Read-only, but it reads data that may be
// sensitive, so it still passes through approval.
//
// The plan lists the window, the nodes and, per node and source, the exact
// SQL or command; it does not contact the cluster, so its hash changes only
// when the request or the config does. Each node/source is one step
// (a resume does not redo a finished source); a source that fails is
// recorded in the manifest and the rest is still collected. Then a bundle
// step writes the tar.gz and an upload step attaches it to the thread.

// CollectLogsKind is the action kind.
const CollectLogsKind = "collect_logs"

// CollectLogsParams are collect_logs' typed parameters.
type CollectLogsParams struct {
	// Before and After are the window around the anchor.
	Before time.Duration `json:"before"`
	After  time.Duration `json:"after"`
	// Groups are the source groups asked for: clickhouse, keeper.
	Groups []string `json:"groups"`
	// Around, when set, is the window's centre instead of the alert's
	// start.
	Around time.Time `json:"around,omitzero"`
}

// Window is the collection window.
type Window struct {
	// Anchor is the alert group's earliest startsAt (or the fallback).
	Anchor time.Time `json:"anchor"`
	// AnchorSource says where Anchor comes from.
	AnchorSource string    `json:"anchor_source"`
	Since        time.Time `json:"since"`
	// Until is Anchor+After; collection caps it at the time it runs.
	Until time.Time `json:"until"`
}

// UploadTarget is the Slack thread the bundle goes to.
type UploadTarget struct {
	Channel  string `json:"channel"`
	ThreadTS string `json:"thread_ts"`
}

// PlannedNode is one node the plan collects from.
type PlannedNode struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"` // clickhouse or keeper
	Address string `json:"address"`
}

// CollectLogsDetails is collect_logs' Plan.Details.
type CollectLogsDetails struct {
	Window         Window        `json:"window"`
	Nodes          []PlannedNode `json:"nodes"`
	Sources        []string      `json:"sources"`
	MaxRows        int           `json:"max_rows"`
	MaxSourceBytes int64         `json:"max_source_bytes"`
	MaxBundleBytes int64         `json:"max_bundle_bytes"`
	QueryTimeout   time.Duration `json:"query_timeout"`
	MaxConcurrent  int           `json:"max_concurrent_per_node"`
	Upload         *UploadTarget `json:"upload,omitempty"`
}

// CollectLogs is the collect_logs action.
type CollectLogs struct {
	cfg  *config.Config
	deps Deps

	mu       sync.Mutex
	severity map[string]severity // plan hash → coordination state, measured once
}

// NewCollectLogs returns the action.
func NewCollectLogs(cfg *config.Config, deps Deps) *CollectLogs {
	deps.fill()
	return &CollectLogs{cfg: cfg, deps: deps, severity: map[string]severity{}}
}

// Kind implements Action.
func (*CollectLogs) Kind() string { return CollectLogsKind }

func collectLogsNeeds(cl *config.Cluster) []Need {
	var out []Need
	c := cl.Actions.CollectLogs
	chSQL := false
	for _, s := range c.Sources {
		if s != config.SourceServerLog && s != config.SourceKeeper4lw && s != config.SourceKeeperLog {
			chSQL = true
		}
	}
	if chSQL && cl.Actions.ClickHouse.User == "" {
		out = append(out, Need{Key: "clickhouse.user", Why: "the user collect_logs reads ClickHouse's system tables as (not the probe user)"})
	}
	return out
}

// DecodeCollectLogsParams reads the raw parameters (window, sources) over
// the cluster's defaults.
func DecodeCollectLogsParams(cl *config.Cluster, raw map[string]string) (CollectLogsParams, error) {
	if err := Validate(CollectLogsKind, raw); err != nil {
		return CollectLogsParams{}, err
	}
	p := CollectLogsParams{Before: cl.Actions.CollectLogs.WindowBefore, After: cl.Actions.CollectLogs.WindowAfter, Groups: []string{"clickhouse", "keeper"}}
	if w, ok := raw["window"]; ok {
		d, _ := time.ParseDuration(w) // validated above
		p.Before, p.After = d, d
	}
	if a, ok := raw["around"]; ok {
		p.Around, _ = time.Parse(time.RFC3339, a) // validated above
	}
	if s, ok := raw["sources"]; ok {
		p.Groups = nil
		for _, g := range strings.Split(s, ",") {
			if g = strings.TrimSpace(g); g != "" && !slices.Contains(p.Groups, g) {
				p.Groups = append(p.Groups, g)
			}
		}
		slices.Sort(p.Groups)
	}
	return p, nil
}

func sourceGroup(source string) string {
	switch source {
	case config.SourceKeeper4lw, config.SourceKeeperLog:
		return "keeper"
	}
	return "clickhouse"
}

// Plan implements Action. It is read-only and does not contact the
// cluster.
func (a *CollectLogs) Plan(ctx context.Context, req Request) (Plan, error) {
	cl, ok := a.cfg.Cluster(req.Cluster)
	if !ok {
		return Plan{}, fmt.Errorf("collect_logs: unknown cluster %q", req.Cluster)
	}
	if err := needsRefusal(CollectLogsKind, cl); err != nil {
		return Plan{}, err
	}
	params, err := DecodeCollectLogsParams(cl, req.Params)
	if err != nil {
		return Plan{}, err
	}
	c := cl.Actions.CollectLogs
	w := Window{Anchor: req.AlertStart.UTC(), AnchorSource: "the alert group's earliest startsAt"}
	if req.AlertStart.IsZero() || req.AlertStart.Unix() <= 0 {
		w.Anchor, w.AnchorSource = req.ReceivedAt.UTC(), "the time chmedic received the alert (its startsAt was missing)"
		if req.ReceivedAt.IsZero() {
			w.Anchor, w.AnchorSource = a.deps.Now().UTC(), "the time the plan was made (no alert time was given)"
		}
	}
	if !params.Around.IsZero() {
		w.Anchor, w.AnchorSource = params.Around.UTC(), "the around parameter ("+params.Around.UTC().Format(time.RFC3339)+")"
	}
	if req.AnchorSource != "" {
		w.AnchorSource = req.AnchorSource
	}
	w.Anchor = w.Anchor.Truncate(time.Second)
	w.Since, w.Until = w.Anchor.Add(-params.Before), w.Anchor.Add(params.After)

	var sources []string
	for _, s := range c.Sources {
		if slices.Contains(params.Groups, sourceGroup(s)) {
			sources = append(sources, s)
		}
	}
	if len(sources) == 0 {
		return Plan{}, &Refusal{Reason: fmt.Sprintf("no source to collect: sources %s of cluster %q match none of %s", strings.Join(c.Sources, ","), cl.Name, strings.Join(params.Groups, ","))}
	}
	d := CollectLogsDetails{
		Window: w, Sources: sources, MaxRows: c.MaxRows, MaxSourceBytes: int64(c.MaxSourceBytes),
		MaxBundleBytes: int64(c.MaxBundleBytes), QueryTimeout: c.QueryTimeout, MaxConcurrent: c.MaxConcurrentPerNode,
	}
	if c.Upload && req.Channel != "" && req.ThreadTS != "" {
		d.Upload = &UploadTarget{Channel: req.Channel, ThreadTS: req.ThreadTS}
	}
	var steps []Step
	// Coordination nodes first: their four-letter words say whether reads
	// through Keeper are safe for the ClickHouse steps after them.
	for _, n := range cl.Keeper.Nodes {
		d.Nodes = append(d.Nodes, PlannedNode{Name: n.Name, Kind: "keeper", Address: n.Address})
		if slices.Contains(sources, config.SourceKeeper4lw) {
			words := a.fourLetterWords(cl)
			steps = append(steps, Step{ID: n.Name + "/" + config.SourceKeeper4lw, Node: n.Name,
				Title: fmt.Sprintf("four-letter words %s of %s (%s)", strings.Join(words, " "), n.Name, n.Address)})
		}
	}
	for _, n := range cl.ClickHouse.Nodes {
		d.Nodes = append(d.Nodes, PlannedNode{Name: n.Name, Kind: "clickhouse", Address: n.Address})
		for _, s := range sources {
			if sourceGroup(s) != "clickhouse" {
				continue
			}
			st := Step{ID: n.Name + "/" + s, Node: n.Name}
			if s == config.SourceServerLog {
				st.Title, st.Command = a.logStepTitle(c.Command, c.Path, FieldsFor(n), w, "server log of "+n.Name)
			} else {
				spec := tableSources[s]
				st.Title = fmt.Sprintf("%s of %s: %s", s, n.Name, spec.what)
				st.SQL = []string{spec.sql(w, c.MaxRows)}
				if spec.degradedSQL != nil {
					st.SQL = append(st.SQL, "/* instead, when the coordination service is severely degraded */ "+spec.degradedSQL(c.MaxRows))
				}
			}
			steps = append(steps, st)
		}
	}
	if slices.Contains(sources, config.SourceKeeperLog) {
		for _, n := range cl.Keeper.Nodes {
			st := Step{ID: n.Name + "/" + config.SourceKeeperLog, Node: n.Name}
			st.Title, st.Command = a.logStepTitle(c.KeeperCommand, c.KeeperPath, KeeperFieldsFor(n), w, "log of "+n.Name)
			steps = append(steps, st)
		}
	}
	steps = append(steps, Step{ID: "bundle", Title: fmt.Sprintf("redact and write the tar.gz bundle (at most %s) to the data directory", config.ByteSize(c.MaxBundleBytes))})
	if d.Upload != nil {
		steps = append(steps, Step{ID: "upload", Title: "upload the bundle into the alert's thread"})
	}
	details, _ := json.Marshal(d)
	paramsJSON, _ := json.Marshal(params)
	plan := Plan{
		Kind:    CollectLogsKind,
		Cluster: cl.Name,
		Params:  paramsJSON,
		Summary: fmt.Sprintf("Collect logs of %d ClickHouse and %d coordination nodes from %s to %s (UTC), redacted, into one bundle", len(cl.ClickHouse.Nodes), len(cl.Keeper.Nodes), w.Since.Format("2006-01-02 15:04:05"), w.Until.Format("15:04:05")),
		Method:  fmt.Sprintf("read-only: system tables as %s (max_execution_time %s, at most %d rows and %d queries at once per node), four-letter words, log commands; secrets redacted before anything is written", cl.Actions.ClickHouse.User, c.QueryTimeout, c.MaxRows, c.MaxConcurrentPerNode),
		Gates:   []Gate{{Name: "actions.clickhouse configured", OK: true, Evidence: "user " + cl.Actions.ClickHouse.User}},
		Steps:   steps,
		Notes: []string{
			"Window anchored on " + w.AnchorSource + "; its end is capped at the time of collection.",
			"The bundle holds logs that may be sensitive; passwords and credentials are redacted, with counts in manifest.json.",
			"When the coordination service is severely degraded at collection time, nothing that reads through it is queried (system.replicas without its ZooKeeper columns, no distributed_ddl_queue), and the manifest says so.",
		},
		Details:    details,
		ComputedAt: a.deps.Now().UTC(),
	}
	return plan, nil
}

func (a *CollectLogs) fourLetterWords(cl *config.Cluster) []string {
	var out []string
	for _, w := range []string{"mntr", "srvr", "cons", "wchs", "dirs", "conf"} {
		if cl.Keeper.Allows(w) {
			out = append(out, w)
		}
	}
	return out
}

func (a *CollectLogs) logStepTitle(argv []string, glob string, f NodeFields, w Window, what string) (string, []string) {
	f = WithWindow(f, w.Since, w.Until)
	switch {
	case len(argv) > 0:
		rendered, err := RenderArgv(argv, f)
		if err != nil {
			return fmt.Sprintf("%s: the command template does not render (%v); recorded as failed", what, err), nil
		}
		return fmt.Sprintf("%s via command, lines of the window", what), rendered
	case glob != "":
		p, err := RenderArgv([]string{glob}, f)
		if err != nil {
			return fmt.Sprintf("%s: the path template does not render (%v); recorded as failed", what, err), nil
		}
		return fmt.Sprintf("%s from files %s, lines of the window", what, p[0]), nil
	}
	return fmt.Sprintf("%s: not configured (no command or path); recorded as such", what), nil
}

func (a *CollectLogs) details(plan Plan) (CollectLogsDetails, *config.Cluster, error) {
	var d CollectLogsDetails
	if err := json.Unmarshal(plan.Details, &d); err != nil {
		return d, nil, fmt.Errorf("collect_logs: plan details: %w", err)
	}
	cl, ok := a.cfg.Cluster(plan.Cluster)
	if !ok {
		return d, nil, fmt.Errorf("collect_logs: cluster %q is no longer configured", plan.Cluster)
	}
	return d, cl, nil
}

// stagingDir holds the redacted per-source files of one plan until the
// bundle step packs them. It is keyed by the plan's hash: the same plan
// re-executed (a resume) writes the same files.
func (a *CollectLogs) stagingDir(plan Plan) string {
	return filepath.Join(a.deps.DataDir, "collect", plan.Hash()[:16])
}

// RemoveStaging deletes the per-source files of plan once its bundle is
// written (they are otherwise swept a day later).
func (a *CollectLogs) RemoveStaging(plan Plan) error {
	return os.RemoveAll(a.stagingDir(plan))
}

// Execute implements Action.
func (a *CollectLogs) Execute(ctx context.Context, plan Plan, step Step, prior map[string]StepResult) (StepResult, error) {
	d, cl, err := a.details(plan)
	if err != nil {
		return StepResult{}, err
	}
	switch step.ID {
	case "bundle":
		return a.bundle(ctx, plan, d, cl, prior)
	case "upload":
		return a.upload(ctx, plan, d, prior)
	}
	node, source, ok := strings.Cut(step.ID, "/")
	if !ok {
		return StepResult{}, fmt.Errorf("collect_logs: unknown step %q", step.ID)
	}
	dir := filepath.Join(a.stagingDir(plan), node)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return StepResult{}, fmt.Errorf("collect_logs: %w", err)
	}
	rec := SourceRecord{Node: node, Source: source}
	start := a.deps.Now()
	switch source {
	case config.SourceKeeper4lw:
		err = a.collect4lw(ctx, plan, cl, node, dir, &rec)
	case config.SourceKeeperLog:
		kn := keeperNode(cl, node)
		if kn == nil {
			err = fmt.Errorf("coordination node %q is no longer configured", node)
			break
		}
		c := cl.Actions.CollectLogs
		err = a.collectLog(ctx, c.KeeperCommand, c.KeeperPath, KeeperFieldsFor(*kn), c, d, dir, source, &rec)
	case config.SourceServerLog:
		cn := clickhouseNode(cl, node)
		if cn == nil {
			err = fmt.Errorf("ClickHouse node %q is no longer configured", node)
			break
		}
		c := cl.Actions.CollectLogs
		err = a.collectLog(ctx, c.Command, c.Path, FieldsFor(*cn), c, d, dir, source, &rec)
	default:
		err = a.collectTable(ctx, plan, cl, d, node, source, dir, prior, &rec)
	}
	rec.DurationMS = a.deps.Now().Sub(start).Milliseconds()
	if err != nil {
		if ctx.Err() != nil {
			return StepResult{}, err // interrupted: the runner records it
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return StepResult{}, fatal.err
		}
		// A source that could not be read is recorded, not a failure of
		// the collection.
		rec.Status, rec.Reason = StatusFailed, err.Error()
	}
	data, _ := json.Marshal(rec)
	return StepResult{Output: rec.summary(), Data: data}, nil
}

// fatalError is a failure of chmedic itself (the data directory), which
// fails the step instead of being recorded as a source's failure.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

// Verify implements Action: the files a step recorded are there with the
// sizes it recorded.
func (a *CollectLogs) Verify(ctx context.Context, plan Plan, step Step, res StepResult) error {
	switch step.ID {
	case "bundle":
		var b bundleResult
		if err := json.Unmarshal(res.Data, &b); err != nil {
			return err
		}
		fi, err := os.Stat(b.Path)
		if err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		if fi.Size() != b.Bytes {
			return fmt.Errorf("bundle %s is %d bytes, %d were written", b.Path, fi.Size(), b.Bytes)
		}
		return nil
	case "upload":
		var u uploadResult
		if err := json.Unmarshal(res.Data, &u); err != nil {
			return err
		}
		if u.FileID == "" && u.Skipped == "" {
			return errors.New("upload: no file id")
		}
		return nil
	}
	var rec SourceRecord
	if err := json.Unmarshal(res.Data, &rec); err != nil {
		return fmt.Errorf("step %s: result: %w", step.ID, err)
	}
	if rec.Status == "" {
		return fmt.Errorf("step %s: no status recorded", step.ID)
	}
	dir := filepath.Join(a.stagingDir(plan), rec.Node)
	for _, f := range rec.Files {
		fi, err := os.Stat(filepath.Join(dir, f.Name))
		if err != nil {
			return fmt.Errorf("step %s: %w", step.ID, err)
		}
		if fi.Size() != f.Bytes {
			return fmt.Errorf("step %s: %s is %d bytes, %d were recorded", step.ID, f.Name, fi.Size(), f.Bytes)
		}
	}
	return nil
}

func keeperNode(cl *config.Cluster, name string) *config.KeeperNode {
	for i := range cl.Keeper.Nodes {
		if cl.Keeper.Nodes[i].Name == name {
			return &cl.Keeper.Nodes[i]
		}
	}
	return nil
}

func clickhouseNode(cl *config.Cluster, name string) *config.ClickHouseNode {
	for i := range cl.ClickHouse.Nodes {
		if cl.ClickHouse.Nodes[i].Name == name {
			return &cl.ClickHouse.Nodes[i]
		}
	}
	return nil
}

// Source statuses in the manifest.
const (
	StatusCollected     = "collected"
	StatusNotAvailable  = "not_available"
	StatusNotConfigured = "not_configured"
	StatusSkipped       = "skipped"
	StatusFailed        = "failed"
)

// SourceRecord is what one node/source step collected (its StepResult.Data
// and its entry in manifest.json).
type SourceRecord struct {
	Node   string `json:"node"`
	Source string `json:"source"`
	// Status is collected, not_available, not_configured, skipped or
	// failed; Reason says why when it is not collected.
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Files are the source's files in the node's folder.
	Files      []SourceFile `json:"files,omitempty"`
	Rows       int64        `json:"rows,omitempty"`
	Bytes      int64        `json:"bytes"`
	Truncated  bool         `json:"truncated,omitempty"`
	Redactions int          `json:"redactions"`
	// Unreachable marks a node that could not be talked to; its later
	// sources are skipped without waiting again.
	Unreachable bool `json:"unreachable,omitempty"`
	// Query is the SQL that ran (table sources).
	Query string `json:"query,omitempty"`
	// Command is the command that ran (log sources).
	Command *CommandResult `json:"command,omitempty"`
	// Lines: read from the log, and kept (inside the window).
	LinesRead int64 `json:"lines_read,omitempty"`
	LinesKept int64 `json:"lines_kept,omitempty"`
	// Keeper is the coordination node's state (keeper_4lw).
	Keeper     *keeperState `json:"keeper,omitempty"`
	DurationMS int64        `json:"duration_ms"`
}

// SourceFile is one file of a source.
type SourceFile struct {
	Name string `json:"name"`
	// Bytes are the file's size in the bundle.
	Bytes int64 `json:"bytes"`
	Rows  int64 `json:"rows,omitempty"`
	// Truncated says the file was cut, and Truncation why (a row limit,
	// max_source_bytes, max_bundle_bytes).
	Truncated  bool   `json:"truncated,omitempty"`
	Truncation string `json:"truncation,omitempty"`
	Missing    bool   `json:"missing,omitempty"` // lost before bundling
}

func (r SourceRecord) summary() string {
	s := fmt.Sprintf("%s/%s: %s", r.Node, r.Source, r.Status)
	switch r.Status {
	case StatusCollected:
		if r.Rows > 0 || r.Source != config.SourceServerLog && r.Source != config.SourceKeeperLog && r.Source != config.SourceKeeper4lw {
			s += fmt.Sprintf(", %d rows", r.Rows)
		}
		if r.LinesKept > 0 {
			s += fmt.Sprintf(", %d lines", r.LinesKept)
		}
		s += ", " + humanBytes(r.Bytes)
		if r.Truncated {
			s += " (truncated)"
		}
		if r.Redactions > 0 {
			s += fmt.Sprintf(", %d redacted", r.Redactions)
		}
	default:
		if r.Reason != "" {
			s += ": " + r.Reason
		}
	}
	return s
}
