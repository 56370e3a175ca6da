package probe

import (
	"context"
	"fmt"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.conf — the serving configuration that matters to diagnosis.
//
// Facts: max_client_cnxns (0 = unlimited in ZooKeeper), tick_time_ms,
// min_session_timeout_ms, max_session_timeout_ms.
func keeperConf() Spec {
	return Spec{Name: "keeper.conf", Kind: KindKeeper, Doc: "Connection limit and session timeouts (conf).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "conf")
			if fail != nil {
				return *fail
			}
			c, err := keeper.ParseConf(raw)
			if err != nil {
				return parseFailed("conf", err)
			}
			r := keeperResult(t, "conf")
			limit := "unlimited"
			if c.HasMaxClientCnxns {
				r.SetFact("max_client_cnxns", float64(c.MaxClientCnxns))
				if c.MaxClientCnxns > 0 {
					limit = fmt.Sprint(c.MaxClientCnxns)
				}
			}
			if c.TickTime > 0 {
				r.SetFact("tick_time_ms", float64(c.TickTime))
			}
			if c.MinSessionTimeout > 0 {
				r.SetFact("min_session_timeout_ms", float64(c.MinSessionTimeout))
			}
			if c.MaxSessionTimeout > 0 {
				r.SetFact("max_session_timeout_ms", float64(c.MaxSessionTimeout))
			}
			r.Summary = fmt.Sprintf("maxClientCnxns %s, session timeout %d–%d ms", limit, c.MinSessionTimeout, c.MaxSessionTimeout)
			return r
		}}
}
