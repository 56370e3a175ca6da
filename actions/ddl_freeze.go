package actions

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/ddlfreeze"
	"github.com/chmedic/chmedic/internal/ddlfreeze/profile"
	"github.com/chmedic/chmedic/internal/grants"
	"github.com/chmedic/chmedic/internal/store"
)

// ddl_freeze and ddl_unfreeze: take DDL away from the cluster's configured
// application users and roles, on every node directly (never ON CLUSTER:
// distributed DDL is what hangs when the coordination service chokes), and
// give back exactly what was taken.
//
// Two methods (internal/ddlfreeze detects which a node can do):
//   - grants: REVOKE the DDL privileges of each target on each node, after
//     storing its SHOW GRANTS snapshot; the unfreeze re-grants what was
//     taken, keeping (and reporting) grants added during the freeze;
//   - profile: a users.d override setting allow_ddl = 0 in the targets'
//     settings profiles, written by the command mechanism or to a local
//     path; the unfreeze removes it.
//
// The freeze and its timer live in the store (store.FreezeRecord): the
// first step records it with its expiry before anything changes, each node
// step stores the node's snapshot before changing it, and the last step
// says active or partial. A node that fails is recorded failed and the
// other nodes are still frozen: the execution ends partial, and a new
// ddl_freeze request (Extend, or Retry) applies the freeze to the nodes not
// frozen and extends the timer. The server lifts an expired freeze by
// itself (internal/app/freezes.go).

// Action kinds.
const (
	DDLFreezeKind   = "ddl_freeze"
	DDLUnfreezeKind = "ddl_unfreeze"
)

// FreezeStore keeps freezes; *store.Store implements it.
type FreezeStore interface {
	CreateFreeze(ctx context.Context, f store.FreezeRecord) error
	Freeze(ctx context.Context, id string) (store.FreezeRecord, error)
	OpenFreeze(ctx context.Context, cluster string) (store.FreezeRecord, bool, error)
	UpdateFreeze(ctx context.Context, id string, fn func(*store.FreezeRecord) error) (store.FreezeRecord, error)
}

var _ FreezeStore = (*store.Store)(nil)

// FreezeConn is one node's connection with the actions credentials.
type FreezeConn interface {
	ddlfreeze.Conn
	Close() error
}

// FreezeConnOpener opens a node's FreezeConn; timeout bounds each
// statement.
type FreezeConnOpener func(cl *config.Cluster, n config.ClickHouseNode, timeout time.Duration) (FreezeConn, error)

// OpenFreezeConn dials a node natively with the cluster's actions
// credentials (the probe user stays read-only).
func OpenFreezeConn(cl *config.Cluster, n config.ClickHouseNode, timeout time.Duration) (FreezeConn, error) {
	a := cl.Actions.ClickHouse
	if a.User == "" {
		return nil, fmt.Errorf("cluster %q: actions.clickhouse.user is not set", cl.Name)
	}
	return ddlfreeze.DialNative(clickhouse.NodeConfig{Name: n.Name, Addr: n.Address, User: a.User, Password: a.Password.Value(),
		Database: cl.ClickHouse.Database, Secure: cl.ClickHouse.Secure, MaxConns: 1}, timeout)
}

// DDLFreezeParams are ddl_freeze's typed parameters.
type DDLFreezeParams struct {
	Duration time.Duration `json:"duration"`
	// Users, when set, freezes only these targets (user or role names).
	Users []string `json:"users,omitempty"`
}

// FreezeTargetPlan is one target of the plan.
type FreezeTargetPlan struct {
	Kind    string `json:"kind"` // user or role
	Name    string `json:"name"`
	Profile string `json:"profile,omitempty"`
}

func (t FreezeTargetPlan) grants() grants.Target {
	return grants.Target{Kind: grants.TargetKind(t.Kind), Name: t.Name}
}

func (t FreezeTargetPlan) String() string { return t.Kind + " " + t.Name }

// FreezeNodePlan is what the plan does on one node.
type FreezeNodePlan struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Error is set when the node could not be read at plan time: it is
	// still tried when the freeze runs.
	Error  string `json:"error,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Current is what the node holds now (SHOW GRANTS lines per target, or
	// the profile's allow_ddl in a new session).
	Current []string `json:"current,omitempty"`
	// Statements are the grants method's statements here, in order.
	Statements []string `json:"statements,omitempty"`
	// Verify lists targets applied on another node (replicated access
	// storage) and only verified here.
	VerifyOnly []string `json:"verify_only,omitempty"`
	// Root, Path and Command are the profile method's override here.
	Root    string   `json:"root,omitempty"`
	Path    string   `json:"path,omitempty"`
	Command []string `json:"command,omitempty"`
	// State is the node's state in the open freeze (extend, unfreeze).
	State string `json:"state,omitempty"`
}

// FreezeDetails is the Plan.Details of ddl_freeze and ddl_unfreeze.
type FreezeDetails struct {
	// Mode is freeze, extend (a freeze is open: retry the nodes not frozen
	// and move the expiry) or unfreeze.
	Mode string `json:"mode"`
	// FreezeID is the open freeze (extend, unfreeze).
	FreezeID string             `json:"freeze_id,omitempty"`
	Method   string             `json:"method"`
	Targets  []FreezeTargetPlan `json:"targets"`
	// Users is the users parameter (a subset of the targets), if given.
	Users      []string `json:"users,omitempty"`
	Privileges []string `json:"privileges,omitempty"`
	Profiles   []string `json:"profiles,omitempty"`
	// Unverified are the frozen profiles without a check user: written
	// (removed) only, never reported verified.
	Unverified []string `json:"unverified_profiles,omitempty"`
	// File is the profile method's override, with its header's freeze id
	// and expiry set when it runs.
	File     string           `json:"file,omitempty"`
	Delivery string           `json:"delivery,omitempty"`
	Duration time.Duration    `json:"duration,omitempty"`
	Nodes    []FreezeNodePlan `json:"nodes"`
	// Replicated names targets in replicated access storage.
	Replicated     []string      `json:"replicated,omitempty"`
	KillDDL        bool          `json:"kill_ddl,omitempty"`
	VerifyTimeout  time.Duration `json:"verify_timeout"`
	StmtTimeout    time.Duration `json:"statement_timeout"`
	ReminderBefore time.Duration `json:"reminder_before,omitempty"`
	// Expiry says the unfreeze is chmedic's own at expiry.
	Expiry bool `json:"expiry,omitempty"`
}

// AutoRequester is the RequestedBy of chmedic's own requests (the
// unfreeze at expiry).
const AutoRequester = "chmedic:chmedic"

// DDLFreeze is the ddl_freeze action, and with unfreeze set ddl_unfreeze.
type DDLFreeze struct {
	cfg      *config.Config
	deps     Deps
	unfreeze bool
	// Poll is how often a verification re-reads a node (default 200ms).
	Poll time.Duration
}

// NewDDLFreeze returns ddl_freeze.
func NewDDLFreeze(cfg *config.Config, deps Deps) *DDLFreeze {
	deps.fill()
	return &DDLFreeze{cfg: cfg, deps: deps, Poll: 200 * time.Millisecond}
}

// NewDDLUnfreeze returns ddl_unfreeze.
func NewDDLUnfreeze(cfg *config.Config, deps Deps) *DDLFreeze {
	a := NewDDLFreeze(cfg, deps)
	a.unfreeze = true
	return a
}

// Kind implements Action.
func (a *DDLFreeze) Kind() string {
	if a.unfreeze {
		return DDLUnfreezeKind
	}
	return DDLFreezeKind
}

func ddlFreezeNeeds(cl *config.Cluster) []Need {
	var out []Need
	f := cl.Actions.DDLFreeze
	if cl.Actions.ClickHouse.User == "" {
		out = append(out, Need{Key: "clickhouse.user", Why: "the user ddl_freeze detects the method and changes grants as (not the probe user)"})
	}
	if len(f.Targets) == 0 {
		out = append(out, Need{Key: "ddl_freeze.targets", Why: "the application users or roles whose DDL is frozen"})
	}
	if f.Method == config.FreezeProfile {
		if f.Delivery() == "" {
			out = append(out, Need{Key: "ddl_freeze.command", Why: "how the profile method's override file reaches each node (command.write and command.remove, or path)"})
		}
		if f.CheckUser.User == "" && len(f.CheckUsers) == 0 {
			out = append(out, Need{Key: "ddl_freeze.check_user", Why: "a user in the targets' profile that verifies, in a new session, that DDL is off (or check_users, one per profile)"})
		}
	}
	return out
}

// DecodeDDLFreezeParams reads ddl_freeze's raw parameters.
func DecodeDDLFreezeParams(cl *config.Cluster, raw map[string]string) (DDLFreezeParams, error) {
	if err := Validate(DDLFreezeKind, raw); err != nil {
		return DDLFreezeParams{}, err
	}
	p := DDLFreezeParams{Duration: 30 * time.Minute}
	if d, ok := raw["duration"]; ok {
		p.Duration, _ = time.ParseDuration(d) // validated
	}
	if max := cl.Actions.DDLFreeze.MaxDuration; p.Duration > max {
		return p, &Refusal{Reason: fmt.Sprintf("duration %s is longer than actions.ddl_freeze.max_duration (%s) of cluster %q", p.Duration, max, cl.Name)}
	}
	if u, ok := raw["users"]; ok {
		for _, n := range strings.Split(u, ",") {
			if n = strings.TrimSpace(n); n != "" && !slices.Contains(p.Users, n) {
				p.Users = append(p.Users, n)
			}
		}
		slices.Sort(p.Users)
		for _, n := range p.Users {
			if !slices.ContainsFunc(cl.Actions.DDLFreeze.Targets, func(t config.FreezeTarget) bool { return t.Name() == n }) {
				return p, fmt.Errorf("ddl_freeze: user %q is not a target of cluster %q (actions.ddl_freeze.targets)", n, cl.Name)
			}
		}
	}
	return p, nil
}

func (a *DDLFreeze) cluster(name string) (*config.Cluster, error) {
	cl, ok := a.cfg.Cluster(name)
	if !ok {
		return nil, fmt.Errorf("%s: unknown cluster %q", a.Kind(), name)
	}
	return cl, nil
}

// Plan implements Action: read-only.
func (a *DDLFreeze) Plan(ctx context.Context, req Request) (Plan, error) {
	cl, err := a.cluster(req.Cluster)
	if err != nil {
		return Plan{}, err
	}
	if err := needsRefusal(DDLFreezeKind, cl); err != nil {
		return Plan{}, err
	}
	if a.deps.Freezes == nil {
		return Plan{}, errors.New("ddl_freeze: no freeze store")
	}
	open, isOpen, err := a.deps.Freezes.OpenFreeze(ctx, cl.Name)
	if err != nil {
		return Plan{}, err
	}
	if a.unfreeze {
		if len(req.Params) > 0 {
			return Plan{}, fmt.Errorf("ddl_unfreeze takes no parameters")
		}
		if !isOpen {
			return Plan{}, &Refusal{Reason: fmt.Sprintf("cluster %q has no active DDL freeze", cl.Name)}
		}
		return a.planUnfreeze(ctx, cl, req, open)
	}
	params, err := DecodeDDLFreezeParams(cl, req.Params)
	if err != nil {
		return Plan{}, err
	}
	if isOpen {
		return a.planExtend(ctx, cl, params, open)
	}
	return a.planFreeze(ctx, cl, params)
}

func (a *DDLFreeze) targets(cl *config.Cluster, users []string) []FreezeTargetPlan {
	var out []FreezeTargetPlan
	for _, t := range cl.Actions.DDLFreeze.Targets {
		if len(users) > 0 && !slices.Contains(users, t.Name()) {
			continue
		}
		k := "user"
		if t.IsRole() {
			k = "role"
		}
		out = append(out, FreezeTargetPlan{Kind: k, Name: t.Name(), Profile: t.Profile})
	}
	return out
}

// nodeRead is what the plan reads on one node.
type nodeRead struct {
	det      ddlfreeze.Detection
	err      error
	snaps    map[string]grants.Snapshot
	observed []string
	profile  string // the profile's state in a new session
}

func (a *DDLFreeze) stmtTimeout(cl *config.Cluster) time.Duration {
	return cl.Actions.DDLFreeze.StatementTimeout
}

// readNodes detects the method and reads each node's state, in parallel.
func (a *DDLFreeze) readNodes(ctx context.Context, cl *config.Cluster, targets []FreezeTargetPlan, withGrants bool) []nodeRead {
	out := make([]nodeRead, len(cl.ClickHouse.Nodes))
	var gts []grants.Target
	for _, t := range targets {
		gts = append(gts, t.grants())
	}
	var wg sync.WaitGroup
	for i, n := range cl.ClickHouse.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &out[i]
			c, err := a.deps.FreezeConns(cl, n, a.stmtTimeout(cl))
			if err != nil {
				r.err = err
				return
			}
			defer c.Close()
			r.det, r.err = ddlfreeze.Detect(ctx, c, gts)
			if r.err != nil {
				return
			}
			r.observed = observeDDL(ctx, c)
			if withGrants && r.det.Method == ddlfreeze.MethodGrants {
				r.snaps = map[string]grants.Snapshot{}
				for _, t := range gts {
					s, err := ddlfreeze.ReadSnapshot(ctx, c, t)
					if err != nil {
						r.err = err
						return
					}
					r.snaps[t.Name] = s
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// observeDDL lists the DDL the freeze will not stop: running DDL queries
// and unfinished distributed DDL entries (where the table exists).
func observeDDL(ctx context.Context, c ddlfreeze.Conn) []string {
	var out []string
	rows, err := c.QueryStrings(ctx, `SELECT concat(user, ' ', query_id, ' (', toString(toUInt64(elapsed)), 's): ', substring(replaceRegexpAll(query, '\\s+', ' '), 1, 160)) FROM system.processes WHERE match(query, '(?i)^\\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE|OPTIMIZE|EXCHANGE|ATTACH|DETACH)\\s') AND query_id != queryID() ORDER BY elapsed DESC LIMIT 10`)
	if err != nil && clickhouse.Exception(err) != nil {
		// 18.16 has no queryID() (code 46): without the self filter, which
		// the regular expression does not match anyway.
		rows, err = c.QueryStrings(ctx, `SELECT concat(user, ' ', query_id, ' (', toString(toUInt64(elapsed)), 's): ', substring(replaceRegexpAll(query, '\\s+', ' '), 1, 160)) FROM system.processes WHERE match(query, '(?i)^\\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE|OPTIMIZE|EXCHANGE|ATTACH|DETACH)\\s') ORDER BY elapsed DESC LIMIT 10`)
	}
	if err != nil {
		out = append(out, c.Name()+": running DDL could not be read: "+clickhouse.Cause(err))
	} else if len(rows) == 0 {
		out = append(out, c.Name()+": no DDL running")
	} else {
		for _, r := range rows {
			out = append(out, c.Name()+": DDL running (not stopped by the freeze): "+r)
		}
	}
	rows, err = c.QueryStrings(ctx, `SELECT concat(entry, ' ', status, ': ', substring(replaceRegexpAll(query, '\\s+', ' '), 1, 120)) FROM system.distributed_ddl_queue WHERE status != 'Finished' ORDER BY entry LIMIT 10`)
	switch {
	case err != nil && clickhouse.IsUnknownTable(err):
		// The table arrived in 20.x; nothing to say.
	case err != nil:
		out = append(out, c.Name()+": system.distributed_ddl_queue could not be read: "+clickhouse.Cause(err))
	case len(rows) > 0:
		for _, r := range rows {
			out = append(out, c.Name()+": distributed DDL queued (not stopped by the freeze): "+r)
		}
	default:
		out = append(out, c.Name()+": no unfinished distributed DDL")
	}
	return out
}

func (a *DDLFreeze) planFreeze(ctx context.Context, cl *config.Cluster, params DDLFreezeParams) (Plan, error) {
	f := cl.Actions.DDLFreeze
	targets := a.targets(cl, params.Users)
	reads := a.readNodes(ctx, cl, targets, f.Method != config.FreezeProfile)
	method, why, err := chooseMethod(cl, reads)
	if err != nil {
		return Plan{}, err
	}
	d := FreezeDetails{Mode: "freeze", Method: method, Targets: targets, Users: params.Users, Duration: params.Duration, KillDDL: f.KillRunningDDL,
		VerifyTimeout: f.VerifyTimeout, StmtTimeout: f.StatementTimeout, ReminderBefore: f.ReminderBefore}
	var observed []string
	for i, n := range cl.ClickHouse.Nodes {
		np := FreezeNodePlan{Name: n.Name, Address: n.Address}
		if reads[i].err != nil {
			np.Error = "not readable at plan time (tried again when it runs): " + firstLine(clickhouse.Cause(reads[i].err), 200)
		} else {
			np.Reason = reads[i].det.Reason
		}
		observed = append(observed, reads[i].observed...)
		d.Nodes = append(d.Nodes, np)
	}
	var notes []string
	switch method {
	case string(ddlfreeze.MethodGrants):
		if err := a.planGrants(cl, &d, reads); err != nil {
			return Plan{}, err
		}
		notes = append(notes, "Privileges a target holds through a granted role are not its own: REVOKE ... FROM the user does not touch them; list such roles as targets.")
		if len(d.Replicated) > 0 {
			notes = append(notes, fmt.Sprintf("%s live in replicated access storage: the change passes through the coordination service, which may be the sick part. It is applied once, on %s, and verified on every node within %s; a node it does not reach in time is reported partial.",
				strings.Join(d.Replicated, ", "), d.Nodes[0].Name, f.VerifyTimeout))
		}
	case string(ddlfreeze.MethodProfile):
		if err := a.planProfile(ctx, cl, &d, reads); err != nil {
			return Plan{}, err
		}
		notes = append(notes,
			"Sessions opened before the freeze keep the settings they logged in with: a pooled connection keeps running DDL until it reconnects (measured on 18.16). Only new sessions are refused (code 392, \"DDL queries are prohibited for the user\").",
			"Every user logging in with a frozen profile is frozen, not only the targets named.")
		if l := unverifiedLine(d.Unverified, "written"); l != "" {
			notes = append(notes, "Verification: "+l+"; chmedic reports these written, not frozen for certain.")
		}
	}
	for _, np := range d.Nodes {
		switch {
		case np.Error != "":
			notes = append(notes, np.Name+": "+np.Error)
		case len(np.Current) > 0:
			notes = append(notes, np.Name+" now: "+strings.Join(np.Current, " | "))
		}
	}
	if d.File != "" {
		notes = append(notes, "The override file, the same on every node:\n"+d.File)
	}
	notes = append(notes, fmt.Sprintf("The freeze expires %s after it is verified: chmedic lifts it by itself then and says so; a reminder with Extend and Unfreeze comes %s before.", params.Duration, f.ReminderBefore),
		"Applied to every node directly with per-statement timeouts (never ON CLUSTER). DDL already queued or running is not stopped by the freeze (see what was observed).")
	if f.KillRunningDDL {
		notes = append(notes, "After the freeze, the DDL queries of the targets still running on each node are killed (KILL QUERY, not ON CLUSTER).")
	}
	var steps []Step
	steps = append(steps, Step{ID: "begin", Title: fmt.Sprintf("record the freeze and its timer (%s) in chmedic's store before anything changes", params.Duration)})
	for _, np := range d.Nodes {
		steps = append(steps, a.freezeStep(d, np))
	}
	if d.KillDDL {
		for _, np := range d.Nodes {
			steps = append(steps, Step{ID: np.Name + "/kill_ddl", Node: np.Name, Title: "kill the targets' DDL still running on " + np.Name, SQL: []string{killDDLQuery(d.Targets)}})
		}
	}
	arm := "check every node is frozen; the freeze is active, or partial with the nodes that failed; the timer runs from now"
	if method == string(ddlfreeze.MethodProfile) {
		arm = "verify on every node at once that a new session of each frozen profile's check user has allow_ddl = 0 and a DDL probe gets code 392 (within " + f.VerifyTimeout.String() + "); the freeze is active, or partial with the nodes that failed; the timer runs from now"
	}
	steps = append(steps, Step{ID: "arm", Title: arm})
	return a.finishPlan(cl, d, why, steps, notes, observed, fmt.Sprintf("Freeze DDL for %s of %s on %d nodes, %s, for %s",
		plural(len(d.Targets), "target", "targets"), targetNames(d.Targets), len(d.Nodes), method, params.Duration))
}

func targetNames(ts []FreezeTargetPlan) string {
	var s []string
	for _, t := range ts {
		s = append(s, t.String())
	}
	return strings.Join(s, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func (a *DDLFreeze) finishPlan(cl *config.Cluster, d FreezeDetails, why string, steps []Step, notes, observed []string, summary string) (Plan, error) {
	details, _ := json.Marshal(d)
	params, _ := json.Marshal(struct {
		Duration string   `json:"duration,omitempty"`
		Users    []string `json:"users,omitempty"`
	}{Duration: durString(d.Duration), Users: d.Users})
	if a.unfreeze {
		params = []byte("{}")
	}
	return Plan{
		Kind: a.Kind(), Cluster: cl.Name, Params: params, Summary: summary, Method: why,
		Gates: []Gate{{Name: "actions.clickhouse configured", OK: true, Evidence: "user " + cl.Actions.ClickHouse.User}},
		Steps: steps, Notes: notes, Details: details, Observed: observed,
		ComputedAt: a.deps.Now().UTC(),
	}, nil
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// chooseMethod decides the cluster's method from the configured one and
// what the nodes answered.
func chooseMethod(cl *config.Cluster, reads []nodeRead) (method, why string, err error) {
	f := cl.Actions.DDLFreeze
	seen := map[ddlfreeze.Method][]string{}
	var reasons []string
	for i, r := range reads {
		name := cl.ClickHouse.Nodes[i].Name
		if r.err != nil {
			continue
		}
		seen[r.det.Method] = append(seen[r.det.Method], name)
		if i := slices.IndexFunc(reasons, func(s string) bool { return strings.HasSuffix(s, ": "+r.det.Reason) }); i >= 0 {
			head, _, _ := strings.Cut(reasons[i], ": ")
			reasons[i] = head + ", " + name + ": " + r.det.Reason
		} else {
			reasons = append(reasons, name+": "+r.det.Reason)
		}
		if want := ddlfreeze.Method(f.Method); f.Method != config.FreezeAuto {
			if err := ddlfreeze.CheckMethod(want, r.det); err != nil {
				return "", "", &Refusal{Reason: err.Error()}
			}
		}
	}
	if len(seen) == 0 {
		if f.Method == config.FreezeProfile {
			return config.FreezeProfile, "profile (configured); no node answered at plan time", nil
		}
		var errs []string
		for i, r := range reads {
			errs = append(errs, cl.ClickHouse.Nodes[i].Name+": "+firstLine(clickhouse.Cause(r.err), 160))
		}
		return "", "", &Refusal{Reason: "no node answered, so the method cannot be detected (set actions.ddl_freeze.method to profile to freeze what answers later): " + strings.Join(errs, "; ")}
	}
	if len(seen) > 1 {
		return "", "", &Refusal{Reason: fmt.Sprintf("the nodes need different methods (grants on %s, profile on %s): set actions.ddl_freeze.method to profile to use one everywhere",
			strings.Join(seen[ddlfreeze.MethodGrants], ", "), strings.Join(seen[ddlfreeze.MethodProfile], ", "))}
	}
	for m := range seen {
		method = string(m)
	}
	how := "detected"
	if f.Method != config.FreezeAuto {
		how = "configured"
	}
	return method, fmt.Sprintf("%s (%s): %s", method, how, strings.Join(reasons, "; ")), nil
}

func (a *DDLFreeze) planGrants(cl *config.Cluster, d *FreezeDetails, reads []nodeRead) error {
	privs, err := grants.ParsePrivileges(cl.Actions.DDLFreeze.Privileges)
	if err != nil {
		return &Refusal{Reason: "actions.ddl_freeze.privileges: " + err.Error()}
	}
	d.Privileges = privs.Names()
	replicated := map[string]bool{}
	for _, r := range reads {
		for _, t := range r.det.Replicated {
			replicated[t.Name] = true
		}
	}
	for _, t := range d.Targets {
		if replicated[t.Name] {
			d.Replicated = append(d.Replicated, t.String())
		}
	}
	first := true
	for i := range d.Nodes {
		np := &d.Nodes[i]
		r := reads[i]
		if r.err != nil {
			continue
		}
		for _, t := range d.Targets {
			s := r.snaps[t.Name]
			if err := grants.Refuse(s); err != nil {
				return &Refusal{Reason: fmt.Sprintf("node %s: %v", np.Name, err)}
			}
			for _, l := range s.Lines {
				np.Current = append(np.Current, l)
			}
			if len(s.Lines) == 0 {
				np.Current = append(np.Current, "-- "+t.String()+" holds no grants")
			}
			if replicated[t.Name] && !first {
				np.VerifyOnly = append(np.VerifyOnly, t.String())
				continue
			}
			fr, err := grants.PlanFreeze(s, privs)
			if err != nil {
				return &Refusal{Reason: fmt.Sprintf("node %s: %v", np.Name, err)}
			}
			if fr.Revoke != "" {
				np.Statements = append(np.Statements, fr.Revoke)
			}
		}
		first = false
	}
	return nil
}

func (a *DDLFreeze) planProfile(ctx context.Context, cl *config.Cluster, d *FreezeDetails, reads []nodeRead) error {
	f := cl.Actions.DDLFreeze
	var missing []string
	for _, t := range d.Targets {
		switch {
		case t.Kind == "role":
			return &Refusal{Reason: fmt.Sprintf("the profile method freezes users by their settings profile; role %s cannot be frozen that way", t.Name)}
		case t.Profile == "":
			missing = append(missing, t.Name)
		default:
			d.Profiles = append(d.Profiles, t.Profile)
		}
	}
	if len(missing) > 0 {
		return &Refusal{Reason: fmt.Sprintf("the profile method needs the settings profile of %s (actions.ddl_freeze.targets[].profile): SQL on these servers cannot tell it", strings.Join(missing, ", "))}
	}
	slices.Sort(d.Profiles)
	d.Profiles = slices.Compact(d.Profiles)
	if f.Delivery() == "" {
		return &Refusal{Reason: "the profile method needs actions.ddl_freeze.command (write and remove) or path: how the override reaches each node"}
	}
	if f.CheckUser.User == "" && len(f.CheckUsers) == 0 {
		return &Refusal{Reason: "the profile method needs actions.ddl_freeze.check_user: a user in the targets' profile that verifies, in a new session, that DDL is off"}
	}
	if len(cl.ClickHouse.Nodes) > 0 {
		if checks, _ := a.profileChecks(cl, cl.ClickHouse.Nodes[0], d.Profiles, false); len(checks) == 0 {
			return &Refusal{Reason: fmt.Sprintf("no check user of the frozen profiles %s: the targets span several profiles, so name each check user's profile (actions.ddl_freeze.check_user.profile, check_users)",
				strings.Join(d.Profiles, ", "))}
		}
		_, d.Unverified = a.profileChecks(cl, cl.ClickHouse.Nodes[0], d.Profiles, false)
	}
	d.Delivery = f.Delivery()
	var wg sync.WaitGroup
	for i := range d.Nodes {
		np := &d.Nodes[i]
		n := cl.ClickHouse.Nodes[i]
		np.Root = profile.RootFor(reads[i].det.Version)
		p, argv, err := overridePath(cl, n, "write")
		if err != nil {
			return &Refusal{Reason: fmt.Sprintf("node %s: %v", n.Name, err)}
		}
		np.Path, np.Command = p, argv
		wg.Add(1)
		go func() {
			defer wg.Done()
			checks, _ := a.profileChecks(cl, n, d.Profiles, false)
			np.Current = readProfiles(ctx, checks)
		}()
	}
	wg.Wait()
	content, err := profile.Render(profile.Override{FreezeID: "FREEZE-ID", Profiles: d.Profiles, Expires: time.Unix(0, 0), Root: d.Nodes[0].Root})
	if err != nil {
		return &Refusal{Reason: err.Error()}
	}
	d.File = strings.Replace(string(content), "DDL freeze FREEZE-ID, expires 1970-01-01T00:00:00Z.", "DDL freeze <freeze id>, expires <the expiry, UTC>.", 1)
	return nil
}

// freezeFields are the template fields of one node.
func freezeFields(n config.ClickHouseNode, path string) config.FreezeFields {
	return config.FreezeFields{CommandFields: FieldsFor(n), Path: path}
}

// overridePath renders the override's path on a node and, with the command
// delivery, the argv of op (write or remove).
func overridePath(cl *config.Cluster, n config.ClickHouseNode, op string) (string, []string, error) {
	f := cl.Actions.DDLFreeze
	if f.Delivery() == "path" {
		dir, err := renderTemplates([]string{f.Path}, FieldsFor(n))
		if err != nil {
			return "", nil, fmt.Errorf("actions.ddl_freeze.path: %w", err)
		}
		return profile.LocalWriter{Dir: dir[0]}.Path(), nil, nil
	}
	dir, err := renderTemplates([]string{f.Command.Dir}, FieldsFor(n))
	if err != nil {
		return "", nil, fmt.Errorf("actions.ddl_freeze.command.dir: %w", err)
	}
	path := profile.LocalWriter{Dir: dir[0]}.Path()
	argv := f.Command.Write
	if op == "remove" {
		argv = f.Command.Remove
	}
	out, err := renderTemplates(argv, freezeFields(n, path))
	if err != nil {
		return "", nil, fmt.Errorf("actions.ddl_freeze.command.%s: %w", op, err)
	}
	return path, out, nil
}

// renderTemplates renders argv templates (config.ParseArgv, as the command
// mechanism does) with any field set.
func renderTemplates(argv []string, fields any) ([]string, error) {
	ts, err := config.ParseArgv(argv)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ts))
	var b strings.Builder
	for i, t := range ts {
		b.Reset()
		if err := t.Execute(&b, fields); err != nil {
			return nil, fmt.Errorf("element %d %q: %w", i, argv[i], err)
		}
		out[i] = b.String()
	}
	if len(out) == 0 || out[0] == "" {
		return nil, errors.New("the program renders empty")
	}
	return out, nil
}

func (a *DDLFreeze) freezeStep(d FreezeDetails, np FreezeNodePlan) Step {
	st := Step{ID: np.Name + "/freeze", Node: np.Name}
	switch d.Method {
	case string(ddlfreeze.MethodGrants):
		st.Title = "store the targets' SHOW GRANTS, revoke their DDL on " + np.Name + " and verify with SHOW GRANTS"
		st.SQL = np.Statements
		if len(np.VerifyOnly) > 0 {
			st.Title += fmt.Sprintf("; %s applied on %s through replicated storage, verified here", strings.Join(np.VerifyOnly, ", "), d.Nodes[0].Name)
		}
		switch {
		case d.Mode == "extend":
			st.Title += " (the REVOKE of the configured privileges the targets hold is computed from the node's SHOW GRANTS when it runs)"
		case np.Error != "":
			st.Title += " (the node did not answer at plan time: the REVOKE of the configured privileges the targets hold is computed from its SHOW GRANTS when it runs, or the node is reported failed)"
		case len(np.Statements) == 0 && len(np.VerifyOnly) == 0:
			st.Title += " (the targets hold none of the privileges here: nothing to revoke)"
		}
		st.Undo = "re-grant exactly what was revoked (ddl_unfreeze)"
	default:
		if np.Command != nil {
			st.Title = fmt.Sprintf("store the node's state, then write %s on %s by command (file content on standard input)", np.Path, np.Name)
			st.Command = np.Command
		} else {
			st.Title = fmt.Sprintf("store the node's state, then write %s on this machine (temp file + rename)", np.Path)
		}
		st.Undo = "remove the file (ddl_unfreeze)"
	}
	return st
}

func killDDLQuery(ts []FreezeTargetPlan) string {
	var users []string
	for _, t := range ts {
		if t.Kind == "user" {
			users = append(users, quoteLiteral(t.Name))
		}
	}
	if len(users) == 0 {
		users = []string{"''"}
	}
	return "KILL QUERY WHERE user IN (" + strings.Join(users, ", ") + ") AND match(query, '(?i)^\\\\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE|OPTIMIZE|EXCHANGE)\\\\s') ASYNC"
}

func quoteLiteral(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

func (a *DDLFreeze) planExtend(ctx context.Context, cl *config.Cluster, params DDLFreezeParams, open store.FreezeRecord) (Plan, error) {
	f := cl.Actions.DDLFreeze
	d := FreezeDetails{Mode: "extend", FreezeID: open.ID, Method: open.Method, Privileges: open.Privileges, Profiles: open.Profiles, Duration: params.Duration, Delivery: f.Delivery(),
		VerifyTimeout: f.VerifyTimeout, StmtTimeout: f.StatementTimeout, ReminderBefore: f.ReminderBefore}
	targets := a.targets(cl, nil)
	for _, t := range targets {
		if slices.Contains(open.Targets, t.String()) {
			d.Targets = append(d.Targets, t)
		}
	}
	if len(params.Users) > 0 {
		return Plan{}, &Refusal{Reason: fmt.Sprintf("cluster %q already has a freeze (%s of %s): a new request extends it and cannot change its users; lift it first to freeze others", cl.Name, open.State, strings.Join(open.Targets, ", "))}
	}
	var retry []string
	var steps []Step
	steps = append(steps, Step{ID: "begin", Title: fmt.Sprintf("take over the open freeze %s (%s since %s UTC)", open.ID, open.State, open.StartedAt.UTC().Format("15:04"))})
	for _, n := range cl.ClickHouse.Nodes {
		np := FreezeNodePlan{Name: n.Name, Address: n.Address, State: "pending"}
		if fn := open.Node(n.Name); fn != nil {
			np.State = fn.State
		}
		if np.State != "frozen" {
			retry = append(retry, n.Name)
			if d.Method == string(ddlfreeze.MethodProfile) {
				np.Root = profile.RootFor(clickhouse.Version{})
				p, argv, err := overridePath(cl, n, "write")
				if err != nil {
					return Plan{}, &Refusal{Reason: err.Error()}
				}
				np.Path, np.Command = p, argv
			}
		}
		d.Nodes = append(d.Nodes, np)
	}
	for _, np := range d.Nodes {
		if np.State != "frozen" {
			st := a.freezeStep(d, np)
			st.Title = "retry: " + st.Title
			steps = append(steps, st)
		}
	}
	steps = append(steps, Step{ID: "arm", Title: fmt.Sprintf("move the expiry to %s from now; active, or partial with the nodes that failed", params.Duration)})
	summary := fmt.Sprintf("Extend the DDL freeze of %s (%s, expires %s UTC) to %s from when this runs", cl.Name, open.State, open.ExpiresAt.UTC().Format("15:04"), params.Duration)
	if len(retry) > 0 {
		summary += "; freeze again on " + strings.Join(retry, ", ")
	}
	notes := []string{"A freeze is already open on this cluster: this request extends it (and retries the nodes not frozen) instead of starting another."}
	if d.Method == string(ddlfreeze.MethodProfile) {
		notes = append(notes, "The override files already in place keep the first expiry in their header comment; chmedic's timer, in its store, is what lifts the freeze.")
	}
	return a.finishPlan(cl, d, open.Method+" (the open freeze's method)", steps, notes, nil, summary)
}

func (a *DDLFreeze) planUnfreeze(ctx context.Context, cl *config.Cluster, req Request, open store.FreezeRecord) (Plan, error) {
	f := cl.Actions.DDLFreeze
	d := FreezeDetails{Mode: "unfreeze", FreezeID: open.ID, Method: open.Method, Privileges: open.Privileges, Profiles: open.Profiles, Delivery: f.Delivery(),
		VerifyTimeout: f.VerifyTimeout, StmtTimeout: f.StatementTimeout, Expiry: req.RequestedBy == AutoRequester}
	for _, t := range a.targets(cl, nil) {
		if slices.Contains(open.Targets, t.String()) {
			d.Targets = append(d.Targets, t)
		}
	}
	var steps []Step
	for _, fn := range open.Nodes {
		np := FreezeNodePlan{Name: fn.Name, State: fn.State}
		if n, ok := clusterNode(cl, fn.Name); ok {
			np.Address = n.Address
		}
		d.Nodes = append(d.Nodes, np)
		if fn.State == "pending" || fn.State == "lifted" {
			continue
		}
		st := Step{ID: fn.Name + "/unfreeze", Node: fn.Name}
		if open.Method == string(ddlfreeze.MethodGrants) {
			st.Title = "give back on " + fn.Name + " exactly what the freeze revoked (from the stored snapshot; grants added during the freeze are kept and reported), verified with SHOW GRANTS"
		} else {
			n, _ := clusterNode(cl, fn.Name)
			p, argv, err := overridePath(cl, n, "remove")
			if err != nil {
				return Plan{}, &Refusal{Reason: err.Error()}
			}
			st.Command = argv
			st.Title = fmt.Sprintf("remove %s on %s", p, fn.Name)
		}
		steps = append(steps, st)
	}
	lift := "record the freeze lifted (or still partial with the nodes that failed)"
	if open.Method == string(ddlfreeze.MethodProfile) {
		lift = "verify on every node at once that a new session of each frozen profile's check user has allow_ddl = 1 again; " + lift
	}
	steps = append(steps, Step{ID: "lift", Title: lift})
	who := "by hand"
	if d.Expiry {
		who = "by chmedic at expiry (the undo of an approved freeze needs no approval)"
	}
	summary := fmt.Sprintf("Lift the DDL freeze of %s (%s, %s, since %s UTC) %s", cl.Name, open.State, strings.Join(open.Targets, ", "), open.StartedAt.UTC().Format("15:04"), who)
	notes := []string{"Grants added by someone else during the freeze are kept and reported; nothing outside the frozen privileges is touched."}
	if open.Method == string(ddlfreeze.MethodProfile) {
		notes = []string{"Removing the override gives new sessions allow_ddl back; sessions opened during the freeze keep allow_ddl = 0 until they reconnect."}
	}
	return a.finishPlan(cl, d, open.Method+" (the freeze's method)", steps, notes, nil, summary)
}

func clusterNode(cl *config.Cluster, name string) (config.ClickHouseNode, bool) {
	for _, n := range cl.ClickHouse.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return config.ClickHouseNode{}, false
}

func newFreezeID(now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}
