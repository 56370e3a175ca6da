package actions

import (
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"

	"github.com/chmedic/chmedic/internal/store"
)

// kill_running_ddl: a KILL QUERY that fails on one node is not a silent
// success. The freeze is still armed (active, its timer set), the kill step
// says FAILED, and the execution is partial with "frozen; killing running
// DDL failed on ch-2: ...". Before, the step said "not killed: ..." and
// the execution succeeded.
func TestDDLFreezeKillFailureIsReported(t *testing.T) {
	before := []string{grantsBefore1, grantsBefore2, grantsBefore3, grantsBefore4, grantsRole}
	nodes := map[string]*grantsNode{}
	for _, n := range []string{"ch-1", "ch-2"} {
		nodes[n] = &grantsNode{name: n, storage: "local_directory", lines: before, after: map[string][]string{revokeApp: {grantsBefore1, grantsRole}}}
	}
	nodes["ch-2"].execErr = func(stmt string) error {
		if strings.HasPrefix(stmt, "KILL QUERY") {
			return &proto.Exception{Code: 497, Message: "chmedic_actions: Not enough privileges. To execute this query it's necessary to have grant KILL QUERY ON *.*"}
		}
		return nil
	}
	rig, _ := grantsRig(t, nodes)
	rig.cfg.Clusters[0].Actions.DDLFreeze.KillRunningDDL = true
	_, out := rig.run(t, DDLFreezeKind, Request{Cluster: "test", Params: map[string]string{"duration": "20m"}})
	if out.State != ExecPartial {
		t.Fatalf("freeze with a failed kill: %s %q %v", out.State, out.Error, states(out))
	}
	if !strings.Contains(out.Error, "frozen; killing running DDL failed on ch-2: ") || !strings.Contains(out.Error, "Not enough privileges") || strings.Contains(out.Error, "ch-1:") {
		t.Errorf("outcome error %q", out.Error)
	}
	for _, s := range out.Steps {
		switch s.Step.ID {
		case "ch-1/kill_ddl":
			if s.Result.Output != "KILL QUERY sent" {
				t.Errorf("ch-1 kill: %q", s.Result.Output)
			}
		case "ch-2/kill_ddl":
			if !strings.HasPrefix(s.Result.Output, "FAILED: KILL QUERY on ch-2") {
				t.Errorf("ch-2 kill: %q", s.Result.Output)
			}
		}
	}
	f, ok, _ := rig.st.OpenFreeze(t.Context(), "test")
	if !ok || f.State != store.FreezeActive || f.ExpiresAt.IsZero() {
		t.Fatalf("the freeze itself is not armed: %+v", f)
	}
	// The unfreeze still works.
	for _, g := range nodes {
		g.after["GRANT ALTER UPDATE(`status`) ON `shop`.`orders` TO `app`"] = before
	}
	if _, out := rig.run(t, DDLUnfreezeKind, Request{Cluster: "test"}); out.State != ExecSucceeded {
		t.Errorf("unfreeze: %s %q %v", out.State, out.Error, states(out))
	}
}
