package profile

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/ddlfreeze"
)

// CodeQueryIsProhibited is ClickHouse's QUERY_IS_PROHIBITED: "DDL queries
// are prohibited for the user".
const CodeQueryIsProhibited = 392

// ProbeDatabase is the database the DDL probe names; it must not exist.
const ProbeDatabase = "chmedic_ddl_freeze_probe_nonexistent"

// Checker reads, on one node, what a new session of a frozen profile gets.
//
// Settings come from the profile a user logs in with and are fixed for the
// session, so the check must open a new session as a user of the target
// profile. Two choices of credentials:
//
//   - the target user's own (chmedic then holds an application password;
//     avoid it), or
//   - a dedicated check user, e.g. chmedic_ddl_check, defined in users.xml
//     with the target's <profile>, <networks> limited to chmedic's host and
//     <allow_databases><database>system</database></allow_databases>, and
//     Node.Database "system": it reads system.settings like any user (the
//     system database is always allowed) and can touch no other database,
//     even while DDL is allowed.
//
// On 18.16 profiles are tied to users in users.xml, so one check user per
// frozen profile.
type Checker struct {
	// Node is the node's address and the check credentials. MaxConns and
	// the timeouts are set by Check.
	Node clickhouse.NodeConfig
	// Timeout bounds one check (default 5 s).
	Timeout time.Duration
	// ProbeDDL also runs DROP TABLE IF EXISTS on a database that does not
	// exist (ProbeDatabase), which must fail with code 392 when frozen. It
	// changes nothing either way, but it proves the freeze only where the
	// allow_ddl check comes before the table lookup: servers before 20.4
	// (InterpreterDropQuery::checkAccess first). On newer servers the probe
	// is skipped and the setting alone is the answer.
	ProbeDDL bool
}

// State is what a new session of the profile sees.
type State struct {
	Version clickhouse.Version
	// AllowDDL is the allow_ddl value of the new session; Changed says it
	// differs from the default (1).
	AllowDDL bool
	Changed  bool
	// Probe is "prohibited" (code 392), "allowed" (anything else), or ""
	// when not run; ProbeError is the server's answer.
	Probe      string
	ProbeError string
}

// Frozen reports whether DDL is off for new sessions: the setting is 0 and
// the probe, when it ran, was refused.
func (s State) Frozen() bool { return !s.AllowDDL && s.Probe != "allowed" }

// String says it in one line for the plan and the report.
func (s State) String() string {
	v := "1"
	if !s.AllowDDL {
		v = "0"
	}
	out := fmt.Sprintf("allow_ddl=%s in a new session (ClickHouse %s)", v, s.Version)
	switch s.Probe {
	case "prohibited":
		out += "; a DDL probe got code 392"
	case "allowed":
		out += "; a DDL probe was not refused (" + s.ProbeError + ")"
	}
	return out
}

// Check opens a new session (a connection of its own, closed afterwards)
// and reads the setting.
func (c Checker) Check(ctx context.Context) (State, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cfg := c.Node
	cfg.MaxConns = 1
	n, err := ddlfreeze.DialNative(cfg, timeout)
	if err != nil {
		return State{}, err
	}
	defer n.Close()
	var st State
	out, err := n.QueryStrings(ctx, "SELECT version()")
	if err != nil {
		return State{}, err
	}
	if len(out) == 1 {
		st.Version, _ = clickhouse.ParseVersion(out[0])
	}
	out, err = n.QueryStrings(ctx, "SELECT concat(value, ' ', toString(changed)) FROM system.settings WHERE name = '"+Setting+"'")
	if err != nil {
		return State{}, err
	}
	if len(out) != 1 {
		return State{}, fmt.Errorf("clickhouse node %q: system.settings has no %s", n.Name(), Setting)
	}
	value, changed, _ := strings.Cut(out[0], " ")
	st.AllowDDL = value != "0"
	st.Changed = changed == "1"
	if c.ProbeDDL && !st.Version.IsZero() && !st.Version.AtLeast(20, 4) {
		err := n.Exec(ctx, "DROP TABLE IF EXISTS "+ProbeDatabase+".t")
		switch {
		case clickhouse.ErrorCode(err) == CodeQueryIsProhibited:
			st.Probe = "prohibited"
			st.ProbeError = clickhouse.Cause(err)
		case err != nil && clickhouse.Exception(err) == nil:
			return State{}, err // not an answer from the server
		case err != nil:
			st.Probe, st.ProbeError = "allowed", clickhouse.Cause(err)
		default:
			st.Probe, st.ProbeError = "allowed", "no error"
		}
	}
	return st, nil
}
