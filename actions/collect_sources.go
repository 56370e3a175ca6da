package actions

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
)

// tableSource is one ClickHouse system table collect_logs reads.
type tableSource struct {
	table string
	what  string
	sql   func(w Window, maxRows int) string
	// degradedSQL replaces sql when the coordination service is severely
	// degraded (the columns that read through it left out).
	degradedSQL func(maxRows int) string
	// throughKeeper: reading the table reads the coordination service; it
	// is skipped when that is severely degraded.
	throughKeeper bool
}

// windowed returns the rows of a log table inside the window; the extra
// condition narrows them. LIMIT is one more than maxRows, to tell a cut.
func windowed(table, extra string) func(w Window, maxRows int) string {
	return func(w Window, maxRows int) string {
		s, u := w.Since.Unix(), w.Until.Unix()
		q := fmt.Sprintf("SELECT * FROM system.%s WHERE event_date >= toDate(toDateTime(%d)) AND event_date <= toDate(toDateTime(%d)) "+
			"AND event_time >= toDateTime(%d) AND event_time <= toDateTime(%d)", table, s, u, s, u)
		if extra != "" {
			q += " AND " + extra
		}
		return q + fmt.Sprintf(" ORDER BY event_time LIMIT %d", maxRows+1)
	}
}

func snapshot(table string) func(Window, int) string {
	return func(_ Window, maxRows int) string {
		return fmt.Sprintf("SELECT * FROM system.%s LIMIT %d", table, maxRows+1)
	}
}

// replicasLocalColumns are the columns of system.replicas that do not read
// the coordination service (log_max_index, log_pointer, last_queue_update,
// total_replicas, active_replicas and the like do).
var replicasLocalColumns = []string{
	"database", "table", "engine", "is_leader", "is_readonly", "is_session_expired", "future_parts", "parts_to_check",
	"zookeeper_path", "replica_name", "replica_path", "columns_version", "queue_size", "inserts_in_queue", "merges_in_queue",
	"queue_oldest_time", "inserts_oldest_time", "merges_oldest_time", "oldest_part_to_get", "oldest_part_to_merge_to", "absolute_delay",
}

func replicasLocalSQL(cols []string, maxRows int) string {
	return fmt.Sprintf("SELECT %s FROM system.replicas LIMIT %d", strings.Join(cols, ", "), maxRows+1)
}

var tableSources = map[string]tableSource{
	config.SourceTextLog:      {table: "text_log", what: "the server's log table, rows of the window", sql: windowed("text_log", "")},
	config.SourceQueryLog:     {table: "query_log", what: "queries of the window that failed, and all DDL", sql: windowed("query_log", `(exception != '' OR match(query, '(?i)^\\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE|ATTACH|DETACH)\\b'))`)},
	config.SourceZooKeeperLog: {table: "zookeeper_log", what: "requests to the coordination service, rows of the window", sql: windowed("zookeeper_log", "")},
	config.SourcePartLog:      {table: "part_log", what: "part events of the window", sql: windowed("part_log", "")},
	config.SourceReplicas: {table: "replicas", what: "snapshot of the replicated tables' state", sql: snapshot("replicas"),
		degradedSQL: func(maxRows int) string { return replicasLocalSQL(replicasLocalColumns, maxRows) }},
	config.SourceReplicationQueue:    {table: "replication_queue", what: "snapshot of the replication queue", sql: snapshot("replication_queue")},
	config.SourceDistributedDDLQueue: {table: "distributed_ddl_queue", what: "snapshot of the ON CLUSTER DDL queue", sql: snapshot("distributed_ddl_queue"), throughKeeper: true},
	config.SourceZooKeeperConnection: {table: "zookeeper_connection", what: "snapshot of the connection to the coordination service", sql: snapshot("zookeeper_connection")},
	config.SourceEvents:              {table: "events", what: "snapshot of the server's event counters", sql: snapshot("events")},
}

// keeperState is what the four-letter words said about a coordination node.
type keeperState struct {
	Answered            bool    `json:"answered"`
	AvgLatencyMS        float64 `json:"avg_latency_ms,omitempty"`
	OutstandingRequests int64   `json:"outstanding_requests,omitempty"`
	ServerState         string  `json:"server_state,omitempty"`
}

// severity is the coordination service's state for a collection: Reason
// is set when it is severely degraded (nothing reads through it then).
type severity struct {
	Reason string
}

func (a *CollectLogs) keeperSeverity(ctx context.Context, plan Plan, cl *config.Cluster, prior map[string]StepResult) severity {
	th := a.cfg.Diagnosis.Thresholds
	var states []struct {
		name string
		st   keeperState
	}
	for _, n := range cl.Keeper.Nodes {
		res, ok := prior[n.Name+"/"+config.SourceKeeper4lw]
		if !ok {
			continue
		}
		var rec SourceRecord
		if json.Unmarshal(res.Data, &rec) == nil && rec.Keeper != nil {
			states = append(states, struct {
				name string
				st   keeperState
			}{n.Name, *rec.Keeper})
		}
	}
	if len(states) == 0 && len(cl.Keeper.Nodes) > 0 {
		// keeper_4lw is not collected: measure once per plan with mntr.
		hash := plan.Hash()
		a.mu.Lock()
		s, ok := a.severity[hash]
		a.mu.Unlock()
		if ok {
			return s
		}
		for _, n := range cl.Keeper.Nodes {
			var st keeperState
			if cl.Keeper.Allows("mntr") {
				snap := a.deps.Keeper.Snapshot(ctx, n.Address, []string{"mntr"})
				if m := snap.Mntr; m != nil && m.Err == nil {
					st = keeperState{Answered: true, AvgLatencyMS: m.Value.AvgLatency, OutstandingRequests: m.Value.OutstandingRequests, ServerState: m.Value.ServerState}
				}
			}
			states = append(states, struct {
				name string
				st   keeperState
			}{n.Name, st})
		}
		s = judge(states, th)
		a.mu.Lock()
		a.severity[hash] = s
		a.mu.Unlock()
		return s
	}
	return judge(states, th)
}

func judge(states []struct {
	name string
	st   keeperState
}, th config.Thresholds) severity {
	if len(states) == 0 {
		return severity{}
	}
	answering := 0
	for _, s := range states {
		if !s.st.Answered {
			continue
		}
		answering++
		if s.st.AvgLatencyMS >= float64(th.KeeperLatencyCrit.Milliseconds()) {
			return severity{Reason: fmt.Sprintf("coordination node %s is severely degraded (average latency %.0f ms ≥ %s): nothing that reads through it was queried", s.name, s.st.AvgLatencyMS, th.KeeperLatencyCrit)}
		}
		if s.st.OutstandingRequests >= int64(th.OutstandingRequestsCrit) {
			return severity{Reason: fmt.Sprintf("coordination node %s has %d outstanding requests (≥ %d): nothing that reads through it was queried", s.name, s.st.OutstandingRequests, th.OutstandingRequestsCrit)}
		}
	}
	if answering == 0 {
		return severity{Reason: fmt.Sprintf("none of the %d coordination nodes answers its four-letter words: nothing that reads through it was queried", len(states))}
	}
	return severity{}
}

// nodeUnreachable returns the earlier step that found node unreachable.
func nodeUnreachable(node string, prior map[string]StepResult) (string, string) {
	ids := make([]string, 0, len(prior))
	for id := range prior {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if !strings.HasPrefix(id, node+"/") {
			continue
		}
		var rec SourceRecord
		if json.Unmarshal(prior[id].Data, &rec) == nil && rec.Unreachable {
			return id, rec.Reason
		}
	}
	return "", ""
}

func (a *CollectLogs) collectTable(ctx context.Context, plan Plan, cl *config.Cluster, d CollectLogsDetails, node, source, dir string, prior map[string]StepResult, rec *SourceRecord) error {
	spec, ok := tableSources[source]
	if !ok {
		return fmt.Errorf("unknown source %q", source)
	}
	if id, why := nodeUnreachable(node, prior); id != "" {
		rec.Status, rec.Reason, rec.Unreachable = StatusSkipped, fmt.Sprintf("node unreachable (%s: %s)", id, why), true
		return nil
	}
	cn := clickhouseNode(cl, node)
	if cn == nil {
		return fmt.Errorf("ClickHouse node %q is no longer configured", node)
	}
	sev := severity{}
	if spec.throughKeeper || spec.degradedSQL != nil {
		sev = a.keeperSeverity(ctx, plan, cl, prior)
	}
	if spec.throughKeeper && sev.Reason != "" {
		rec.Status, rec.Reason = StatusSkipped, sev.Reason
		return nil
	}
	n, err := a.deps.OpenClickHouse(cl, *cn, NodeTuning{MaxConns: d.MaxConcurrent, QueryTimeout: d.QueryTimeout})
	if err != nil {
		return err
	}
	defer n.Close()
	qctx, cancel := context.WithTimeout(ctx, d.QueryTimeout)
	defer cancel()
	exists, err := n.HasTable(qctx, "system", spec.table)
	if err != nil {
		return a.nodeErr(rec, err)
	}
	if !exists {
		rec.Status = StatusNotAvailable
		rec.Reason = "system." + spec.table + " does not exist on this server"
		if v, err := n.ServerVersion(qctx); err == nil {
			rec.Reason += " (" + v.String() + ")"
		}
		return nil
	}
	query := spec.sql(d.Window, d.MaxRows)
	if sev.Reason != "" && spec.degradedSQL != nil {
		var cols []string
		for _, c := range replicasLocalColumns {
			if ok, err := n.HasColumn(qctx, "system", spec.table, c); err == nil && ok {
				cols = append(cols, c)
			}
		}
		query = replicasLocalSQL(cols, d.MaxRows)
		rec.Reason = sev.Reason + " (read without the columns that query it)"
	}
	rec.Query = query
	qctx2, cancel2 := context.WithTimeout(ctx, d.QueryTimeout)
	defer cancel2()
	rows, err := n.Query(qctx2, query)
	if err != nil {
		return a.nodeErr(rec, err)
	}
	f := SourceFile{Name: source + ".jsonl"}
	if len(rows) > d.MaxRows {
		rows = rows[:d.MaxRows]
		f.Truncated, f.Truncation = true, fmt.Sprintf("more than max_rows (%d) rows", d.MaxRows)
	}
	var red Redactor
	out, err := os.Create(filepath.Join(dir, f.Name))
	if err != nil {
		return &fatalError{err}
	}
	bw := bufio.NewWriter(out)
	for _, row := range rows {
		clean := make(map[string]any, len(row))
		for k, v := range row {
			clean[k] = red.Value(v)
		}
		line, err := json.Marshal(clean)
		if err != nil {
			line, _ = json.Marshal(map[string]string{"error": "row not encodable: " + err.Error()})
		}
		line = append(line, '\n')
		if f.Bytes+int64(len(line)) > d.MaxSourceBytes {
			f.Truncated, f.Truncation = true, fmt.Sprintf("max_source_bytes (%s) reached after %d rows", config.ByteSize(d.MaxSourceBytes), f.Rows)
			break
		}
		bw.Write(line)
		f.Bytes += int64(len(line))
		f.Rows++
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return &fatalError{err}
	}
	if err := out.Close(); err != nil {
		return &fatalError{err}
	}
	rec.Status = StatusCollected
	rec.Files = []SourceFile{f}
	rec.Rows, rec.Bytes, rec.Truncated, rec.Redactions = f.Rows, f.Bytes, f.Truncated, red.Count
	return nil
}

func (a *CollectLogs) nodeErr(rec *SourceRecord, err error) error {
	if clickhouse.IsUnreachable(err) {
		rec.Unreachable = true
		return fmt.Errorf("node unreachable: %s", clickhouse.Cause(err))
	}
	if clickhouse.IsTimeout(err) {
		return fmt.Errorf("timed out: %s", clickhouse.Cause(err))
	}
	return errors.New(clickhouse.Cause(err))
}

func (a *CollectLogs) collect4lw(ctx context.Context, plan Plan, cl *config.Cluster, node, dir string, rec *SourceRecord) error {
	kn := keeperNode(cl, node)
	if kn == nil {
		return fmt.Errorf("coordination node %q is no longer configured", node)
	}
	words := a.fourLetterWords(cl)
	if len(words) == 0 {
		rec.Status, rec.Reason = StatusSkipped, "keeper.commands allows none of mntr srvr cons wchs dirs conf"
		return nil
	}
	snap := a.deps.Keeper.Snapshot(ctx, kn.Address, words)
	var red Redactor
	st := keeperState{}
	var failed []string
	for _, r := range snap.All {
		if r.Skipped || (r.Raw == "" && r.Err != nil) {
			failed = append(failed, fmt.Sprintf("%s: %v", r.Cmd, r.Err))
			continue
		}
		text := red.String(r.Raw)
		if r.Err != nil {
			text += "\n# chmedic: " + red.String(r.Err.Error()) + "\n"
			failed = append(failed, fmt.Sprintf("%s: %v", r.Cmd, r.Err))
		}
		name := r.Cmd + ".txt"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o640); err != nil {
			return &fatalError{err}
		}
		rec.Files = append(rec.Files, SourceFile{Name: name, Bytes: int64(len(text))})
		rec.Bytes += int64(len(text))
		if r.Err == nil {
			st.Answered = true
		}
	}
	if m := snap.Mntr; m != nil && m.Err == nil {
		st.AvgLatencyMS, st.OutstandingRequests, st.ServerState = m.Value.AvgLatency, m.Value.OutstandingRequests, m.Value.ServerState
	}
	rec.Keeper = &st
	rec.Redactions = red.Count
	switch {
	case len(rec.Files) == 0:
		rec.Status, rec.Unreachable = StatusFailed, snap.Unreachable
		rec.Reason = strings.Join(failed, "; ")
	default:
		rec.Status = StatusCollected
		if len(failed) > 0 {
			rec.Reason = "partly: " + strings.Join(failed, "; ")
		}
	}
	return nil
}

// collectLog reads a node's log through the command or the path glob,
// keeping the lines of the window, redacted, up to max_source_bytes.
func (a *CollectLogs) collectLog(ctx context.Context, argv []string, glob string, fields NodeFields, c config.CollectLogs, d CollectLogsDetails, dir, source string, rec *SourceRecord) error {
	until := d.Window.Until
	if now := a.deps.Now(); now.Before(until) {
		until = now
	}
	fields = WithWindow(fields, d.Window.Since, d.Window.Until)
	if len(argv) == 0 && glob == "" {
		rec.Status, rec.Reason = StatusNotConfigured, "no command or path is configured for it"
		return nil
	}
	f := SourceFile{Name: source + ".log"}
	out, err := os.Create(filepath.Join(dir, f.Name))
	if err != nil {
		return &fatalError{err}
	}
	bw := bufio.NewWriter(out)
	red := &Redactor{}
	lf := &LogFilter{Since: d.Window.Since, Until: until, Loc: c.Location(), Redact: red, W: bw, MaxBytes: d.MaxSourceBytes}
	var runErr error
	if len(argv) > 0 {
		rendered, err := RenderArgv(argv, fields)
		if err != nil {
			out.Close()
			return fmt.Errorf("command template: %w", err)
		}
		pr, pw := io.Pipe()
		filterDone := make(chan error, 1)
		go func() {
			err := lf.Filter(pr)
			pr.CloseWithError(err)
			filterDone <- err
		}()
		res, err := a.deps.Commands.Run(ctx, Command{Argv: rendered, Timeout: c.Timeout, Stdout: pw})
		pw.Close()
		ferr := <-filterDone
		res.Stderr = red.String(res.Stderr)
		rec.Command = &res
		runErr = errors.Join(err, ferr)
	} else {
		p, err := RenderArgv([]string{glob}, fields)
		if err != nil {
			out.Close()
			return fmt.Errorf("path template: %w", err)
		}
		runErr = a.readFiles(ctx, p[0], d.Window.Since, lf)
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return &fatalError{err}
	}
	if err := out.Close(); err != nil {
		return &fatalError{err}
	}
	f.Bytes, f.Rows = lf.Written, lf.LinesKept-lf.LinesDropped
	if lf.Truncated {
		f.Truncated, f.Truncation = true, fmt.Sprintf("max_source_bytes (%s) reached; %d lines of the window left out", config.ByteSize(d.MaxSourceBytes), lf.LinesDropped)
	}
	rec.Files = []SourceFile{f}
	rec.Bytes, rec.Truncated, rec.Redactions = f.Bytes, f.Truncated, red.Count
	rec.LinesRead, rec.LinesKept = lf.LinesRead, lf.LinesKept-lf.LinesDropped
	if runErr != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if lf.Written > 0 {
			rec.Status, rec.Reason = StatusCollected, "partly: "+red.String(runErr.Error())
			return nil
		}
		os.Remove(filepath.Join(dir, f.Name))
		rec.Files, rec.Bytes = nil, 0
		return errors.New(red.String(runErr.Error()))
	}
	rec.Status = StatusCollected
	if lf.LinesKept == 0 {
		rec.Reason = fmt.Sprintf("no line of the window among %d lines read", lf.LinesRead)
	}
	return nil
}

// readFiles filters the files matching glob, oldest first; files last
// written before the window are skipped, .gz files are decompressed.
func (a *CollectLogs) readFiles(ctx context.Context, glob string, since time.Time, lf *LogFilter) error {
	paths, err := filepath.Glob(glob)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("no file matches %s", glob)
	}
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() {
			continue
		}
		if fi.ModTime().Before(since) {
			continue
		}
		files = append(files, file{p, fi.ModTime()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	var errs []error
	for _, f := range files {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := readOne(f.path, lf); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.path, err))
		}
	}
	return errors.Join(errs...)
}

func readOne(path string, lf *LogFilter) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	var r io.Reader = fh
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(fh)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = gz
	}
	return lf.Filter(r)
}
