package ddlfreeze

import (
	"context"
	"fmt"
	"strings"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/grants"
)

// Method is how a node's DDL is frozen.
type Method string

// Methods (the values of the config's method key).
const (
	MethodGrants  Method = "grants"
	MethodProfile Method = "profile"
)

// Server error codes the detection branches on (ErrorCodes.cpp).
const (
	CodeSyntaxError  = 62
	CodeAccessDenied = 497
)

// Detection is the method chosen for one node and why, for the plan.
type Detection struct {
	Node    string
	Version clickhouse.Version
	Method  Method
	// Reason says why, in one sentence.
	Reason string
	// Replicated lists targets whose access storage is replicated through
	// the coordination service: a change made on one node reaches the
	// others through it (apply once, verify everywhere, say so in the plan).
	Replicated []grants.Target
	// Storage is each target's access storage as system.users/roles name it.
	Storage map[grants.Target]string
}

// Detect decides the method for one node: grants where SQL access control
// answers and every target lives in an SQL-writable storage, profile
// otherwise (servers before 20.4, where SHOW GRANTS is a syntax error; users
// defined in users.xml, which REVOKE cannot change). c is the actions
// connection. A target that exists nowhere on the node is an error, as is
// an access error: SQL access control is there, but chmedic may not read
// it, and the profile method would not be the right answer either.
func Detect(ctx context.Context, c Conn, targets []grants.Target) (Detection, error) {
	d := Detection{Node: c.Name(), Storage: map[grants.Target]string{}}
	out, err := c.QueryStrings(ctx, "SELECT version()")
	if err != nil {
		return d, fmt.Errorf("detect the freeze method: %w", err)
	}
	if len(out) == 1 {
		d.Version, _ = clickhouse.ParseVersion(out[0])
	}
	_, err = c.QueryStrings(ctx, "SHOW GRANTS")
	switch code := clickhouse.ErrorCode(err); {
	case err == nil:
	case code == CodeSyntaxError || code == clickhouse.CodeUnknownTable:
		d.Method = MethodProfile
		d.Reason = fmt.Sprintf("ClickHouse %s has no SQL access control (SHOW GRANTS: %s; it arrived in 20.4): the freeze sets allow_ddl = 0 in the targets' settings profiles through users.d",
			d.Version, firstLine(clickhouse.Cause(err)))
		return d, nil
	case code == CodeAccessDenied:
		return d, fmt.Errorf("detect the freeze method: SQL access control is there but the actions user may not use it: %w", err)
	default:
		return d, fmt.Errorf("detect the freeze method: SHOW GRANTS: %w", err)
	}
	var users, roles []string
	for _, t := range targets {
		if t.Kind == grants.Role {
			roles = append(roles, t.Name)
		} else {
			users = append(users, t.Name)
		}
	}
	for _, q := range []struct {
		kind  grants.TargetKind
		table string
		names []string
	}{{grants.User, "system.users", users}, {grants.Role, "system.roles", roles}} {
		if len(q.names) == 0 {
			continue
		}
		lits := make([]string, len(q.names))
		for i, n := range q.names {
			lits[i] = quoteString(n)
		}
		rows, err := c.QueryStrings(ctx, "SELECT concat(name, '\\t', storage) FROM "+q.table+" WHERE name IN ("+strings.Join(lits, ", ")+")")
		if err != nil {
			return d, fmt.Errorf("detect the freeze method: read %s: %w", q.table, err)
		}
		for _, r := range rows {
			name, storage, _ := strings.Cut(r, "\t")
			d.Storage[grants.Target{Kind: q.kind, Name: name}] = storage
		}
	}
	var fromXML, missing []string
	for _, t := range targets {
		storage, ok := d.Storage[t]
		switch {
		case !ok:
			missing = append(missing, t.String())
		case isConfigStorage(storage):
			fromXML = append(fromXML, t.String())
		case storage == "replicated":
			d.Replicated = append(d.Replicated, t)
		}
	}
	if len(missing) > 0 {
		return d, fmt.Errorf("detect the freeze method on %s: %s not found", c.Name(), strings.Join(missing, ", "))
	}
	if len(fromXML) > 0 {
		d.Method = MethodProfile
		d.Reason = fmt.Sprintf("ClickHouse %s has SQL access control, but %s %s defined in users.xml, which SQL cannot change: the freeze sets allow_ddl = 0 in their settings profiles through users.d",
			d.Version, strings.Join(fromXML, ", "), plural(len(fromXML), "is", "are"))
		return d, nil
	}
	d.Method = MethodGrants
	d.Reason = fmt.Sprintf("ClickHouse %s has SQL access control and the targets live in SQL storage: the freeze revokes their DDL privileges on this node and grants back exactly what it took", d.Version)
	if len(d.Replicated) > 0 {
		var names []string
		for _, t := range d.Replicated {
			names = append(names, t.String())
		}
		d.Reason += fmt.Sprintf("; %s %s in replicated access storage, so the change passes through the coordination service: applied once, verified on every node",
			strings.Join(names, ", "), plural(len(names), "is", "are"))
	}
	return d, nil
}

// CheckMethod refuses a configured method the node cannot do.
func CheckMethod(want Method, d Detection) error {
	if want == "" || want == d.Method {
		return nil
	}
	return fmt.Errorf("node %s: method %s is configured, but %s", d.Node, want, d.Reason)
}

// isConfigStorage reports whether a storage name is the users.xml one
// ("users.xml" in 20.x, "users_xml" later).
func isConfigStorage(storage string) bool {
	s := strings.ToLower(storage)
	return s == "users.xml" || s == "users_xml" || strings.HasSuffix(s, ".xml")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 160 {
		s = s[:157] + "..."
	}
	return s
}

// quoteString quotes a string literal for ClickHouse.
func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\t", `\t`, "\r", `\r`, "\x00", `\0`)
	return "'" + r.Replace(s) + "'"
}
