package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A restart between the request and its approval loses nothing: the plan,
// the hash, the expiry and the votes are read back from the file.
func TestApprovalRequestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	now := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s, err := Open(ctx, path, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	r, created, err := s.CreateApprovalRequest(ctx, ApprovalRequest{OfferID: "offer1", Kind: "collect_logs", Cluster: "prod",
		Params: map[string]string{"window": "10m"}, ThreadKey: "g1", RequestedBy: "UREQ", RequestedVia: "slack", State: ReqPlanning})
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	again, created, err := s.CreateApprovalRequest(ctx, ApprovalRequest{OfferID: "offer1", Kind: "collect_logs", Cluster: "prod", RequestedBy: "UOTHER", RequestedVia: "slack", State: ReqPlanning})
	if err != nil || created || again.ID != r.ID || again.RequestedBy != "UREQ" {
		t.Fatalf("a second click on the offer created %+v (created %v, err %v)", again, created, err)
	}
	if err := s.SetRequestPlan(ctx, r.ID, []byte(`{"kind":"collect_logs"}`), "abc123", now.Add(15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, added, err := s.AddVote(ctx, ApprovalVote{RequestID: r.ID, Voter: "UA", Approve: true, Via: "slack"}); err != nil || !added {
		t.Fatalf("vote: %v %v", added, err)
	}
	s.Close()

	s, err = Open(ctx, path, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ApprovalRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != ReqPending || got.PlanHash != "abc123" || string(got.Plan) != `{"kind":"collect_logs"}` ||
		!got.ExpiresAt.Equal(now.Add(15*time.Minute)) || got.Params["window"] != "10m" || got.RequestedBy != "UREQ" || got.ThreadKey != "g1" {
		t.Fatalf("after reopen: %+v", got)
	}
	votes, err := s.Votes(ctx, r.ID)
	if err != nil || len(votes) != 1 || votes[0].Voter != "UA" || !votes[0].Approve {
		t.Fatalf("votes after reopen: %+v %v", votes, err)
	}
	// The pending request can be voted on after the restart.
	if _, added, err := s.AddVote(ctx, ApprovalVote{RequestID: r.ID, Voter: "UB", Approve: true, Via: "cli"}); err != nil || !added {
		t.Fatalf("vote after reopen: %v %v", added, err)
	}
	live, err := s.ApprovalRequests(ctx, []string{ReqPending}, "", 10)
	if err != nil || len(live) != 1 {
		t.Fatalf("pending: %+v %v", live, err)
	}
}

func TestVotesAreOnePerUser(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	r, _, _ := s.CreateApprovalRequest(ctx, ApprovalRequest{Kind: "collect_logs", Cluster: "prod", RequestedBy: "UREQ", RequestedVia: "cli", State: ReqPending})
	if _, added, _ := s.AddVote(ctx, ApprovalVote{RequestID: r.ID, Voter: "UA", Approve: true, Via: "slack"}); !added {
		t.Fatal("first vote not added")
	}
	// A double click or a Slack retry, even one that would flip the vote.
	first, added, err := s.AddVote(ctx, ApprovalVote{RequestID: r.ID, Voter: "UA", Approve: false, Via: "cli"})
	if err != nil || added || !first.Approve || first.Via != "slack" {
		t.Fatalf("second vote: %+v added %v err %v", first, added, err)
	}
	if vs, _ := s.Votes(ctx, r.ID); len(vs) != 1 {
		t.Fatalf("votes = %+v", vs)
	}
	// Decided: no more votes.
	if err := s.TransitionRequest(ctx, r.ID, []string{ReqPending}, ReqApproved, "approved by UA"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddVote(ctx, ApprovalVote{RequestID: r.ID, Voter: "UB", Approve: true, Via: "slack"}); !errors.Is(err, ErrConflict) {
		t.Fatalf("vote on a decided request: %v", err)
	}
	if _, _, err := s.AddVote(ctx, ApprovalVote{RequestID: "nope", Voter: "UB", Approve: true}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("vote on no request: %v", err)
	}
}

// One execution per request: only one of two claimers moves it from
// approved to running; the execution row is reused on resume.
func TestTransitionsAndExecutionsAreOnce(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	r, _, _ := s.CreateApprovalRequest(ctx, ApprovalRequest{Kind: "collect_logs", Cluster: "prod", RequestedBy: "UREQ", RequestedVia: "cli", State: ReqApproved})
	if err := s.TransitionRequest(ctx, r.ID, []string{ReqApproved}, ReqRunning, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.TransitionRequest(ctx, r.ID, []string{ReqApproved}, ReqRunning, ""); !errors.Is(err, ErrConflict) {
		t.Fatalf("second claim: %v", err)
	}
	if err := s.TransitionRequest(ctx, "nope", []string{ReqApproved}, ReqRunning, ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim of nothing: %v", err)
	}
	e1, err := s.StartApprovalExecution(ctx, r.ID, "server a")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishApprovalExecution(ctx, e1.ID, "interrupted", nil); err != nil {
		t.Fatal(err)
	}
	e2, err := s.StartApprovalExecution(ctx, r.ID, "cli b")
	if err != nil || e2.ID != e1.ID || e2.State != "interrupted" || e2.Runner != "cli b" {
		t.Fatalf("resume: %+v %v (first %s)", e2, err, e1.ID)
	}
	if err := s.FinishApprovalExecution(ctx, e2.ID, "succeeded", []byte(`{"state":"succeeded"}`)); err != nil {
		t.Fatal(err)
	}
	got, err := s.ApprovalExecutionOf(ctx, r.ID)
	if err != nil || got.State != "succeeded" || string(got.Outcome) != `{"state":"succeeded"}` || got.FinishedAt.IsZero() {
		t.Fatalf("execution: %+v %v", got, err)
	}
}

func TestAuditIsAppendOnly(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	if err := s.AppendAudit(ctx, AuditEntry{Actor: "UA", Via: "slack", Event: "requested", RequestID: "r1", Kind: "collect_logs", Cluster: "prod",
		Nodes: []string{"ch-1", "ch-2"}, PlanHash: "abc"}); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	s.AppendAudit(ctx, AuditEntry{Actor: "UX", Via: "slack", Event: "refused", Detail: "bad signature"})
	all, err := s.Audit(ctx, time.Time{}, "")
	if err != nil || len(all) != 2 || all[0].Nodes[1] != "ch-2" || all[1].Detail != "bad signature" {
		t.Fatalf("audit: %+v %v", all, err)
	}
	recent, _ := s.Audit(ctx, c.t.Add(-time.Minute), "")
	if len(recent) != 1 || recent[0].Event != "refused" {
		t.Fatalf("since: %+v", recent)
	}
	for _, q := range []string{`UPDATE audit_log SET actor = 'nobody'`, `DELETE FROM audit_log`} {
		if _, err := s.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
	// Retention pruning leaves the audit log alone.
	if _, err := s.Prune(ctx, c.t.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if all, _ := s.Audit(ctx, time.Time{}, ""); len(all) != 2 {
		t.Fatalf("after prune: %d entries", len(all))
	}
}

func TestThreadReportsAndHeartbeats(t *testing.T) {
	s, c := open(t)
	ctx := context.Background()
	if _, err := s.ThreadReport(ctx, "g"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing report: %v", err)
	}
	s.SaveThreadReport(ctx, "g", []byte(`{"title":"a"}`))
	s.SaveThreadReport(ctx, "g", []byte(`{"title":"b"}`))
	if b, err := s.ThreadReport(ctx, "g"); err != nil || string(b) != `{"title":"b"}` {
		t.Fatalf("report: %s %v", b, err)
	}
	s.Heartbeat(ctx, "server-1")
	if ws, _ := s.LiveWorkers(ctx, c.t.Add(-5*time.Second)); len(ws) != 1 {
		t.Fatalf("workers: %v", ws)
	}
	c.t = c.t.Add(time.Minute)
	if ws, _ := s.LiveWorkers(ctx, c.t.Add(-5*time.Second)); len(ws) != 0 {
		t.Fatalf("stale worker counted: %v", ws)
	}
}

func TestKeyedReplyUpdatesInPlace(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	if _, err := s.UpsertKeyedReply(ctx, "nope", "k", []byte("x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no thread: %v", err)
	}
	post, _ := s.UpsertThreadMessage(ctx, Thread{Key: "g", Channel: "#c"}, []byte(`{"text":"alert"}`))
	first, _ := s.UpsertKeyedReply(ctx, "g", "req/1", []byte(`{"text":"v1"}`))
	// Not yet sent: the same entry gets the new body.
	if again, _ := s.UpsertKeyedReply(ctx, "g", "req/1", []byte(`{"text":"v2"}`)); again != first {
		t.Fatalf("pending reply not replaced: %d vs %d", again, first)
	}
	s.MarkSending(ctx, post)
	s.MarkSent(ctx, post, "C1", "100.1")
	s.MarkSending(ctx, first)
	s.MarkSent(ctx, first, "C1", "100.2")
	u1, _ := s.UpsertKeyedReply(ctx, "g", "req/1", []byte(`{"text":"v3"}`))
	u2, _ := s.UpsertKeyedReply(ctx, "g", "req/1", []byte(`{"text":"v4"}`))
	if u1 == first || u1 != u2 {
		t.Fatalf("updates: first %d, then %d and %d", first, u1, u2)
	}
	e, _ := s.OutboxEntry(ctx, u1)
	if e.Kind != KindReplyUpdate || string(e.Body) != `{"text":"v4"}` || e.ThreadTS != "100.1" {
		t.Fatalf("update entry: %+v", e)
	}
	if ts, err := s.KeyedReplyTS(ctx, u1); err != nil || ts != "100.2" {
		t.Fatalf("reply ts: %q %v", ts, err)
	}
	// A second key is a second reply.
	other, _ := s.UpsertKeyedReply(ctx, "g", "req/2", []byte(`{"text":"other"}`))
	if e, _ := s.OutboxEntry(ctx, other); e.Kind != KindReply {
		t.Fatalf("second key: %+v", e)
	}
	// Ordered after the reply: the update is due only once the reply is sent.
	due, _ := s.DueOutbox(ctx, time.Now().Add(time.Hour), 10)
	if len(due) != 1 || due[0].ID != u1 {
		t.Fatalf("due: %+v", due)
	}
}
