package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
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

// Node states of a freeze (store.FreezeNode.State).
const (
	NodePending    = "pending"
	NodeApplying   = "applying"
	NodeFrozen     = "frozen"
	NodeFailed     = "failed"
	NodeLifted     = "lifted"
	NodeLiftFailed = "lift_failed"
	// NodeWritten and NodeRemoved: the profile override is written
	// (removed) on the node, to be verified with the other nodes at once.
	NodeWritten = "written"
	NodeRemoved = "removed"
)

// FreezeNodeResult is the StepResult.Data of a node step: the node's state
// after it and what was done (the snapshot is also in the store's freeze
// record, written before the change).
type FreezeNodeResult struct {
	FreezeID   string          `json:"freeze_id"`
	Node       string          `json:"node"`
	State      string          `json:"state"`
	Error      string          `json:"error,omitempty"`
	Snapshot   json.RawMessage `json:"snapshot,omitempty"`
	Statements []string        `json:"statements,omitempty"`
	// Added are grants someone added during the freeze, kept (unfreeze).
	Added []string `json:"added_during_freeze,omitempty"`
	// Other are changes outside the frozen privileges, left alone.
	Other    []string `json:"other_changes,omitempty"`
	Verified string   `json:"verified,omitempty"`
	Path     string   `json:"path,omitempty"`
}

// profileSnapshot is the profile method's snapshot of a node.
type profileSnapshot struct {
	// File is what was at the override's path: "absent", or "chmedic's
	// (freeze ID)"; "unknown" with the command delivery (chmedic cannot
	// read the node's files).
	File string `json:"file"`
	// Setting is the check user's allow_ddl in a new session before.
	Setting string `json:"setting,omitempty"`
}

func (a *DDLFreeze) details(plan Plan) (FreezeDetails, *config.Cluster, error) {
	var d FreezeDetails
	if err := json.Unmarshal(plan.Details, &d); err != nil {
		return d, nil, fmt.Errorf("%s: plan details: %w", a.Kind(), err)
	}
	cl, err := a.cluster(plan.Cluster)
	return d, cl, err
}

func freezeIDOf(d FreezeDetails, prior map[string]StepResult) (string, error) {
	if d.FreezeID != "" && d.Mode == "unfreeze" {
		return d.FreezeID, nil
	}
	var r struct {
		FreezeID string `json:"freeze_id"`
	}
	if b, ok := prior["begin"]; ok && json.Unmarshal(b.Data, &r) == nil && r.FreezeID != "" {
		return r.FreezeID, nil
	}
	return "", errors.New("the begin step's freeze id is not recorded")
}

// Execute implements Action. Each node step records the node's state in
// the store's freeze record; a node that fails does not stop the others
// (its step records the failure), and the last step (arm, lift) fails when
// any node did, which leaves the execution partial.
func (a *DDLFreeze) Execute(ctx context.Context, plan Plan, step Step, prior map[string]StepResult) (StepResult, error) {
	d, cl, err := a.details(plan)
	if err != nil {
		return StepResult{}, err
	}
	switch step.ID {
	case "begin":
		return a.begin(ctx, plan, d, cl)
	case "arm":
		return a.arm(ctx, cl, d, prior)
	case "lift":
		return a.lift(ctx, cl, d)
	}
	node, what, ok := strings.Cut(step.ID, "/")
	if !ok {
		return StepResult{}, fmt.Errorf("%s: unknown step %q", a.Kind(), step.ID)
	}
	n, ok := clusterNode(cl, node)
	if !ok {
		return StepResult{}, fmt.Errorf("%s: node %q is no longer configured on cluster %q", a.Kind(), node, cl.Name)
	}
	np := FreezeNodePlan{Name: node}
	for _, x := range d.Nodes {
		if x.Name == node {
			np = x
		}
	}
	id, err := freezeIDOf(d, prior)
	if err != nil {
		return StepResult{}, err
	}
	var res FreezeNodeResult
	switch what {
	case "freeze":
		res = a.freezeNode(ctx, cl, d, n, np, id)
	case "unfreeze":
		res = a.unfreezeNode(ctx, cl, d, n, np, id)
	case "kill_ddl":
		return a.killDDL(ctx, cl, d, n, step)
	default:
		return StepResult{}, fmt.Errorf("%s: unknown step %q", a.Kind(), step.ID)
	}
	data, _ := json.Marshal(res)
	return StepResult{Output: nodeOutput(res), Data: data}, nil
}

func nodeOutput(r FreezeNodeResult) string {
	switch r.State {
	case NodeFrozen:
		return "frozen, verified: " + r.Verified
	case NodeLifted:
		s := "lifted, verified: " + r.Verified
		if len(r.Added) > 0 {
			s += "; kept grants added during the freeze: " + strings.Join(r.Added, "; ")
		}
		return s
	case NodeWritten:
		return "override written to " + r.Path + "; verified on every node at once by the last step"
	case NodeRemoved:
		return "override removed from " + r.Path + "; verified on every node at once by the last step"
	case NodeFailed:
		return "NOT frozen: " + r.Error
	case NodeLiftFailed:
		return "NOT lifted: " + r.Error
	}
	return r.State
}

// Verify implements Action: the node steps verify inside Execute (the
// result is the node's recorded state, partial states included); arm and
// lift fail when a node is not in the state wanted.
func (a *DDLFreeze) Verify(ctx context.Context, plan Plan, step Step, res StepResult) error {
	return nil
}

func (a *DDLFreeze) begin(ctx context.Context, plan Plan, d FreezeDetails, cl *config.Cluster) (StepResult, error) {
	now := a.deps.Now().UTC()
	out := func(id, msg string) (StepResult, error) {
		b, _ := json.Marshal(map[string]string{"freeze_id": id})
		return StepResult{Output: msg, Data: b}, nil
	}
	open, isOpen, err := a.deps.Freezes.OpenFreeze(ctx, cl.Name)
	if err != nil {
		return StepResult{}, err
	}
	if d.Mode == "extend" {
		if !isOpen || open.ID != d.FreezeID {
			return StepResult{}, fmt.Errorf("freeze %s is no longer open on %s", d.FreezeID, cl.Name)
		}
		return out(open.ID, "extending freeze "+open.ID)
	}
	hash := plan.Hash()
	if isOpen {
		if open.PlanHash == hash && open.State == store.FreezeApplying {
			return out(open.ID, "resuming freeze "+open.ID) // a crash after this step's record
		}
		return StepResult{}, fmt.Errorf("cluster %q has an open freeze %s (%s) since this plan was made", cl.Name, open.ID, open.State)
	}
	rec := store.FreezeRecord{ID: newFreezeID(now), Cluster: cl.Name, State: store.FreezeApplying, Method: d.Method, Privileges: d.Privileges, Profiles: d.Profiles,
		PlanHash: hash, Duration: d.Duration, StartedAt: now, ExpiresAt: now.Add(d.Duration)}
	if d.ReminderBefore > 0 && d.ReminderBefore < d.Duration {
		rec.ReminderAt = rec.ExpiresAt.Add(-d.ReminderBefore)
	}
	for _, t := range d.Targets {
		rec.Targets = append(rec.Targets, t.String())
	}
	for _, np := range d.Nodes {
		rec.Nodes = append(rec.Nodes, store.FreezeNode{Name: np.Name, State: NodePending, UpdatedAt: now})
	}
	if err := a.deps.Freezes.CreateFreeze(ctx, rec); err != nil {
		return StepResult{}, err
	}
	return out(rec.ID, fmt.Sprintf("freeze %s recorded; lifted by chmedic at %s UTC at the latest", rec.ID, rec.ExpiresAt.Format("15:04:05")))
}

// setNode records a node's state in the freeze.
func (a *DDLFreeze) setNode(ctx context.Context, id, node string, fn func(*store.FreezeNode)) error {
	_, err := a.deps.Freezes.UpdateFreeze(context.WithoutCancel(ctx), id, func(f *store.FreezeRecord) error {
		n := f.Node(node)
		if n == nil {
			f.Nodes = append(f.Nodes, store.FreezeNode{Name: node, State: NodePending})
			n = &f.Nodes[len(f.Nodes)-1]
		}
		fn(n)
		n.UpdatedAt = a.deps.Now().UTC()
		return nil
	})
	return err
}

func (a *DDLFreeze) fail(ctx context.Context, id string, res FreezeNodeResult, state string, err error) FreezeNodeResult {
	res.State, res.Error = state, firstLine(clickhouse.Cause(err), 400)
	if serr := a.setNode(ctx, id, res.Node, func(n *store.FreezeNode) { n.State, n.Error = state, res.Error }); serr != nil {
		res.Error += "; recording it failed: " + serr.Error()
	}
	return res
}

func (a *DDLFreeze) freezeNode(ctx context.Context, cl *config.Cluster, d FreezeDetails, n config.ClickHouseNode, np FreezeNodePlan, id string) FreezeNodeResult {
	res := FreezeNodeResult{FreezeID: id, Node: n.Name}
	if d.Method == string(ddlfreeze.MethodGrants) {
		return a.freezeGrants(ctx, cl, d, n, np, id, res)
	}
	return a.freezeProfile(ctx, cl, d, n, np, id, res)
}

func (a *DDLFreeze) privileges(d FreezeDetails) (grants.Privileges, error) {
	return grants.ParsePrivileges(d.Privileges)
}

func (a *DDLFreeze) freezeGrants(ctx context.Context, cl *config.Cluster, d FreezeDetails, n config.ClickHouseNode, np FreezeNodePlan, id string, res FreezeNodeResult) FreezeNodeResult {
	privs, err := a.privileges(d)
	if err != nil {
		return a.fail(ctx, id, res, NodeFailed, err)
	}
	c, err := a.deps.FreezeConns(cl, n, d.StmtTimeout)
	if err != nil {
		return a.fail(ctx, id, res, NodeFailed, err)
	}
	defer c.Close()
	rec, err := a.deps.Freezes.Freeze(ctx, id)
	if err != nil {
		return a.fail(ctx, id, res, NodeFailed, err)
	}
	// The snapshot: kept from an earlier attempt on this node (a resume or
	// a retry, when the first attempt changed something), else read now.
	snaps := map[string]grants.Snapshot{}
	if fn := rec.Node(n.Name); fn != nil && len(fn.Snapshot) > 0 {
		json.Unmarshal(fn.Snapshot, &snaps)
	}
	var apply []FreezeTargetPlan
	for _, t := range d.Targets {
		if slices.Contains(np.VerifyOnly, t.String()) {
			continue
		}
		apply = append(apply, t)
		if _, ok := snaps[t.Name]; ok {
			continue
		}
		s, err := ddlfreeze.ReadSnapshot(ctx, c, t.grants())
		if err != nil {
			return a.fail(ctx, id, res, NodeFailed, err)
		}
		if err := grants.Refuse(s); err != nil {
			return a.fail(ctx, id, res, NodeFailed, err)
		}
		snaps[t.Name] = s
	}
	snapJSON, _ := json.Marshal(snaps)
	res.Snapshot = snapJSON
	// Stored before anything changes.
	if err := a.setNode(ctx, id, n.Name, func(fn *store.FreezeNode) { fn.State, fn.Error, fn.Snapshot = NodeApplying, "", snapJSON }); err != nil {
		return a.fail(ctx, id, res, NodeFailed, fmt.Errorf("store the snapshot before changing anything: %w", err))
	}
	var verified []string
	for _, t := range apply {
		f, err := ddlfreeze.Freeze(ctx, c, snaps[t.Name], privs)
		if f.Revoke != "" {
			res.Statements = append(res.Statements, f.Revoke)
		}
		if err != nil {
			return a.fail(ctx, id, res, NodeFailed, err)
		}
		verified = append(verified, t.String()+" holds none of "+strings.Join(privs.Names(), ", "))
	}
	// Targets in replicated storage applied on the first node: wait until
	// the change shows here.
	for _, name := range np.VerifyOnly {
		t := targetByString(d.Targets, name)
		before, ok := a.firstSnapshot(ctx, id, d, t)
		if !ok {
			return a.fail(ctx, id, res, NodeFailed, fmt.Errorf("no snapshot of %s on %s to verify against", name, d.Nodes[0].Name))
		}
		err := a.poll(ctx, d.VerifyTimeout, func() error {
			after, err := ddlfreeze.ReadSnapshot(ctx, c, t.grants())
			if err != nil {
				return err
			}
			return grants.VerifyFrozen(before, after, privs)
		})
		if err != nil {
			return a.fail(ctx, id, res, NodeFailed, fmt.Errorf("the change made on %s through replicated access storage did not show here within %s: %w", d.Nodes[0].Name, d.VerifyTimeout, err))
		}
		verified = append(verified, name+" frozen through replicated storage")
	}
	applied, _ := json.Marshal(res.Statements)
	res.State, res.Verified = NodeFrozen, "SHOW GRANTS: "+strings.Join(verified, "; ")
	a.setNode(ctx, id, n.Name, func(fn *store.FreezeNode) { fn.State, fn.Error, fn.Applied = NodeFrozen, "", applied })
	return res
}

func targetByString(ts []FreezeTargetPlan, s string) FreezeTargetPlan {
	for _, t := range ts {
		if t.String() == s {
			return t
		}
	}
	return FreezeTargetPlan{}
}

func (a *DDLFreeze) firstSnapshot(ctx context.Context, id string, d FreezeDetails, t FreezeTargetPlan) (grants.Snapshot, bool) {
	rec, err := a.deps.Freezes.Freeze(ctx, id)
	if err != nil || len(d.Nodes) == 0 {
		return grants.Snapshot{}, false
	}
	fn := rec.Node(d.Nodes[0].Name)
	if fn == nil {
		return grants.Snapshot{}, false
	}
	snaps := map[string]grants.Snapshot{}
	if json.Unmarshal(fn.Snapshot, &snaps) != nil {
		return grants.Snapshot{}, false
	}
	s, ok := snaps[t.Name]
	return s, ok
}

// poll runs check until it succeeds or timeout passes; the last error is
// returned.
func (a *DDLFreeze) poll(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(a.Poll):
		}
	}
}

func (a *DDLFreeze) freezeProfile(ctx context.Context, cl *config.Cluster, d FreezeDetails, n config.ClickHouseNode, np FreezeNodePlan, id string, res FreezeNodeResult) FreezeNodeResult {
	rec, err := a.deps.Freezes.Freeze(ctx, id)
	if err != nil {
		return a.fail(ctx, id, res, NodeFailed, err)
	}
	snap := profileSnapshot{File: "unknown (delivered by command)"}
	if d.Delivery == "path" {
		w := profile.LocalWriter{Dir: filepath.Dir(np.Path), Name: filepath.Base(np.Path)}
		h, exists, err := w.Read()
		switch {
		case err != nil:
			return a.fail(ctx, id, res, NodeFailed, err)
		case !exists:
			snap.File = "absent"
		default:
			snap.File = "chmedic's (freeze " + h.FreezeID + ")"
		}
	}
	checks, unverified := a.profileChecks(cl, n, d.Profiles, false)
	snap.Setting = strings.Join(append(readProfiles(ctx, checks), unverifiedLine(unverified, "not read")), "; ")
	snap.Setting = strings.TrimSuffix(snap.Setting, "; ")
	snapJSON, _ := json.Marshal(snap)
	res.Snapshot = snapJSON
	if fn := rec.Node(n.Name); fn == nil || len(fn.Snapshot) == 0 || fn.State != NodeApplying {
		if err := a.setNode(ctx, id, n.Name, func(fn *store.FreezeNode) { fn.State, fn.Error, fn.Snapshot = NodeApplying, "", snapJSON }); err != nil {
			return a.fail(ctx, id, res, NodeFailed, fmt.Errorf("store the snapshot before changing anything: %w", err))
		}
	}
	root := np.Root
	if root == "" {
		root = profile.RootYandex
	}
	content, err := profile.Render(profile.Override{FreezeID: id, Profiles: d.Profiles, Expires: rec.ExpiresAt, Root: root})
	if err != nil {
		return a.fail(ctx, id, res, NodeFailed, err)
	}
	if err := a.deliver(ctx, cl, np, content); err != nil {
		return a.fail(ctx, id, res, NodeFailed, err)
	}
	// Verified by the arm step, on every written node at once: the server
	// re-reads users.d by itself (about every 2 s), so waiting here, node
	// after node, would add those waits up.
	applied, _ := json.Marshal(map[string]string{"path": np.Path, "content": string(content)})
	res.State, res.Path = NodeWritten, np.Path
	if err := a.setNode(ctx, id, n.Name, func(fn *store.FreezeNode) { fn.State, fn.Error, fn.Applied = NodeWritten, "", applied }); err != nil {
		return a.fail(ctx, id, res, NodeFailed, err)
	}
	return res
}

// verifyProfiles waits, on every node in state from at once, until a new
// session of the check user shows the profile frozen (want true) or not
// (false), and records each node's state: to, or the failure. It returns a
// line per node.
func (a *DDLFreeze) verifyProfiles(ctx context.Context, cl *config.Cluster, d FreezeDetails, id, from, to, failState string, want bool) []string {
	rec, err := a.deps.Freezes.Freeze(ctx, id)
	if err != nil {
		return []string{"the freeze could not be read: " + err.Error()}
	}
	var mu sync.Mutex
	var lines []string
	var wg sync.WaitGroup
	for _, fn := range rec.Nodes {
		if fn.State != from {
			continue
		}
		n, ok := clusterNode(cl, fn.Name)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			checks, unverified := a.profileChecks(cl, n, d.Profiles, true)
			last := make([]profile.State, len(checks))
			err := a.poll(ctx, d.VerifyTimeout, func() error {
				for i, c := range checks {
					st, err := c.Checker.Check(ctx)
					if err != nil {
						return fmt.Errorf("profile %s (%s): %w", c.Profile, c.User, err)
					}
					last[i] = st
					if st.Frozen() != want {
						return fmt.Errorf("a new session of %s (profile %s) still has %s", c.User, c.Profile, st)
					}
				}
				return nil
			})
			var got []string
			for i, c := range checks {
				got = append(got, fmt.Sprintf("profile %s (%s): %s", c.Profile, c.User, last[i]))
			}
			written := "written"
			if !want {
				written = "removed"
			}
			tail := ""
			if l := unverifiedLine(unverified, written); l != "" {
				tail = "; " + l
			}
			var line string
			switch {
			case err == nil:
				line = fmt.Sprintf("%s %s, verified: %s%s", n.Name, to, strings.Join(got, "; "), tail)
				a.setNode(ctx, id, n.Name, func(x *store.FreezeNode) { x.State, x.Error = to, "" })
			case !want && d.Delivery == "path" && clickhouse.Exception(err) == nil && (len(last) == 0 || last[0].Version.IsZero()):
				// The node does not answer, but its override is gone from
				// this machine: it starts (or reloads) without it.
				line = fmt.Sprintf("%s %s: the override is removed; the node does not answer (%s) and reads users.d without it when it comes back", n.Name, to, firstLine(clickhouse.Cause(err), 160))
				a.setNode(ctx, id, n.Name, func(x *store.FreezeNode) { x.State, x.Error = to, "" })
			default:
				what := "written but not in effect"
				if !want {
					what = "removed but DDL is not back"
				}
				msg := fmt.Sprintf("override %s within %s: %s", what, d.VerifyTimeout, firstLine(clickhouse.Cause(err), 300))
				line = n.Name + " " + failState + ": " + msg + tail
				a.setNode(ctx, id, n.Name, func(x *store.FreezeNode) { x.State, x.Error = failState, msg })
			}
			mu.Lock()
			lines = append(lines, line)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lines)
	return lines
}

// deliver writes the override to a node (path or command).
func (a *DDLFreeze) deliver(ctx context.Context, cl *config.Cluster, np FreezeNodePlan, content []byte) error {
	f := cl.Actions.DDLFreeze
	if len(np.Command) == 0 {
		return profile.LocalWriter{Dir: filepath.Dir(np.Path), Name: filepath.Base(np.Path)}.Write(content)
	}
	_, err := a.deps.Commands.Run(ctx, Command{Argv: np.Command, Timeout: f.Command.Timeout, Stdin: bytes.NewReader(content), MaxOutput: 64 << 10})
	return err
}

// killResult is the Data of a kill_ddl step. The step itself does not
// fail when the KILL QUERY does (the arm step after it must still run, or
// the freeze would stay unarmed): the arm step reads these and fails the
// execution with "frozen; killing running DDL failed on NODE: ..." (the
// outcome is partial: the freeze is in place, the kill is not).
type killResult struct {
	Node   string `json:"node"`
	Failed string `json:"kill_failed,omitempty"`
}

func (a *DDLFreeze) killDDL(ctx context.Context, cl *config.Cluster, d FreezeDetails, n config.ClickHouseNode, step Step) (StepResult, error) {
	failed := func(err error) (StepResult, error) {
		msg := firstLine(clickhouse.Cause(err), 200)
		b, _ := json.Marshal(killResult{Node: n.Name, Failed: msg})
		return StepResult{Output: "FAILED: KILL QUERY on " + n.Name + ": " + msg + " (the running DDL was not killed; the arm step reports it)", Data: b}, nil
	}
	c, err := a.deps.FreezeConns(cl, n, d.StmtTimeout)
	if err != nil {
		return failed(err)
	}
	defer c.Close()
	for _, q := range step.SQL {
		if err := c.Exec(ctx, q); err != nil {
			return failed(err)
		}
	}
	b, _ := json.Marshal(killResult{Node: n.Name})
	return StepResult{Output: "KILL QUERY sent", Data: b}, nil
}

// killFailures returns "NODE: error" for each kill_ddl step that failed.
func killFailures(d FreezeDetails, prior map[string]StepResult) []string {
	var out []string
	for _, np := range d.Nodes {
		res, ok := prior[np.Name+"/kill_ddl"]
		if !ok {
			continue
		}
		var k killResult
		if json.Unmarshal(res.Data, &k) == nil && k.Failed != "" {
			out = append(out, np.Name+": "+k.Failed)
		}
	}
	return out
}

func (a *DDLFreeze) arm(ctx context.Context, cl *config.Cluster, d FreezeDetails, prior map[string]StepResult) (StepResult, error) {
	id, err := freezeIDOf(d, prior)
	if err != nil {
		return StepResult{}, err
	}
	var verified []string
	if d.Method == string(ddlfreeze.MethodProfile) {
		verified = a.verifyProfiles(ctx, cl, d, id, NodeWritten, NodeFrozen, NodeFailed, true)
	}
	now := a.deps.Now().UTC()
	var failed []string
	rec, err := a.deps.Freezes.UpdateFreeze(ctx, id, func(f *store.FreezeRecord) error {
		failed = nil
		for _, n := range f.Nodes {
			if n.State != NodeFrozen {
				failed = append(failed, fmt.Sprintf("%s %s: %s", n.Name, n.State, n.Error))
			}
		}
		f.State = store.FreezeActive
		if len(failed) > 0 {
			f.State = store.FreezePartial
		}
		if d.Mode == "extend" {
			f.Extensions = append(f.Extensions, fmt.Sprintf("%s: expiry %s → %s", now.Format(time.RFC3339), f.ExpiresAt.UTC().Format(time.RFC3339), now.Add(d.Duration).Format(time.RFC3339)))
			f.Duration = d.Duration
		}
		f.ExpiresAt = now.Add(d.Duration)
		f.ReminderAt, f.RemindedAt, f.PartialSaidAt = time.Time{}, time.Time{}, time.Time{}
		if d.ReminderBefore > 0 && d.ReminderBefore < d.Duration {
			f.ReminderAt = f.ExpiresAt.Add(-d.ReminderBefore)
		}
		return nil
	})
	if err != nil {
		return StepResult{}, err
	}
	b, _ := json.Marshal(map[string]any{"freeze_id": id, "state": rec.State, "expires_at": rec.ExpiresAt})
	out := StepResult{Output: fmt.Sprintf("freeze %s %s; chmedic lifts it at %s UTC", id, rec.State, rec.ExpiresAt.Format("2006-01-02 15:04:05")), Data: b}
	if len(verified) > 0 {
		out.Output += "; " + strings.Join(verified, "; ")
	}
	kills := killFailures(d, prior)
	if len(failed) > 0 {
		err := fmt.Errorf("partial: DDL is frozen on some nodes only; not frozen: %s (the freeze still expires at %s UTC; request ddl_freeze again to retry those nodes, or ddl_unfreeze to lift it)",
			strings.Join(failed, "; "), rec.ExpiresAt.Format("15:04:05"))
		if len(kills) > 0 {
			err = fmt.Errorf("%w; killing running DDL failed on %s", err, strings.Join(kills, "; "))
		}
		return out, err
	}
	if len(kills) > 0 {
		// The freeze is in place (active); the execution is partial.
		return out, fmt.Errorf("frozen; killing running DDL failed on %s (the DDL already running there goes on; the freeze is %s until %s UTC)",
			strings.Join(kills, "; "), rec.State, rec.ExpiresAt.Format("15:04:05"))
	}
	return out, nil
}

func (a *DDLFreeze) unfreezeNode(ctx context.Context, cl *config.Cluster, d FreezeDetails, n config.ClickHouseNode, np FreezeNodePlan, id string) FreezeNodeResult {
	res := FreezeNodeResult{FreezeID: id, Node: n.Name}
	rec, err := a.deps.Freezes.Freeze(ctx, id)
	if err != nil {
		return a.fail(ctx, id, res, NodeLiftFailed, err)
	}
	fn := rec.Node(n.Name)
	if fn == nil || fn.State == NodeLifted {
		res.State, res.Verified = NodeLifted, "already lifted"
		return res
	}
	if d.Method == string(ddlfreeze.MethodGrants) {
		return a.unfreezeGrants(ctx, cl, d, n, *fn, id, res)
	}
	return a.unfreezeProfile(ctx, cl, d, n, *fn, id, res)
}

func (a *DDLFreeze) lifted(ctx context.Context, id string, res FreezeNodeResult, restored any) FreezeNodeResult {
	b, _ := json.Marshal(restored)
	res.State = NodeLifted
	a.setNode(ctx, id, res.Node, func(fn *store.FreezeNode) { fn.State, fn.Error, fn.Restored = NodeLifted, "", b })
	return res
}

func (a *DDLFreeze) unfreezeGrants(ctx context.Context, cl *config.Cluster, d FreezeDetails, n config.ClickHouseNode, fn store.FreezeNode, id string, res FreezeNodeResult) FreezeNodeResult {
	snaps := map[string]grants.Snapshot{}
	if len(fn.Snapshot) == 0 {
		// The freeze failed before anything changed here.
		res.Verified = "nothing was changed on this node"
		return a.lifted(ctx, id, res, map[string]string{"note": res.Verified})
	}
	if err := json.Unmarshal(fn.Snapshot, &snaps); err != nil {
		return a.fail(ctx, id, res, NodeLiftFailed, fmt.Errorf("stored snapshot: %w", err))
	}
	privs, err := a.privileges(d)
	if err != nil {
		return a.fail(ctx, id, res, NodeLiftFailed, err)
	}
	c, err := a.deps.FreezeConns(cl, n, d.StmtTimeout)
	if err != nil {
		return a.fail(ctx, id, res, NodeLiftFailed, err)
	}
	defer c.Close()
	var restores []grants.Restore
	var verified []string
	for _, t := range d.Targets {
		before, ok := snaps[t.Name]
		if !ok {
			continue // verified through replicated storage only
		}
		r, err := ddlfreeze.Unfreeze(ctx, c, before, privs)
		res.Statements = append(res.Statements, r.Statements...)
		for _, g := range r.AddedDuringFreeze {
			res.Added = append(res.Added, t.String()+": "+g.String())
		}
		res.Other = append(res.Other, r.OtherChanges...)
		if err != nil {
			return a.fail(ctx, id, res, NodeLiftFailed, err)
		}
		restores = append(restores, r)
		verified = append(verified, t.String()+" holds its snapshot's DDL again")
	}
	res.Verified = "SHOW GRANTS: " + strings.Join(verified, "; ")
	return a.lifted(ctx, id, res, restores)
}

func (a *DDLFreeze) unfreezeProfile(ctx context.Context, cl *config.Cluster, d FreezeDetails, n config.ClickHouseNode, fn store.FreezeNode, id string, res FreezeNodeResult) FreezeNodeResult {
	f := cl.Actions.DDLFreeze
	path, argv, err := overridePath(cl, n, "remove")
	if err != nil {
		return a.fail(ctx, id, res, NodeLiftFailed, err)
	}
	if len(argv) == 0 {
		if err := (profile.LocalWriter{Dir: filepath.Dir(path), Name: filepath.Base(path)}).Remove(); err != nil {
			return a.fail(ctx, id, res, NodeLiftFailed, err)
		}
	} else if _, err := a.deps.Commands.Run(ctx, Command{Argv: argv, Timeout: f.Command.Timeout, MaxOutput: 64 << 10}); err != nil {
		return a.fail(ctx, id, res, NodeLiftFailed, err)
	}
	res.State, res.Path = NodeRemoved, path
	if err := a.setNode(ctx, id, n.Name, func(x *store.FreezeNode) { x.State, x.Error = NodeRemoved, "" }); err != nil {
		return a.fail(ctx, id, res, NodeLiftFailed, err)
	}
	return res
}

func (a *DDLFreeze) lift(ctx context.Context, cl *config.Cluster, d FreezeDetails) (StepResult, error) {
	var verified []string
	if d.Method == string(ddlfreeze.MethodProfile) {
		verified = a.verifyProfiles(ctx, cl, d, d.FreezeID, NodeRemoved, NodeLifted, NodeLiftFailed, false)
	}
	now := a.deps.Now().UTC()
	var failed []string
	rec, err := a.deps.Freezes.UpdateFreeze(ctx, d.FreezeID, func(f *store.FreezeRecord) error {
		if !f.Open() {
			return nil
		}
		failed = nil
		for _, n := range f.Nodes {
			if n.State != NodeLifted && n.State != NodePending {
				failed = append(failed, fmt.Sprintf("%s %s: %s", n.Name, n.State, n.Error))
			}
		}
		if len(failed) > 0 {
			f.State, f.LastError = store.FreezePartial, strings.Join(failed, "; ")
			if d.Expiry {
				f.LiftAttempts++
			}
			return nil
		}
		f.State, f.EndedAt, f.LastError = store.FreezeLifted, now, ""
		f.EndedBy = "ddl_unfreeze"
		if d.Expiry {
			f.State, f.EndedBy = store.FreezeExpired, "chmedic (expiry)"
		}
		return nil
	})
	if err != nil {
		return StepResult{}, err
	}
	b, _ := json.Marshal(map[string]any{"freeze_id": rec.ID, "state": rec.State})
	out := StepResult{Output: fmt.Sprintf("freeze %s %s", rec.ID, rec.State), Data: b}
	if len(verified) > 0 {
		out.Output += "; " + strings.Join(verified, "; ")
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("partial: the freeze is still on where it could not be lifted: %s", strings.Join(failed, "; "))
	}
	return out, nil
}
