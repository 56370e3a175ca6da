// Package probe owns chmedic's diagnostic probes: small, named, read-only checks
// of one ClickHouse node or one coordination (ZooKeeper / ClickHouse Keeper) node.
//
// A probe never fails the diagnosis: an unreachable node, a query the server
// rejects or a table this server version lacks is itself a Result (status
// unknown or crit, with the error), so the report always has every section.
// Each probe lives in its own file and is registered in Builtin.
package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/keeper"
)

// Status is the verdict of one probe on one node.
type Status int

// Statuses, ordered from best to worst so that comparisons rank them.
const (
	OK Status = iota
	Unknown
	Warn
	Crit
)

var statusNames = [...]string{OK: "ok", Unknown: "unknown", Warn: "warn", Crit: "crit"}

func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return fmt.Sprintf("status(%d)", int(s))
	}
	return statusNames[s]
}

// ParseStatus is the inverse of String.
func ParseStatus(s string) (Status, error) {
	for i, n := range statusNames {
		if n == s {
			return Status(i), nil
		}
	}
	return Unknown, fmt.Errorf("unknown status %q", s)
}

// MarshalText encodes the status by name.
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a status name.
func (s *Status) UnmarshalText(b []byte) error {
	v, err := ParseStatus(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Worse reports whether s is worse than o.
func (s Status) Worse(o Status) bool { return s > o }

// Kind says what a probe talks to.
type Kind string

// Probe kinds.
const (
	KindClickHouse Kind = "clickhouse"
	KindKeeper     Kind = "keeper"
)

// Table is tabular evidence: rows as display strings.
type Table struct {
	Title   string     `json:"title,omitempty"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
	// Omitted counts rows left out to keep the evidence short.
	Omitted int `json:"omitted,omitempty"`
}

// Result is what one probe found on one node.
type Result struct {
	Probe   string `json:"probe"`
	Node    string `json:"node"`
	Status  Status `json:"status"`
	Summary string `json:"summary"`
	// Facts are the numbers the cause analysis reads (names are per probe and
	// documented in the probe's file), e.g. "latency_ms", "readonly_replicas".
	Facts map[string]float64 `json:"facts,omitempty"`
	// Attrs are string facts, e.g. "server_state": "leader", "version": "23.8.1".
	Attrs map[string]string `json:"attrs,omitempty"`
	// Evidence is what an engineer would want to see to trust the summary.
	Evidence []Table `json:"evidence,omitempty"`
	// Error is set when the probe could not do its work (the node is down,
	// the query failed). Status is then Unknown or Crit.
	Error string `json:"error,omitempty"`
	// Skipped says why the probe did not run (e.g. "keeper severely degraded").
	Skipped  string        `json:"skipped,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
}

// Fact returns a numeric fact and whether it is present.
func (r *Result) Fact(name string) (float64, bool) {
	v, ok := r.Facts[name]
	return v, ok
}

// SetFact records a numeric fact.
func (r *Result) SetFact(name string, v float64) {
	if r.Facts == nil {
		r.Facts = make(map[string]float64)
	}
	r.Facts[name] = v
}

// SetAttr records a string fact.
func (r *Result) SetAttr(name, v string) {
	if r.Attrs == nil {
		r.Attrs = make(map[string]string)
	}
	r.Attrs[name] = v
}

// Raise sets the status to s when s is worse than the current one.
func (r *Result) Raise(s Status) {
	if s.Worse(r.Status) {
		r.Status = s
	}
}

// Fail records err as the reason the probe could not complete.
func (r *Result) Fail(status Status, err error, summary string) {
	r.Status = status
	r.Error = err.Error()
	r.Summary = summary
}

// Unavailable marks a probe whose table or column this server lacks.
// Such a result is not a finding: the report lists it apart, as a check
// this server cannot answer.
func (r *Result) Unavailable(what, version string) {
	r.Status = Unknown
	r.Summary = fmt.Sprintf("not available on ClickHouse %s: %s", version, what)
	r.SetAttr(AttrUnavailable, what)
}

// AttrUnavailable marks a result whose check this server cannot answer.
const AttrUnavailable = "unavailable"

// IsUnavailable reports whether the check is not available on the server.
func (r *Result) IsUnavailable() bool { return r.Attrs[AttrUnavailable] != "" }

// MarshalJSON keeps durations readable.
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		plain
		Duration string `json:"duration"`
	}{plain(r), r.Duration.String()})
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (r *Result) UnmarshalJSON(b []byte) error {
	type plain Result
	var v struct {
		plain
		Duration string `json:"duration"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Result(v.plain)
	if v.Duration != "" {
		d, err := time.ParseDuration(v.Duration)
		if err != nil {
			return fmt.Errorf("result duration: %w", err)
		}
		r.Duration = d
	}
	return nil
}

// Spec describes one probe. Run fills in Status, Summary, Facts, Attrs and
// Evidence; the engine sets Probe, Node, Started and Duration.
type Spec struct {
	Name string
	Kind Kind
	// Expensive probes read system.zookeeper and so add load to the
	// coordination service; they are skipped when it is already degraded.
	Expensive bool
	// PerCluster probes read cluster-wide state (the DDL queue, the
	// metadata tree): they run on one healthy node, not on every node.
	PerCluster bool
	// Doc is one line for `chmedic playbooks` and the README.
	Doc string
	Run func(ctx context.Context, t *Target) Result
}

// Target is the node a probe examines and what it may use to do so.
type Target struct {
	Cluster string
	Node    string
	Addr    string
	// ClickHouse is set for ClickHouse probes.
	ClickHouse ClickHouse
	// Keeper is set for keeper probes: the node's four-letter-word
	// snapshot, taken once per round (probes only evaluate it).
	Keeper *keeper.Snapshot
	// KeeperKind is clusters[].keeper.kind: how the answers are read
	// (an empty answer is a whitelist refusal on ClickHouse Keeper, isro's
	// "ro" means an observer there) and what advice is given. Unknown: the
	// kind the server says it is, else ZooKeeper.
	KeeperKind keeper.Flavor
	Thresholds Thresholds
	// Now is the clock (tests fix it).
	Now func() time.Time
	// Samples, when set, remembers counter samples between rounds: a
	// probe computes rates against the previous round's sample instead of
	// waiting for a second one (clickhouse.keeper_errors). Nil: the probe
	// samples twice within the round.
	Samples *Samples
}

// ClickHouse is what ClickHouse probes need from one node's connection.
type ClickHouse interface {
	// Query runs a read-only statement and returns all rows.
	Query(ctx context.Context, query string, args ...any) ([]clickhouse.Row, error)
	// ServerVersion is the node's version (cached by the implementation).
	ServerVersion(ctx context.Context) (clickhouse.Version, error)
	// HasTable reports whether database.table exists (cached).
	HasTable(ctx context.Context, database, table string) (bool, error)
	// HasColumn reports whether database.table has column (cached).
	HasColumn(ctx context.Context, database, table, column string) (bool, error)
}

// Thresholds are the limits that turn numbers into warn and crit.
type Thresholds struct {
	KeeperLatencyWarn         time.Duration
	KeeperLatencyCrit         time.Duration
	ReplicaDelayWarn          time.Duration
	ReplicationQueueTriesWarn int
	ReplicationQueueTriesCrit int
	DDLStuckAfter             time.Duration
	DDLStormWindow            time.Duration
	DDLStormCount             int
	OutstandingRequestsWarn   int
	OutstandingRequestsCrit   int
	ConnectionsRatioWarn      float64
	FDRatioWarn               float64
	ZnodeCountWarn            int
	ReplicatedTablesWarn      int
	// ZxidWarnShare is the share of 2^32 at which a ZooKeeper zxid
	// counter warns (diagnosis.thresholds.zxid_warn_share).
	ZxidWarnShare float64
}

// DefaultThresholds are the limits of the reference runbooks: the
// configuration's defaults (internal/config keeps them, once).
func DefaultThresholds() Thresholds { return FromConfig(config.DefaultDiagnosis()) }

// FromConfig converts the configuration's diagnosis thresholds.
func FromConfig(d config.Diagnosis) Thresholds {
	t := d.Thresholds
	return Thresholds{
		KeeperLatencyWarn:         t.KeeperLatencyWarn,
		KeeperLatencyCrit:         t.KeeperLatencyCrit,
		ReplicaDelayWarn:          t.ReplicaDelayWarn,
		ReplicationQueueTriesWarn: t.ReplicationQueueTriesWarn,
		ReplicationQueueTriesCrit: t.ReplicationQueueTriesCrit,
		DDLStuckAfter:             t.DDLStuckAfter,
		DDLStormWindow:            d.DDLStormWindow,
		DDLStormCount:             t.DDLStormCount,
		OutstandingRequestsWarn:   t.OutstandingRequestsWarn,
		OutstandingRequestsCrit:   t.OutstandingRequestsCrit,
		ConnectionsRatioWarn:      t.ConnectionsRatioWarn,
		FDRatioWarn:               t.FDRatioWarn,
		ZnodeCountWarn:            t.ZnodeCountWarn,
		ReplicatedTablesWarn:      t.ReplicatedTablesWarn,
		ZxidWarnShare:             t.ZxidWarnShare,
	}
}

// LatencyStatus classifies a coordination round-trip.
func (t Thresholds) LatencyStatus(d time.Duration) Status {
	switch {
	case d >= t.KeeperLatencyCrit:
		return Crit
	case d >= t.KeeperLatencyWarn:
		return Warn
	}
	return OK
}

// RoundTripStatus classifies the time ClickHouse takes to read the
// coordination service (system.zookeeper): that query makes several
// coordination requests and carries the server's own overhead, so the
// runbooks read it on a coarser scale than one operation's latency: under
// KeeperLatencyCrit is normal, up to ten times that is stressed, beyond is
// saturation.
func (t Thresholds) RoundTripStatus(d time.Duration) Status {
	switch {
	case d >= 10*t.KeeperLatencyCrit:
		return Crit
	case d >= t.KeeperLatencyCrit:
		return Warn
	}
	return OK
}

// Truncate keeps at most n rows of tbl, counting the rest in Omitted.
func Truncate(tbl Table, n int) Table {
	if len(tbl.Rows) > n {
		tbl.Omitted += len(tbl.Rows) - n
		tbl.Rows = tbl.Rows[:n]
	}
	return tbl
}

// OneLine flattens an error or exception text to one short line.
func OneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if max > 0 && len(s) > max {
		cut := max
		for cut > 0 && (s[cut]&0xC0) == 0x80 { // do not split a UTF-8 sequence
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}
