package probe

import (
	"context"
	"fmt"
	"strings"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.mntr — the coordination node's own view of its load.
//
// Facts: avg_latency_ms, max_latency_ms, outstanding_requests, znode_count,
// watch_count, ephemerals_count, alive_connections, open_fds (whenever
// printed), max_fds and fd_ratio (when there is a limit), followers,
// synced_followers, approximate_data_size.
// Attrs: server_state, version, flavor ("zookeeper" or "clickhouse-keeper",
// as the server says), max_fds ("unlimited" when ClickHouse Keeper prints
// 2^64-1), keeper_kind.
func keeperMntr() Spec {
	return Spec{Name: "keeper.mntr", Kind: KindKeeper, Doc: "Coordination latency, outstanding requests, znodes, watches, connections, file descriptors, followers (mntr).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "mntr")
			if fail != nil {
				if fail.Status == Crit && strings.Contains(fail.Summary, "quorum") {
					fail.SetAttr("server_state", "not serving")
				}
				return *fail
			}
			m, err := keeper.ParseMntr(raw)
			if err != nil {
				return parseFailed("mntr", err)
			}
			r := keeperResult(t, "mntr")
			th := t.Thresholds
			r.SetFact("avg_latency_ms", m.AvgLatency)
			r.SetFact("max_latency_ms", m.MaxLatency)
			r.SetFact("outstanding_requests", float64(m.OutstandingRequests))
			r.SetFact("znode_count", float64(m.ZnodeCount))
			r.SetFact("watch_count", float64(m.WatchCount))
			r.SetFact("ephemerals_count", float64(m.EphemeralsCount))
			r.SetFact("alive_connections", float64(m.NumAliveConnections))
			r.SetFact("approximate_data_size", float64(m.ApproximateDataSize))
			r.SetAttr("server_state", m.ServerState)
			r.SetAttr("version", keeper.CleanVersion(m.Version))
			flavor := "zookeeper"
			if m.Flavor == keeper.FlavorClickHouseKeeper {
				flavor = "clickhouse-keeper"
			}
			r.SetAttr("flavor", flavor)
			var notes []string
			switch {
			case m.AvgLatency >= ms(th.KeeperLatencyCrit):
				r.Raise(Crit)
				notes = append(notes, fmt.Sprintf("average latency %.1f ms (severe above %s)", m.AvgLatency, th.KeeperLatencyCrit))
			case m.AvgLatency >= ms(th.KeeperLatencyWarn):
				r.Raise(Warn)
				notes = append(notes, fmt.Sprintf("average latency %.1f ms (stressed above %s)", m.AvgLatency, th.KeeperLatencyWarn))
			}
			switch {
			case m.OutstandingRequests >= int64(th.OutstandingRequestsCrit):
				r.Raise(Crit)
				notes = append(notes, fmt.Sprintf("%d outstanding requests", m.OutstandingRequests))
			case m.OutstandingRequests >= int64(th.OutstandingRequestsWarn):
				r.Raise(Warn)
				notes = append(notes, fmt.Sprintf("%d outstanding requests", m.OutstandingRequests))
			}
			if m.HasFileDescriptors {
				r.SetFact("open_fds", float64(m.OpenFileDescriptorCount))
			}
			switch {
			case m.MaxFileDescriptorsUnlimited:
				r.SetAttr("max_fds", "unlimited")
			case m.MaxFileDescriptorCount > 0:
				ratio := float64(m.OpenFileDescriptorCount) / float64(m.MaxFileDescriptorCount)
				r.SetFact("max_fds", float64(m.MaxFileDescriptorCount))
				r.SetFact("fd_ratio", ratio)
				if ratio >= th.FDRatioWarn {
					r.Raise(Warn)
					notes = append(notes, fmt.Sprintf("%d of %d file descriptors open", m.OpenFileDescriptorCount, m.MaxFileDescriptorCount))
				}
			}
			if th.ZnodeCountWarn > 0 && m.ZnodeCount >= int64(th.ZnodeCountWarn) {
				r.Raise(Warn)
				notes = append(notes, fmt.Sprintf("%d znodes", m.ZnodeCount))
			}
			if m.Followers != nil {
				f := *m.Followers
				r.SetFact("followers", float64(f))
				if m.SyncedFollowers != nil {
					s := *m.SyncedFollowers
					r.SetFact("synced_followers", float64(s))
					if s < f {
						r.Raise(Warn)
						notes = append(notes, fmt.Sprintf("only %d of %d followers in sync", s, f))
					}
				}
			}
			state := m.ServerState
			if state == "" {
				state = "unknown state"
			}
			r.Summary = fmt.Sprintf("%s, avg %.1f ms / max %.0f ms, %d outstanding, %d znodes, %d connections",
				state, m.AvgLatency, m.MaxLatency, m.OutstandingRequests, m.ZnodeCount, m.NumAliveConnections)
			if len(notes) > 0 {
				r.Summary = strings.Join(notes, "; ") + " (" + r.Summary + ")"
			}
			return r
		}}
}
