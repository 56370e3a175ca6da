package probe

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/chmedic/chmedic/internal/keeper"
)

// keeper.cons — client connections, per client address.
//
// Facts: connections, max_per_ip, max_per_ip_ratio (of maxClientCnxns, when
// the limit is known), recent_connections (established in the last 5
// minutes), recent_spread_seconds (how close together those were),
// recent_oldest_age_seconds (how long ago the first of them was).
// Attrs: top_ip.
func keeperCons() Spec {
	return Spec{Name: "keeper.cons", Kind: KindKeeper, Doc: "Client connections per address against maxClientCnxns, and reconnection bursts (cons).",
		Run: func(_ context.Context, t *Target) Result {
			raw, fail := keeperAnswer(t, "cons")
			if fail != nil {
				return *fail
			}
			conns, err := keeper.ParseCons(raw)
			if err != nil {
				return parseFailed("cons", err)
			}
			r := keeperResult(t, "cons")
			byIP := keeper.CountByIP(conns)
			type ipCount struct {
				ip string
				n  int
			}
			var counts []ipCount
			for ip, n := range byIP {
				counts = append(counts, ipCount{ip, n})
			}
			sort.Slice(counts, func(i, j int) bool {
				if counts[i].n != counts[j].n {
					return counts[i].n > counts[j].n
				}
				return counts[i].ip < counts[j].ip
			})
			r.SetFact("connections", float64(len(conns)))
			limit := 0
			if cr, ok := keeperCommand(t.Keeper, "conf"); ok && cr.Err == nil {
				if c, err := keeper.ParseConf(cr.Raw); err == nil && c.HasMaxClientCnxns {
					limit = c.MaxClientCnxns
				}
			}
			r.Summary = fmt.Sprintf("%d client connections from %d addresses", len(conns), len(counts))
			if len(counts) > 0 {
				top := counts[0]
				r.SetFact("max_per_ip", float64(top.n))
				r.SetAttr("top_ip", top.ip)
				if limit > 0 {
					ratio := float64(top.n) / float64(limit)
					r.SetFact("max_per_ip_ratio", ratio)
					if ratio >= t.Thresholds.ConnectionsRatioWarn {
						r.Raise(Warn)
						r.Summary = fmt.Sprintf("%s holds %d connections of maxClientCnxns %d (%.0f%%); ", top.ip, top.n, limit, ratio*100) + r.Summary
					}
				}
				tbl := Table{Title: "connections by client address", Columns: []string{"client", "connections"}}
				for _, c := range counts {
					tbl.Rows = append(tbl.Rows, []string{c.ip, fmt.Sprint(c.n)})
				}
				r.Evidence = append(r.Evidence, Truncate(tbl, 5))
			}
			// A burst of connections established close together, recently,
			// is the signature of a reconnection herd.
			at := now(t)
			var recent []time.Time
			for _, c := range conns {
				if !c.Established.IsZero() && at.Sub(c.Established) <= 5*time.Minute && c.HasSession {
					recent = append(recent, c.Established)
				}
			}
			r.SetFact("recent_connections", float64(len(recent)))
			if len(recent) >= 2 {
				sort.Slice(recent, func(i, j int) bool { return recent[i].Before(recent[j]) })
				r.SetFact("recent_spread_seconds", recent[len(recent)-1].Sub(recent[0]).Seconds())
				r.SetFact("recent_oldest_age_seconds", at.Sub(recent[0]).Seconds())
			}
			return r
		}}
}
