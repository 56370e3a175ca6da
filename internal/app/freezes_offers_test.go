package app

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
)

type stubPlanner struct{}

func (stubPlanner) Plan(_ context.Context, kind string, req actions.Request) (actions.Plan, error) {
	return actions.Plan{Kind: kind, Cluster: req.Cluster, Summary: kind, Params: json.RawMessage(`{}`),
		Steps: []actions.Step{{Title: kind, Node: "ch-1"}}}, nil
}

type stubExecutor struct{}

func (stubExecutor) Run(context.Context, actions.Execution, func(actions.Progress)) (actions.Outcome, error) {
	return actions.Outcome{}, nil
}

// buttonValues returns the offer ids on a Slack message's buttons.
func buttonValues(t *testing.T, body string) map[string]string {
	t.Helper()
	var msg struct {
		Blocks []struct {
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(body), &msg); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, b := range msg.Blocks {
		for _, e := range b.Elements {
			if e.ActionID != "" {
				out[e.ActionID] = e.Value
			}
		}
	}
	return out
}

// The reminder's Extend / Unfreeze buttons are offers on a reply: a later
// re-render of the alert message (which supersedes the message's own older
// offers) leaves them offered, and a click on Extend creates a request.
// Before the offers had a scope, the re-render superseded them and the
// click was refused ("belongs to an older version of the message").
func TestFreezeReminderOffersSurviveRerender(t *testing.T) {
	ctx := t.Context()
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"), store.WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	anyone := &config.ApprovalPolicy{Requesters: []string{"*"}, Approvers: []string{"U0BOB"}}
	svc := approvals.New(approvals.Options{Store: st, Now: clock.Now, TeamID: "T0TEAM", Planner: stubPlanner{}, Executor: stubExecutor{},
		Policies: &config.ApprovalPolicies{DDLFreeze: anyone, DDLUnfreeze: anyone}})
	thread := store.Thread{Key: "t1", Channel: "C0ALERTS", Cluster: "test", Status: "firing", Firing: 1}
	alertOffer, err := st.OfferAction(ctx, store.ActionRequest{OfferKey: "n1/0", Kind: actions.DDLFreezeKind, Cluster: "test", GroupKey: "g1", ThreadKey: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ApplyThreadChange(ctx, store.ThreadChange{Thread: thread, Body: []byte(`{"text":"alert"}`), SupersedeOffers: true, Offers: []string{alertOffer}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.CreateApprovalRequest(ctx, store.ApprovalRequest{Kind: actions.DDLFreezeKind, Cluster: "test", ThreadKey: "t1", GroupKey: "g1",
		PlanHash: "h1", RequestedBy: "U0ALICE", RequestedVia: "slack", State: store.ReqSucceeded}); err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	if err := st.CreateFreeze(ctx, store.FreezeRecord{ID: "f1", Cluster: "test", State: store.FreezeActive, Method: "profile", Targets: []string{"user app"},
		PlanHash: "h1", Duration: 30 * time.Minute, StartedAt: now, ExpiresAt: now.Add(30 * time.Minute), ReminderAt: now.Add(25 * time.Minute),
		Nodes: []store.FreezeNode{{Name: "ch-1", State: actions.NodeFrozen}}}); err != nil {
		t.Fatal(err)
	}
	k := &FreezeKeeper{Store: st, Approvals: svc, Now: clock.Now}
	clock.Set(now.Add(26 * time.Minute))
	k.Step(ctx)
	var reminder string
	for id := int64(1); id < 20; id++ {
		if e, err := st.OutboxEntry(ctx, id); err == nil && e.Kind == store.KindReply && strings.Contains(string(e.Body), "Extend") {
			reminder = string(e.Body)
		}
	}
	if reminder == "" {
		t.Fatal("no reminder posted")
	}
	buttons := buttonValues(t, reminder)
	var extend, unfreeze string
	for aid, v := range buttons {
		o, err := st.ActionRequestByID(ctx, v)
		if err != nil {
			t.Fatalf("button %s: %v", aid, err)
		}
		switch o.Kind {
		case actions.DDLFreezeKind:
			extend = v
		case actions.DDLUnfreezeKind:
			unfreeze = v
		}
	}
	if extend == "" || unfreeze == "" {
		t.Fatalf("reminder buttons %v", buttons)
	}
	// The alert is re-rendered with a newly minted offer.
	clock.Set(clock.Now().Add(time.Minute))
	newOffer, _ := st.OfferAction(ctx, store.ActionRequest{OfferKey: "n2/0", Kind: actions.DDLFreezeKind, Cluster: "test", GroupKey: "g1", ThreadKey: "t1"})
	if _, err := st.ApplyThreadChange(ctx, store.ThreadChange{Thread: thread, Body: []byte(`{"text":"alert again"}`), SupersedeOffers: true, Offers: []string{newOffer}}); err != nil {
		t.Fatal(err)
	}
	state := func(id string) string {
		o, err := st.ActionRequestByID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return o.State
	}
	if s := state(alertOffer); s != store.ActionSuperseded {
		t.Errorf("the alert message's old offer is %s, want superseded", s)
	}
	if s, u := state(extend), state(unfreeze); s != store.ActionOffered || u != store.ActionOffered {
		t.Fatalf("after the re-render the reminder's offers are %s / %s, want offered", s, u)
	}
	reply, err := svc.HandleClick(ctx, approvals.Click{TeamID: "T0TEAM", UserID: "U0CAROL", ChannelID: "C0ALERTS", ActionID: "chmedic:ddl_freeze:0", Value: extend, ReceivedAt: clock.Now()})
	if err != nil || !strings.Contains(reply.Ephemeral, "Requested ddl_freeze") {
		t.Fatalf("click on Extend: %q %v", reply.Ephemeral, err)
	}
	rs, err := st.ApprovalRequests(ctx, nil, "t1", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got bool
	for _, r := range rs {
		if r.OfferID == extend && r.Kind == actions.DDLFreezeKind && r.Params["duration"] == "30m0s" {
			got = true
		}
	}
	if !got {
		t.Errorf("no request made from the Extend offer: %+v", rs)
	}
	// Expiry still applies to reply offers.
	if n, err := st.ExpireOffers(ctx, clock.Now().Add(store.OfferTTL+time.Hour)); err != nil || n == 0 {
		t.Errorf("expire offers: %d %v", n, err)
	}
	if s := state(unfreeze); s != store.ActionExpired {
		t.Errorf("the reminder's Unfreeze offer is %s after OfferTTL, want expired", s)
	}
}
