package probe

import (
	"context"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.isro — is the node serving read-only (it lost quorum)?
//
// Facts: read_only (1/0).
func keeperIsro() Spec {
	return Spec{Name: "keeper.isro", Kind: KindKeeper, Doc: "Whether the coordination node serves read-only (isro).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "isro")
			if fail != nil {
				return *fail
			}
			ro, err := keeper.ParseIsro(raw)
			if err != nil {
				return parseFailed("isro", err)
			}
			var r Result
			if ro {
				r.Status = Crit
				r.Summary = "serving read-only: no quorum, writes are refused"
				r.SetFact("read_only", 1)
				return r
			}
			r.Summary = "read-write"
			r.SetFact("read_only", 0)
			return r
		}}
}
