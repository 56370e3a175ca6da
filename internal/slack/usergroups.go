package slack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/sync/singleflight"
)

// UserGroupsAPI is the part of the Slack Web API UserGroups uses
// (*slack.Client).
type UserGroupsAPI interface {
	GetUserGroupMembersContext(ctx context.Context, userGroup string, options ...slack.GetUserGroupMembersOption) ([]string, error)
}

// UserGroups resolves Slack user groups ("S0123ONCALL") to their members
// with usergroups.users.list (scope usergroups:read), caching each answer
// for a TTL. It implements approvals.GroupResolver. Failures are not
// cached and no stale membership is served: a group that cannot be resolved
// now is an error, so a policy naming it fails closed. Concurrent lookups of
// one group share one call.
type UserGroups struct {
	api UserGroupsAPI
	ttl time.Duration
	now func() time.Time

	mu     sync.Mutex
	cache  map[string]groupEntry
	flight singleflight.Group
}

type groupEntry struct {
	members []string
	expires time.Time
}

// DefaultUserGroupsTTL is how long a group's membership is reused.
const DefaultUserGroupsTTL = 5 * time.Minute

// NewUserGroups returns a resolver over api; ttl <= 0 means
// DefaultUserGroupsTTL; now nil means time.Now.
func NewUserGroups(api UserGroupsAPI, ttl time.Duration, now func() time.Time) *UserGroups {
	if ttl <= 0 {
		ttl = DefaultUserGroupsTTL
	}
	if now == nil {
		now = time.Now
	}
	return &UserGroups{api: api, ttl: ttl, now: now, cache: map[string]groupEntry{}}
}

// ErrNoSuchGroup is returned for a group Slack does not know (or a
// disabled one).
var ErrNoSuchGroup = errors.New("no such Slack user group")

// Members returns the user ids of groupID.
func (g *UserGroups) Members(ctx context.Context, groupID string) ([]string, error) {
	if groupID == "" {
		return nil, fmt.Errorf("slack user group: empty id")
	}
	if g.api == nil {
		return nil, fmt.Errorf("slack user group %s: no Slack bot token configured", groupID)
	}
	g.mu.Lock()
	e, ok := g.cache[groupID]
	g.mu.Unlock()
	if ok && g.now().Before(e.expires) {
		return slices.Clone(e.members), nil
	}
	v, err, _ := g.flight.Do(groupID, func() (any, error) {
		members, err := g.api.GetUserGroupMembersContext(ctx, groupID)
		if err != nil {
			var se slack.SlackErrorResponse
			if errors.As(err, &se) && se.Err == "no_such_subteam" {
				return nil, fmt.Errorf("slack user group %s: %w", groupID, ErrNoSuchGroup)
			}
			return nil, fmt.Errorf("slack user group %s: usergroups.users.list: %w", groupID, err)
		}
		g.mu.Lock()
		g.cache[groupID] = groupEntry{members: slices.Clone(members), expires: g.now().Add(g.ttl)}
		g.mu.Unlock()
		return members, nil
	})
	if err != nil {
		return nil, err
	}
	return slices.Clone(v.([]string)), nil
}

// Forget drops the cached membership of groupID (or of every group when
// groupID is ""), e.g. on a subteam_members_changed event.
func (g *UserGroups) Forget(groupID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if groupID == "" {
		clear(g.cache)
		return
	}
	delete(g.cache, groupID)
}
