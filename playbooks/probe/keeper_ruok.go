package probe

import (
	"context"
	"fmt"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.ruok — is the coordination process alive?
//
// Facts: ok (1 when the node answered any four-letter word — imok, another
// word's answer, even a whitelist refusal — and 0 when every word tried
// met a refused connection, a timeout or silence).
// Attrs: alive_by (the word that proved it), keeper_kind.
//
// Liveness is not "ruok said imok": ZooKeeper 3.5+ allows only srvr by
// default and answers ruok with a refusal, which is proof of life. imok
// only proves the process is up, not that it has quorum (see keeper.mntr,
// keeper.srvr and keeper.isro for that).
func keeperRuok() Spec {
	return Spec{Name: "keeper.ruok", Kind: KindKeeper, Doc: "Coordination node liveness: ruok → imok, or any other word answered (a whitelist refusal included).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "ruok")
			if t.Keeper == nil {
				return *fail
			}
			live := t.Keeper.Liveness(KeeperKind(t))
			if live.Tried == 0 {
				if fail != nil {
					return *fail // not requested, skipped
				}
			}
			if fail == nil {
				r := keeperResult(t, "ruok")
				if err := keeper.ParseRuok(raw); err != nil {
					r.Status = Crit
					r.Summary = "answered ruok with " + OneLine(raw, 60) + " instead of imok"
				} else {
					r.Summary = "imok"
				}
				r.SetFact("ok", 1)
				r.SetAttr("alive_by", "ruok")
				return r
			}
			if !live.Alive {
				if fail.Skipped == "" {
					fail.SetFact("ok", 0)
					fail.Raise(Crit)
				}
				if fail.Skipped == "" && live.Tried > 1 {
					fail.Summary += fmt.Sprintf("; none of the %d words tried got an answer", live.Tried)
				}
				return *fail
			}
			// ruok itself did not answer, but the node did.
			r := keeperResult(t, live.AnsweredBy)
			r.SetFact("ok", 1)
			r.SetAttr("alive_by", live.AnsweredBy)
			how := "answered"
			if cr, ok := keeperCommand(t.Keeper, live.AnsweredBy); ok && cr.Refused(KeeperKind(t)) {
				how = "was refused by the whitelist, which only a running server does"
			}
			if w := fail.Attrs[AttrRefusedWord]; w != "" {
				r.SetAttr(AttrRefusedWord, w)
				r.SetAttr(AttrRequestedWords, fail.Attrs[AttrRequestedWords])
			}
			switch {
			case live.AnsweredBy == "ruok":
				r.Summary = "alive: ruok " + how
			case fail.IsUnavailable():
				r.Summary = fmt.Sprintf("alive: %s %s (ruok is refused by the whitelist)", live.AnsweredBy, how)
			case fail.Skipped != "":
				r.Summary = fmt.Sprintf("alive: %s %s (ruok not sent: %s)", live.AnsweredBy, how, fail.Skipped)
			default:
				r.Status = Warn
				r.Summary = fmt.Sprintf("alive: %s %s, but ruok did not: %s", live.AnsweredBy, how, fail.Summary)
			}
			return r
		}}
}
