package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestApprovalPolicies(t *testing.T) {
	c := mustParse(t, minimal+y(
		"approvals:",
		"  team_id: T0001",
		"  policies:",
		"    collect_logs:",
		"      requesters: ['*']",
		"      approvers: [U0001, S0SRE]",
	), nil, nil)
	p, ok := c.Approvals.Policies.For("collect_logs")
	if !ok {
		t.Fatal("no collect_logs policy")
	}
	want := &ApprovalPolicy{Requesters: []string{"*"}, Approvers: []string{"U0001", "S0SRE"}, MinApprovals: 1, ExpireAfter: 15 * time.Minute}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("policy = %+v, want defaults %+v", p, want)
	}
	if _, ok := c.Approvals.Policies.For("rolling_restart"); ok {
		t.Error("rolling_restart has a policy nobody configured")
	}
	if _, ok := c.Approvals.Policies.For("nope"); ok {
		t.Error("unknown kind has a policy")
	}
	if got := c.Approvals.Policies.Kinds(); !reflect.DeepEqual(got, []string{"ddl_freeze", "ddl_unfreeze", "rolling_restart", "collect_logs"}) {
		t.Errorf("kinds = %v", got)
	}
}

func TestApprovalPolicyErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown kind", y("approvals:", "  policies:", "    drop_table: {approvers: [U1A]}"),
			[]string{`chmedic.yaml:13:5: approvals.policies.drop_table: unknown key`}},
		{"no approvers", y("approvals:", "  policies:", "    collect_logs: {requesters: ['*']}"),
			[]string{`approvals.policies.collect_logs.approvers: at least one Slack user id or user group is required`}},
		{"no requesters", y("approvals:", "  policies:", "    collect_logs: {approvers: [U0001]}"),
			[]string{`approvals.policies.collect_logs.requesters: at least one`}},
		{"wildcard approver", y("approvals:", "  policies:", "    collect_logs: {requesters: ['*'], approvers: ['*']}"),
			[]string{`approvals.policies.collect_logs.approvers[0]: invalid entry "*": want a Slack user id (U…/W…) or user group id (S…)`}},
		{"user name instead of id", y("approvals:", "  policies:", "    collect_logs: {requesters: [alice], approvers: [U0001]}"),
			[]string{`approvals.policies.collect_logs.requesters[0]: invalid entry "alice"`}},
		{"quorum out of reach", y("approvals:", "  policies:", "    collect_logs: {requesters: ['*'], approvers: [U0001, U0002], min_approvals: 3}"),
			[]string{`approvals.policies.collect_logs.min_approvals: is 3 but only 2 approvers are listed`}},
		{"zero quorum", y("approvals:", "  policies:", "    collect_logs: {requesters: ['*'], approvers: [U0001], min_approvals: 0}"),
			[]string{`approvals.policies.collect_logs.min_approvals: must be at least 1, got 0`}},
		{"expiry", y("approvals:", "  policies:", "    collect_logs: {requesters: ['*'], approvers: [U0001], expire_after: 48h}"),
			[]string{`approvals.policies.collect_logs.expire_after: must be greater than 0 and at most 24h, got 48h`}},
		{"channel name", y("approvals:", "  policies:", "    collect_logs: {requesters: ['*'], approvers: [U0001], channels: ['#ops']}"),
			[]string{`approvals.policies.collect_logs.channels[0]: invalid Slack channel id "#ops"`}},
		{"duplicate approver", y("approvals:", "  policies:", "    collect_logs: {requesters: ['*'], approvers: [U0001, U0001]}"),
			[]string{`approvals.policies.collect_logs.approvers[1]: duplicate entry "U0001"`}},
		{"team id", y("approvals:", "  team_id: acme"), []string{`approvals.team_id: invalid Slack team id "acme"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("chmedic.yaml", []byte(minimal+tc.src), nil, nil)
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Join(errLines(t, err), "\n")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors lack %q:\n%s", w, got)
				}
			}
		})
	}
}
