package approvals

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/config"
)

var t0 = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func TestDecide(t *testing.T) {
	one := &config.ApprovalPolicy{MinApprovals: 1, ExpireAfter: 15 * time.Minute}
	two := &config.ApprovalPolicy{MinApprovals: 2, ExpireAfter: 15 * time.Minute}
	self := &config.ApprovalPolicy{MinApprovals: 1, AllowSelfApproval: true, ExpireAfter: 15 * time.Minute}
	req := Facts{Kind: "collect_logs", RequestedBy: "UREQ", CreatedAt: t0, ExpiresAt: at(15)}
	yes := func(u string, m int) Vote { return Vote{User: u, Approve: true, Via: "slack", At: at(m)} }
	no := func(u string, m int) Vote { return Vote{User: u, Approve: false, Via: "slack", At: at(m)} }
	tests := []struct {
		name   string
		policy *config.ApprovalPolicy
		votes  []Vote
		now    time.Time
		want   string
		count  int
		reason string
	}{
		{"fail closed: no policy", nil, []Vote{yes("UA", 1)}, at(2), Refused, 0, "no approval policy for collect_logs"},
		{"no votes yet", one, nil, at(1), Pending, 0, "0 of 1"},
		{"one approval is quorum", one, []Vote{yes("UA", 1)}, at(2), Approved, 1, "approved by UA (1 of 1)"},
		{"quorum of two: one is not enough", two, []Vote{yes("UA", 1)}, at(2), Pending, 1, "1 of 2"},
		{"quorum of two distinct users", two, []Vote{yes("UA", 1), yes("UB", 2)}, at(3), Approved, 2, "UA, UB"},
		{"double vote counts once", two, []Vote{yes("UA", 1), yes("UA", 2)}, at(3), Pending, 1, "1 of 2"},
		{"self-approval does not count", one, []Vote{yes("UREQ", 1)}, at(2), Pending, 0, "0 of 1"},
		{"self-approval plus another", two, []Vote{yes("UREQ", 1), yes("UA", 2)}, at(3), Pending, 1, "1 of 2"},
		{"self-approval allowed", self, []Vote{yes("UREQ", 1)}, at(2), Approved, 1, "UREQ"},
		{"one rejection decides", two, []Vote{yes("UA", 1), no("UB", 2), yes("UC", 3)}, at(4), Rejected, 1, "rejected by UB"},
		{"the requester may reject (withdraw)", one, []Vote{no("UREQ", 1)}, at(2), Rejected, 0, "UREQ"},
		{"approved before a later rejection", one, []Vote{yes("UA", 1), no("UB", 2)}, at(3), Approved, 1, "UA"},
		{"expired with too few approvals", two, []Vote{yes("UA", 1)}, at(16), Expired, 1, "expired at 03:15:00 UTC with 1 of 2"},
		{"expired exactly at the deadline", one, nil, at(15), Expired, 0, "expired"},
		{"a vote after the expiry does not count", one, []Vote{yes("UA", 16)}, at(17), Expired, 0, "0 of 1"},
		{"quorum reached before the expiry stays approved", one, []Vote{yes("UA", 14)}, at(30), Approved, 1, "UA"},
		{"votes out of order are ordered by time", two, []Vote{no("UB", 5), yes("UA", 1), yes("UC", 2)}, at(6), Approved, 2, "UA, UC"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.policy, req, tc.votes, tc.now)
			if d.Outcome != tc.want || len(d.Approvals) != tc.count || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Decide = %+v, want %s with %d approvals, reason containing %q", d, tc.want, tc.count, tc.reason)
			}
		})
	}
}

type groups map[string][]string

func (g groups) Members(_ context.Context, id string) ([]string, error) {
	ms, ok := g[id]
	if !ok {
		return nil, errors.New("usergroups.users.list: no_such_subteam")
	}
	return ms, nil
}

func TestAuthorizer(t *testing.T) {
	pols := &config.ApprovalPolicies{
		CollectLogs:    &config.ApprovalPolicy{Requesters: []string{"*"}, Approvers: []string{"UA", "SSRE"}, MinApprovals: 1},
		RollingRestart: &config.ApprovalPolicy{Requesters: []string{"SONCALL"}, Approvers: []string{"SLEADS", "SGONE"}, MinApprovals: 2, Channels: []string{"CALERTS"}},
	}
	a := Authorizer{Policies: pols, Groups: groups{"SSRE": {"UB", "UC"}, "SONCALL": {"UO"}, "SLEADS": {"UL"}}}
	noGroups := Authorizer{Policies: pols}
	ctx := context.Background()
	tests := []struct {
		name    string
		auth    Authorizer
		approve bool
		kind    string
		user    string
		channel string
		denied  string // "" for allowed
	}{
		{"anyone may request collect_logs", a, false, "collect_logs", "UZ", "CANY", ""},
		{"fail closed: no policy for ddl_freeze", a, false, "ddl_freeze", "UA", "CANY", "No approval policy for ddl_freeze: it cannot be requested"},
		{"fail closed: unknown kind", a, true, "drop_everything", "UA", "", "No approval policy for drop_everything"},
		{"approver by user id", a, true, "collect_logs", "UA", "CANY", ""},
		{"approver through a group", a, true, "collect_logs", "UC", "CANY", ""},
		{"not an approver", a, true, "collect_logs", "UZ", "CANY", "You are not an approver of collect_logs"},
		{"groups unresolvable: fail closed", noGroups, true, "collect_logs", "UC", "CANY", "User group SSRE cannot be resolved"},
		{"user id still works without groups", noGroups, true, "collect_logs", "UA", "CANY", ""},
		{"requester through a group", a, false, "rolling_restart", "UO", "CALERTS", ""},
		{"requester not in the group", a, false, "rolling_restart", "UZ", "CALERTS", "You are not allowed to request rolling_restart"},
		{"wrong channel", a, false, "rolling_restart", "UO", "COTHER", "cannot be requested or approved in this channel (COTHER)"},
		{"wrong channel for an approval", a, true, "rolling_restart", "UL", "COTHER", "this channel"},
		{"the CLI has no channel", a, true, "rolling_restart", "UL", "", ""},
		{"a group that fails to resolve does not hide a later one", a, true, "rolling_restart", "UL", "CALERTS", ""},
		{"a failing group is the reason when nothing else matches", a, true, "rolling_restart", "UZ", "CALERTS", "User group SGONE could not be resolved (usergroups.users.list: no_such_subteam)"},
		{"empty user", a, false, "collect_logs", "", "CANY", "not allowed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := tc.auth.CanRequest
			if tc.approve {
				check = tc.auth.CanApprove
			}
			err := check(ctx, tc.kind, tc.user, tc.channel)
			switch {
			case tc.denied == "" && err != nil:
				t.Fatalf("denied: %v", err)
			case tc.denied != "" && (err == nil || !IsDenied(err) || !strings.Contains(err.Error(), tc.denied)):
				t.Fatalf("err = %v, want a denial containing %q", err, tc.denied)
			}
		})
	}
}

// Every action kind of the catalog can be given a policy in the config.
func TestEveryKindHasAPolicyKey(t *testing.T) {
	var p config.ApprovalPolicies
	for _, k := range actions.Names() {
		if !slices.Contains(p.Kinds(), k) {
			t.Errorf("approvals.policies has no key for %s", k)
		}
	}
}
