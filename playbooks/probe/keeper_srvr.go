package probe

import (
	"context"
	"fmt"
	"strings"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.srvr — server mode, version, latency, connections, node count,
// and on ZooKeeper the zxid counter's progress towards its overflow.
//
// Facts: latency_avg_ms, latency_max_ms, connections, outstanding,
// node_count; on ZooKeeper zxid_epoch, zxid_counter and zxid_counter_share
// (the low 32 bits of the zxid as a share of 2^32).
// Attrs: mode, version, flavor, keeper_kind.
//
// srvr is the one word ZooKeeper 3.5+ allows by default, so when mntr is
// not answered srvr's latency and outstanding count are held against the
// thresholds here (when mntr answers, keeper.mntr does that).
//
// The zxid counter: at 2^32 ZooKeeper forces a new epoch (a leader
// election) and every session drops; it warns at
// Thresholds.ZxidWarnShare. ClickHouse Keeper's zxid is a plain 64-bit
// counter with no such limit.
func keeperSrvr() Spec {
	return Spec{Name: "keeper.srvr", Kind: KindKeeper, Doc: "Coordination node mode, version, latency, connections, node count, zxid counter (srvr).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "srvr")
			if fail != nil {
				return *fail
			}
			s, err := keeper.ParseSrvr(raw)
			if err != nil {
				return parseFailed("srvr", err)
			}
			r := keeperResult(t, "srvr")
			th := t.Thresholds
			r.SetFact("latency_avg_ms", s.LatencyAvg)
			r.SetFact("latency_max_ms", s.LatencyMax)
			r.SetFact("connections", float64(s.Connections))
			r.SetFact("outstanding", float64(s.Outstanding))
			r.SetFact("node_count", float64(s.NodeCount))
			r.SetAttr("mode", s.Mode)
			r.SetAttr("version", s.Version)
			if s.Flavor != keeper.FlavorUnknown {
				r.SetAttr("flavor", string(s.Flavor))
			}
			kind := KeeperKind(t)
			var notes []string
			if t.KeeperKind != keeper.FlavorUnknown && s.Flavor != keeper.FlavorUnknown && s.Flavor != t.KeeperKind {
				r.Raise(Warn)
				notes = append(notes, fmt.Sprintf("clusters[].keeper.kind is %s but this node answers as %s: set kind to %s", t.KeeperKind, kindName(s.Flavor), s.Flavor))
			}
			if _, ok := answeredMntr(t); !ok {
				switch {
				case s.LatencyAvg >= ms(th.KeeperLatencyCrit):
					r.Raise(Crit)
					notes = append(notes, fmt.Sprintf("average latency %.1f ms (severe above %s)", s.LatencyAvg, th.KeeperLatencyCrit))
				case s.LatencyAvg >= ms(th.KeeperLatencyWarn):
					r.Raise(Warn)
					notes = append(notes, fmt.Sprintf("average latency %.1f ms (stressed above %s)", s.LatencyAvg, th.KeeperLatencyWarn))
				}
				switch {
				case th.OutstandingRequestsCrit > 0 && s.Outstanding >= int64(th.OutstandingRequestsCrit):
					r.Raise(Crit)
					notes = append(notes, fmt.Sprintf("%d outstanding requests", s.Outstanding))
				case th.OutstandingRequestsWarn > 0 && s.Outstanding >= int64(th.OutstandingRequestsWarn):
					r.Raise(Warn)
					notes = append(notes, fmt.Sprintf("%d outstanding requests", s.Outstanding))
				}
			}
			zxid := ""
			if s.HasZxid && kind == keeper.FlavorZooKeeper {
				share := float64(s.Zxid.Counter()) / (1 << 32)
				r.SetFact("zxid_epoch", float64(s.Zxid.Epoch()))
				r.SetFact("zxid_counter", float64(s.Zxid.Counter()))
				r.SetFact("zxid_counter_share", share)
				zxid = fmt.Sprintf(", zxid %s (epoch %d, counter at %.1f%% of 2^32)", s.Zxid, s.Zxid.Epoch(), share*100)
				if th.ZxidWarnShare > 0 && share >= th.ZxidWarnShare {
					r.Raise(Warn)
					notes = append(notes, fmt.Sprintf("zxid counter at %.1f%% of 2^32 (warns from %.0f%%): when it wraps, ZooKeeper forces a new epoch and every session drops; plan a controlled leader restart in a quiet hour",
						share*100, th.ZxidWarnShare*100))
				}
			}
			mode := s.Mode
			if mode == "" {
				mode = "unknown mode"
			}
			r.Summary = fmt.Sprintf("%s, version %s, avg %s ms / max %s ms, %d connections, %d outstanding, %d znodes%s",
				mode, s.Version, num(s.LatencyAvg), num(s.LatencyMax), s.Connections, s.Outstanding, s.NodeCount, zxid)
			if len(notes) > 0 {
				r.Summary = strings.Join(notes, "; ") + " (" + r.Summary + ")"
			}
			return r
		}}
}

// num prints a latency without a needless fraction ("3", "3.2").
func num(f float64) string {
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%.1f", f)
}
