package app

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/store"
)

// A freeze requested with `chmedic request` has no thread: its partial
// notice opens one in the cluster's channel (clusters[].slack_channel,
// else slack.channel) as a top-level message through the outbox, the
// reminder follows as a reply there, and its Extend button works. Without
// a channel they stay in the log and the audit. Before, nothing was
// posted (the reminder went only to the log and the audit).
func TestFreezeKeeperPostsCLIFreezeToChannel(t *testing.T) {
	for _, tc := range []struct {
		name, clusterChannel, slackChannel, want string
	}{
		{"cluster channel", "C0FREEZE", "C0DEFAULT", "C0FREEZE"},
		{"slack channel", "", "C0DEFAULT", "C0DEFAULT"},
		{"no channel", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
			st, err := store.Open(ctx, filepath.Join(t.TempDir(), "s.db"), store.WithClock(clock.Now))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cfg := &config.Config{Clusters: []config.Cluster{{Name: "other", SlackChannel: "C0OTHER"}, {Name: "test", SlackChannel: tc.clusterChannel}}}
			cfg.Slack.Channel = tc.slackChannel
			anyone := &config.ApprovalPolicy{Requesters: []string{"*"}, Approvers: []string{"U0BOB"}}
			svc := approvals.New(approvals.Options{Store: st, Now: clock.Now, TeamID: "T0TEAM", Planner: stubPlanner{}, Executor: stubExecutor{},
				Policies: &config.ApprovalPolicies{DDLFreeze: anyone, DDLUnfreeze: anyone}})
			if _, _, err := st.CreateApprovalRequest(ctx, store.ApprovalRequest{Kind: actions.DDLFreezeKind, Cluster: "test",
				PlanHash: "h1", RequestedBy: "alice", RequestedVia: "cli", State: store.ReqPartial}); err != nil {
				t.Fatal(err)
			}
			now := clock.Now()
			if err := st.CreateFreeze(ctx, store.FreezeRecord{ID: "f1", Cluster: "test", State: store.FreezePartial, Method: "profile", Targets: []string{"user app"},
				PlanHash: "h1", Duration: 30 * time.Minute, StartedAt: now, ExpiresAt: now.Add(30 * time.Minute), ReminderAt: now.Add(25 * time.Minute),
				Nodes: []store.FreezeNode{{Name: "ch-1", State: actions.NodeFrozen}, {Name: "ch-2", State: actions.NodeFailed, Error: "connection refused"}}}); err != nil {
				t.Fatal(err)
			}
			k := &FreezeKeeper{Store: st, Approvals: svc, Config: cfg, Now: clock.Now}
			entries := func() []store.OutboxEntry {
				var out []store.OutboxEntry
				for id := int64(1); id < 20; id++ {
					if e, err := st.OutboxEntry(ctx, id); err == nil {
						out = append(out, e)
					}
				}
				return out
			}
			k.Step(ctx)
			clock.Set(now.Add(26 * time.Minute))
			k.Step(ctx)
			es := entries()
			if tc.want == "" {
				if len(es) != 0 {
					t.Fatalf("posted without a channel: %+v", es)
				}
				if f, _ := st.Freeze(ctx, "f1"); f.RemindedAt.IsZero() || f.PartialSaidAt.IsZero() {
					t.Errorf("without a channel the reminder is still said (log, audit): %+v", f)
				}
				return
			}
			if len(es) != 2 {
				t.Fatalf("outbox %+v", es)
			}
			post, reply := es[0], es[1]
			if post.Kind != store.KindPost || post.Channel != tc.want || post.ThreadKey != "freeze/f1" || !strings.Contains(string(post.Body), "Retry failed nodes") {
				t.Errorf("partial notice: %s %s %s %s", post.Kind, post.Channel, post.ThreadKey, post.Body)
			}
			if reply.Kind != store.KindReply || reply.ThreadKey != "freeze/f1" || !strings.Contains(string(reply.Body), "Extend 30m") {
				t.Errorf("reminder: %s %s %s", reply.Kind, reply.ThreadKey, reply.Body)
			}
			var extend string
			for _, v := range buttonValues(t, string(reply.Body)) {
				if o, err := st.ActionRequestByID(ctx, v); err == nil && o.Kind == actions.DDLFreezeKind {
					extend = v
				}
			}
			r, err := svc.HandleClick(ctx, approvals.Click{TeamID: "T0TEAM", UserID: "U0CAROL", ChannelID: tc.want, ActionID: "chmedic:ddl_freeze:0", Value: extend, ReceivedAt: clock.Now()})
			if err != nil || !strings.Contains(r.Ephemeral, "Requested ddl_freeze") {
				t.Fatalf("click on Extend: %q %v", r.Ephemeral, err)
			}
			if rs, _ := st.ApprovalRequests(ctx, nil, "freeze/f1", 10); len(rs) != 1 || rs[0].Params["duration"] != "30m0s" {
				t.Errorf("requests in the freeze's thread: %+v", rs)
			}
		})
	}
}
