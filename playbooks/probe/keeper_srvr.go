package probe

import (
	"context"
	"fmt"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.srvr — server mode, version and latency summary.
//
// Facts: latency_avg_ms, latency_max_ms, connections, outstanding, node_count.
// Attrs: mode, version.
func keeperSrvr() Spec {
	return Spec{Name: "keeper.srvr", Kind: KindKeeper, Doc: "Coordination node mode, version, latency and node count (srvr).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "srvr")
			if fail != nil {
				return *fail
			}
			s, err := keeper.ParseSrvr(raw)
			if err != nil {
				return parseFailed("srvr", err)
			}
			var r Result
			r.SetFact("latency_avg_ms", s.LatencyAvg)
			r.SetFact("latency_max_ms", s.LatencyMax)
			r.SetFact("connections", float64(s.Connections))
			r.SetFact("outstanding", float64(s.Outstanding))
			r.SetFact("node_count", float64(s.NodeCount))
			r.SetAttr("mode", s.Mode)
			r.SetAttr("version", s.Version)
			r.Summary = fmt.Sprintf("%s, version %s, %d znodes, %d connections", s.Mode, s.Version, s.NodeCount, s.Connections)
			return r
		}}
}
