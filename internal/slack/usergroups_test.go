package slack

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/slackfake"
)

func TestUserGroupsResolverCaches(t *testing.T) {
	fake := slackfake.New(t, slackfake.Options{})
	fake.AddUserGroup("S0ONCALL", "oncall", "U0ALICE", "U0BOB")
	now := time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)
	g := NewUserGroups(fake.Client(), time.Minute, func() time.Time { return now })
	ctx := context.Background()

	for range 3 {
		m, err := g.Members(ctx, "S0ONCALL")
		if err != nil || !slices.Equal(m, []string{"U0ALICE", "U0BOB"}) {
			t.Fatalf("members %v %v", m, err)
		}
	}
	if n := fake.CallCount("usergroups.users.list"); n != 1 {
		t.Fatalf("%d calls within the TTL, want 1", n)
	}
	// A caller changing the returned slice does not change the cache.
	m, _ := g.Members(ctx, "S0ONCALL")
	m[0] = "U0MALLORY"
	if m2, _ := g.Members(ctx, "S0ONCALL"); m2[0] != "U0ALICE" {
		t.Fatalf("cache aliased: %v", m2)
	}

	// Membership changes are seen once the TTL is over.
	fake.AddUserGroup("S0ONCALL", "oncall", "U0CAROL")
	now = now.Add(61 * time.Second)
	if m, _ := g.Members(ctx, "S0ONCALL"); !slices.Equal(m, []string{"U0CAROL"}) {
		t.Fatalf("after the TTL: %v", m)
	}
	if n := fake.CallCount("usergroups.users.list"); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
	// Forget drops the entry.
	g.Forget("S0ONCALL")
	g.Members(ctx, "S0ONCALL")
	if n := fake.CallCount("usergroups.users.list"); n != 3 {
		t.Fatalf("%d calls after Forget, want 3", n)
	}
}

func TestUserGroupsResolverFailsClosed(t *testing.T) {
	ctx := context.Background()
	fake := slackfake.New(t, slackfake.Options{})
	fake.AddUserGroup("S0ONCALL", "oncall", "U0ALICE")
	now := time.Now()
	g := NewUserGroups(fake.Client(), time.Minute, func() time.Time { return now })

	if _, err := g.Members(ctx, "S0NOPE"); !errors.Is(err, ErrNoSuchGroup) {
		t.Errorf("unknown group: %v", err)
	}
	if _, err := g.Members(ctx, ""); err == nil {
		t.Error("empty id accepted")
	}
	// A failure is not cached, and no stale membership is served.
	g.Members(ctx, "S0ONCALL")
	now = now.Add(2 * time.Minute)
	fake.SetOutage(true)
	if m, err := g.Members(ctx, "S0ONCALL"); err == nil {
		t.Fatalf("served %v while Slack is down and the entry expired", m)
	}
	fake.SetOutage(false)
	if m, err := g.Members(ctx, "S0ONCALL"); err != nil || len(m) != 1 {
		t.Fatalf("after the outage: %v %v", m, err)
	}

	// Without usergroups:read, the error says so.
	scoped := slackfake.New(t, slackfake.Options{Scopes: []string{"chat:write"}})
	scoped.AddUserGroup("S0ONCALL", "oncall", "U0ALICE")
	_, err := NewUserGroups(scoped.Client(), 0, nil).Members(ctx, "S0ONCALL")
	if err == nil || !strings.Contains(err.Error(), "missing_scope") {
		t.Errorf("missing scope: %v", err)
	}
	if _, err := NewUserGroups(nil, 0, nil).Members(ctx, "S0ONCALL"); err == nil {
		t.Error("no API: no error")
	}
}
