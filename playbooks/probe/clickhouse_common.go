package probe

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// Shared plumbing of the ClickHouse probes (clickhouse_*.go): how an error
// becomes a Result, version look-ups, and formatting of evidence cells.

// evidenceRows is how many rows a ClickHouse probe's evidence table keeps.
const evidenceRows = 20

// chProbe runs body with the node's connection, after the common checks,
// and fills in what every ClickHouse probe needs.
func chProbe(t *Target, body func(r *Result)) Result {
	var r Result
	if t == nil || t.ClickHouse == nil {
		r.Fail(Unknown, errors.New("no ClickHouse connection for this target"), "no ClickHouse connection configured for this node")
		return r
	}
	body(&r)
	return r
}

// nodeLabel names the target in summaries.
func nodeLabel(t *Target) string {
	switch {
	case t.Node != "":
		return t.Node
	case t.Addr != "":
		return t.Addr
	}
	return "node"
}

// now is the target's clock.
func now(t *Target) time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// errClass sorts a query error into what it means for a diagnosis.
type errClass int

const (
	errServer       errClass = iota // the server answered with an exception
	errUnreachable                  // could not talk to the node at all
	errTimeout                      // no complete answer before the deadline
	errCoordination                 // the server's coordination service failed
	errUnknownTable                 // the table is not there after all
)

func chClassify(err error) errClass {
	switch {
	case clickhouse.IsCoordination(err):
		return errCoordination
	case clickhouse.IsUnknownTable(err):
		return errUnknownTable
	case clickhouse.Exception(err) != nil:
		if clickhouse.ErrorCode(err) == clickhouse.CodeTimeoutExceeded {
			return errTimeout
		}
		return errServer
	case clickhouse.IsTimeout(err):
		return errTimeout
	case clickhouse.IsUnreachable(err):
		return errUnreachable
	}
	return errUnreachable
}

// cause is the error text without the client's node prefix, on one line.
func chCause(err error) string {
	return OneLine(clickhouse.Cause(err), 300)
}

// deadlineText says how long the caller allowed, for timeout summaries.
func deadlineText(ctx context.Context, started time.Time) string {
	if dl, ok := ctx.Deadline(); ok {
		return dl.Sub(started).Round(10 * time.Millisecond).String()
	}
	return time.Since(started).Round(10 * time.Millisecond).String()
}

// failQuery records a failed query of what (e.g. "system.replicas") as the
// probe's result. Unreachable nodes and timeouts are Unknown here (the ping
// probe owns the verdict on liveness); a coordination failure is
// coordStatus; other server errors are Unknown.
func failQuery(ctx context.Context, r *Result, t *Target, err error, what string, coordStatus Status, started time.Time) {
	node := nodeLabel(t)
	switch chClassify(err) {
	case errUnreachable:
		r.Fail(Unknown, err, fmt.Sprintf("node %s unreachable: %s", node, chCause(err)))
	case errTimeout:
		r.Fail(Unknown, err, fmt.Sprintf("node %s: %s did not answer within %s: %s", node, what, deadlineText(ctx, started), chCause(err)))
	case errCoordination:
		r.Fail(coordStatus, err, fmt.Sprintf("node %s cannot read %s: coordination service error: %s", node, what, exceptionLine(err)))
	case errUnknownTable:
		r.Fail(Unknown, err, fmt.Sprintf("node %s: %s does not exist: %s", node, what, exceptionLine(err)))
	default:
		r.Fail(Unknown, err, fmt.Sprintf("node %s: query of %s failed: %s", node, what, exceptionLine(err)))
	}
}

// exceptionLine renders a server exception as "Code 999: message" on one
// line, or the error's cause.
func exceptionLine(err error) string {
	if ex := clickhouse.Exception(err); ex != nil {
		return OneLine(fmt.Sprintf("Code %d: %s", ex.Code, ex.Message), 300)
	}
	return chCause(err)
}

// serverVersion returns the node's version for Unavailable messages; the
// error is already turned into r when it is not nil.
func serverVersion(ctx context.Context, r *Result, t *Target) (clickhouse.Version, bool) {
	started := time.Now()
	v, err := t.ClickHouse.ServerVersion(ctx)
	if err != nil {
		failQuery(ctx, r, t, err, "version()", Unknown, started)
		return v, false
	}
	return v, true
}

// requireTable asks whether system.<table> exists; false with r filled in
// on error or when it is missing (Unavailable, naming why).
func requireTable(ctx context.Context, r *Result, t *Target, table, why string) (clickhouse.Version, bool) {
	v, ok := serverVersion(ctx, r, t)
	if !ok {
		return v, false
	}
	started := time.Now()
	has, err := t.ClickHouse.HasTable(ctx, "system", table)
	if err != nil {
		failQuery(ctx, r, t, err, "system.tables", Unknown, started)
		return v, false
	}
	if !has {
		what := "system." + table
		if why != "" {
			what += " (" + why + ")"
		}
		r.Unavailable(what, v.String())
		return v, false
	}
	return v, true
}

// hasColumns reports which of cols system.<table> has; ok is false (and r
// filled in) on error.
func hasColumns(ctx context.Context, r *Result, t *Target, table string, cols ...string) (map[string]bool, bool) {
	out := make(map[string]bool, len(cols))
	for _, c := range cols {
		started := time.Now()
		has, err := t.ClickHouse.HasColumn(ctx, "system", table, c)
		if err != nil {
			failQuery(ctx, r, t, err, "system.columns", Unknown, started)
			return nil, false
		}
		out[c] = has
	}
	return out, true
}

// query runs sql and, on error, fills r via failQuery.
func chQuery(ctx context.Context, r *Result, t *Target, what string, coordStatus Status, sql string) ([]clickhouse.Row, bool) {
	started := time.Now()
	rows, err := t.ClickHouse.Query(ctx, sql)
	if err != nil {
		failQuery(ctx, r, t, err, what, coordStatus, started)
		return nil, false
	}
	return rows, true
}

// Cell formatting for evidence tables.

func fmtInt(v int64) string { return strconv.FormatInt(v, 10) }

func fmtFloat(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func fmtFlag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func fmtTime(tm time.Time) string {
	if tm.IsZero() || tm.Unix() <= 0 {
		return ""
	}
	return tm.UTC().Format("2006-01-02 15:04:05")
}

func fmtSeconds(s float64) string {
	return (time.Duration(s) * time.Second).String()
}

// sqlString quotes s as a ClickHouse string literal.
func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// plural returns "1 thing" / "2 things".
func pluralize(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmtInt(n) + " " + many
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
