package incident

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// slowDiagnoser answers every round after a pause, as a live round does,
// so that several workers hold groups between routing and queueing.
type slowDiagnoser struct{ pause time.Duration }

func (d slowDiagnoser) Diagnose(_ context.Context, cluster string) (*diagnose.Diagnosis, error) {
	time.Sleep(d.pause)
	return &diagnose.Diagnosis{Cluster: cluster, Status: probe.Crit, Verdict: "Coordination lost."}, nil
}

type atomicKicks struct{ n atomic.Int64 }

func (k *atomicKicks) Kick() { k.n.Add(1) }

// TestStormFoldsWithConcurrentWorkers: groups of one cluster arriving
// together, processed by several workers at once, start at most
// storm_threshold-1 messages of their own; every other group goes into the
// one incident message of the cluster.
func TestStormFoldsWithConcurrentWorkers(t *testing.T) {
	p, st, _ := newProcessor(t)
	p.Diagnoser = slowDiagnoser{pause: 2 * time.Millisecond}
	p.Outbox = new(atomicKicks)
	ctx := context.Background()
	const groups, workers = 1000, 8
	work := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, groups)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				key := fmt.Sprintf("storm-%04d", i)
				n := store.Notification{ID: int64(i + 1), GroupKey: key, Status: "firing"}
				if err := p.Process(ctx, n, message(key, "ClickHouseReadonlyReplica", "firing", nil)); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < groups; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	posts, err := st.PostsByThread(ctx)
	if err != nil {
		t.Fatal(err)
	}
	own, incidents := 0, 0
	for key, n := range posts {
		switch {
		case len(key) > 9 && key[:9] == "incident:":
			incidents += n
		default:
			own += n
		}
	}
	threshold := p.Config.Slack.StormThreshold
	if own > threshold-1 || incidents != 1 {
		t.Errorf("%d group messages and %d incident messages for one cluster; want at most %d and 1", own, incidents, threshold-1)
	}
}
