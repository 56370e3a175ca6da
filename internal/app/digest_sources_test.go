package app

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/store"
)

// TestDigestSourcesFromTheStore: the digest lists the requests awaiting a
// decision and the executions since the previous digest, per cluster (they
// said "not available yet" before the approval flow's store was read).
func TestDigestSourcesFromTheStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mk := func(cluster, kind string) store.ApprovalRequest {
		r, _, err := st.CreateApprovalRequest(ctx, store.ApprovalRequest{Kind: kind, Cluster: cluster, RequestedBy: "U0ALICE", RequestedVia: "cli", State: store.ReqPlanning, CreatedAt: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetRequestPlan(ctx, r.ID, []byte(`{}`), "h", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		return r
	}
	mk("prod", "collect_logs")
	mk("other", "collect_logs")
	pending, err := storeApprovals{st}.PendingApprovals(ctx, "prod")
	if err != nil || len(pending) != 1 || !strings.Contains(pending[0], "collect_logs pending, requested by U0ALICE, expires ") {
		t.Fatalf("pending %q %v", pending, err)
	}
	if all, _ := (storeApprovals{st}).PendingApprovals(ctx, ""); len(all) != 2 {
		t.Errorf("all clusters: %q", all)
	}

	before := time.Now().Add(-time.Minute)
	if _, _, err := st.CreateExecution(ctx, store.ExecutionRecord{Cluster: "prod", Kind: "collect_logs", Plan: []byte(`{}`), PlanHash: "h"}); err != nil {
		t.Fatal(err)
	}
	run, err := storeActionLog{st}.ActionsRunSince(ctx, "prod", before)
	if err != nil || len(run) != 1 || !strings.HasPrefix(run[0], "collect_logs pending at ") || !strings.HasSuffix(run[0], "(chmedic collect)") {
		t.Fatalf("actions run %q %v", run, err)
	}
	if later, _ := (storeActionLog{st}).ActionsRunSince(ctx, "prod", time.Now().Add(time.Minute)); len(later) != 0 {
		t.Errorf("since later: %q", later)
	}
}
