package diagnose

import (
	"time"

	"github.com/chmedic/chmedic/playbooks/probe"
)

// zxidMark is the zxid one coordination node showed in a round.
type zxidMark struct {
	epoch float64
	share float64
	at    time.Time
}

// Facts markZxids adds to a keeper.srvr result from the previous round.
const (
	factPrevEpoch = "prev_zxid_epoch"
	factPrevShare = "prev_zxid_counter_share"
	factPrevAge   = "prev_zxid_age_seconds"
)

// markZxids compares each ZooKeeper node's zxid with the previous round's
// (adding the prev_* facts to its keeper.srvr result) and remembers the
// current one. A node that did not answer keeps its last mark, so the
// comparison spans its outage. One mark per node of the cluster: bounded.
func (e *Engine) markZxids(cluster string, results []probe.Result) {
	e.mu.Lock()
	defer e.mu.Unlock()
	marks := e.zxids[cluster]
	if marks == nil {
		marks = map[string]zxidMark{}
		e.zxids[cluster] = marks
	}
	for i := range results {
		r := &results[i]
		if r.Probe != "keeper.srvr" || r.Skipped != "" {
			continue
		}
		epoch, ok1 := r.Fact("zxid_epoch")
		share, ok2 := r.Fact("zxid_counter_share")
		if !ok1 || !ok2 {
			continue
		}
		at := r.Started
		if prev, ok := marks[r.Node]; ok {
			r.SetFact(factPrevEpoch, prev.epoch)
			r.SetFact(factPrevShare, prev.share)
			r.SetFact(factPrevAge, at.Sub(prev.at).Seconds())
		}
		marks[r.Node] = zxidMark{epoch: epoch, share: share, at: at}
	}
}
