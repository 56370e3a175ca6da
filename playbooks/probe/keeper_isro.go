package probe

import (
	"context"
	"fmt"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.isro — is the node serving read-only?
//
// Read per kind. ZooKeeper: "ro" is read-only mode (it lost quorum and
// serves only read-only clients; writes are refused). ClickHouse Keeper:
// "ro" means the node is an observer (IsReadOnlyCommand answers ro exactly
// when the dispatcher is an observer), a normal non-voting member; that is
// cross-checked with mntr's zk_server_state (or srvr's Mode).
//
// Facts: read_only (1 only for a read-only ZooKeeper), observer (1 for a
// Keeper observer).
func keeperIsro() Spec {
	return Spec{Name: "keeper.isro", Kind: KindKeeper, Doc: "Whether the coordination node serves read-only (isro; on ClickHouse Keeper ro means an observer).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "isro")
			if fail != nil {
				return *fail
			}
			ro, err := keeper.ParseIsro(raw)
			if err != nil {
				return parseFailed("isro", err)
			}
			r := keeperResult(t, "isro")
			r.SetFact("read_only", 0)
			if !ro {
				r.Summary = "read-write"
				return r
			}
			if KeeperKind(t) != keeper.FlavorClickHouseKeeper {
				r.Status = Crit
				r.Summary = "ZooKeeper is in read-only mode: it lost quorum and serves only read-only clients; writes are refused"
				r.SetFact("read_only", 1)
				return r
			}
			r.SetFact("observer", 1)
			state, from := serverState(t)
			switch {
			case state == "observer":
				r.Summary = fmt.Sprintf("observer, a non-voting member (ClickHouse Keeper's isro answers ro for observers; %s agrees)", from)
			case state == "":
				r.Summary = "observer, a non-voting member (ClickHouse Keeper's isro answers ro for observers; not cross-checked: neither mntr nor srvr answered)"
			default:
				r.Status = Warn
				r.Summary = fmt.Sprintf("isro answered ro (an observer on ClickHouse Keeper) but %s says %s", from, state)
			}
			return r
		}}
}

// serverState is the node's role from mntr, else srvr, and which said it.
func serverState(t *Target) (state, from string) {
	if m, ok := answeredMntr(t); ok && m.ServerState != "" {
		return m.ServerState, "mntr zk_server_state"
	}
	if s := t.Keeper.Srvr; s != nil && s.Err == nil && s.Value.Mode != "" {
		return s.Value.Mode, "srvr Mode"
	}
	return "", ""
}
