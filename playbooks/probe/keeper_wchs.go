package probe

import (
	"context"
	"fmt"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.wchs — watch totals (cheap; never the per-path listings).
//
// Facts: watches, watch_paths, watch_connections.
func keeperWchs() Spec {
	return Spec{Name: "keeper.wchs", Kind: KindKeeper, Doc: "Watch totals (wchs).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "wchs")
			if fail != nil {
				return *fail
			}
			w, err := keeper.ParseWchs(raw)
			if err != nil {
				return parseFailed("wchs", err)
			}
			r := keeperResult(t, "wchs")
			r.SetFact("watches", float64(w.TotalWatches))
			r.SetFact("watch_paths", float64(w.Paths))
			r.SetFact("watch_connections", float64(w.Connections))
			r.Summary = fmt.Sprintf("%d watches on %d paths from %d connections", w.TotalWatches, w.Paths, w.Connections)
			return r
		}}
}
