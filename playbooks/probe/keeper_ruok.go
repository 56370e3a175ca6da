package probe

import (
	"context"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.ruok — is the coordination process alive?
//
// Facts: ok (1 when it answered imok, 0 otherwise).
// imok only proves the process is up, not that it has quorum (see
// keeper.mntr and keeper.isro for that).
func keeperRuok() Spec {
	return Spec{Name: "keeper.ruok", Kind: KindKeeper, Doc: "Coordination node liveness (ruok → imok).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "ruok")
			if fail != nil {
				if fail.Skipped == "" {
					fail.SetFact("ok", 0)
				}
				return *fail
			}
			var r Result
			if err := keeper.ParseRuok(raw); err != nil {
				r.Status = Crit
				r.Summary = "answered ruok with " + OneLine(raw, 60) + " instead of imok"
				r.SetFact("ok", 0)
				return r
			}
			r.Summary = "imok"
			r.SetFact("ok", 1)
			return r
		}}
}
