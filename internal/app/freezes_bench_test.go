package app

import (
	"context"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/store"
)

// BenchmarkFreezeApprovalToVerified measures the time from the last
// approval of a ddl_freeze request to the freeze verified on every node:
// the vote, the plan's re-check, the freeze record, the override written to
// both 18.16 replicas' users.d, and the wait until a new session of the
// check user on each node has allow_ddl = 0 and a DDL probe gets code 392.
// The server re-reads users.d by itself (about every 2 s on 18.16), which
// dominates. The request before and the unfreeze after are not timed.
//
//	go test -run '^$' -bench BenchmarkFreezeApprovalToVerified -benchtime 5x ./internal/app/
func BenchmarkFreezeApprovalToVerified(b *testing.B) {
	e := freezeEnv(b)
	cfg := freezeAppConfig(b, e, b.TempDir())
	clock := &fakeClock{t: time.Now().UTC()}
	p := startChmedic(b, cfg, clock)
	defer p.close()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		clock.Set(time.Now().UTC())
		r, _, err := p.svc.Request(ctx, approvals.RequestInput{Kind: actions.DDLFreezeKind, Cluster: "test", Params: map[string]string{"duration": "30m"}, User: "U0ALICE", Via: "cli"})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := p.svc.Vote(ctx, approvals.VoteInput{RequestID: r.ID, User: "U0BOB", Via: "cli", Approve: true}); err != nil {
			b.Fatal(err)
		}
		done, err := p.svc.Execute(ctx, r.ID)
		b.StopTimer()
		if err != nil || done.State != store.ReqSucceeded {
			b.Fatalf("freeze: %s %s %v", done.State, done.Reason, err)
		}
		if lift, err := p.svc.RunAsChmedic(ctx, actions.DDLUnfreezeKind, "test", "", "benchmark cleanup"); err != nil || lift.State != store.ReqSucceeded {
			b.Fatalf("unfreeze: %s %s %v", lift.State, lift.Reason, err)
		}
		b.StartTimer()
	}
}
