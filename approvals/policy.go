package approvals

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/config"
)

// Vote is one user's recorded vote on a request. A user has at most one
// vote per request.
type Vote struct {
	User    string    `json:"user"`
	Approve bool      `json:"approve"`
	Via     string    `json:"via"` // slack | cli
	At      time.Time `json:"at"`
}

// Facts are what Decide needs to know about a request.
type Facts struct {
	Kind        string
	RequestedBy string // user id
	CreatedAt   time.Time
	ExpiresAt   time.Time
}

// Decision outcomes.
const (
	Pending  = "pending"
	Approved = "approved"
	Rejected = "rejected"
	Expired  = "expired"
	Refused  = "refused" // no policy: fail closed
)

// Decision is what the policy says about a request and its votes now.
type Decision struct {
	Outcome string
	// Approvals are the distinct users whose approvals count, in vote order.
	Approvals []string
	// Needed is the policy's min_approvals.
	Needed int
	// RejectedBy is the user whose rejection decided, if any.
	RejectedBy string
	// Reason says why, in one sentence for the thread.
	Reason string
}

// Decide applies a policy to a request's votes at time now. It is pure: the
// votes were accepted from users the policy names (see Authorizer), and
// Decide counts distinct users, not the requester's own approval unless the
// policy allows it, only votes cast before the expiry; one rejection
// decides. A nil policy refuses (fail closed).
func Decide(p *config.ApprovalPolicy, r Facts, votes []Vote, now time.Time) Decision {
	if p == nil {
		return Decision{Outcome: Refused, Reason: fmt.Sprintf("no approval policy for %s: it cannot be requested (configure approvals.policies.%s)", r.Kind, r.Kind)}
	}
	d := Decision{Needed: max(p.MinApprovals, 1)}
	ordered := slices.Clone(votes)
	slices.SortStableFunc(ordered, func(a, b Vote) int { return a.At.Compare(b.At) })
	seen := map[string]bool{}
	for _, v := range ordered {
		if v.User == "" || seen[v.User] || (!r.ExpiresAt.IsZero() && v.At.After(r.ExpiresAt)) {
			continue
		}
		seen[v.User] = true
		if !v.Approve {
			d.Outcome, d.RejectedBy = Rejected, v.User
			d.Reason = fmt.Sprintf("rejected by %s", v.User)
			return d
		}
		if v.User == r.RequestedBy && !p.AllowSelfApproval {
			continue
		}
		d.Approvals = append(d.Approvals, v.User)
		if len(d.Approvals) >= d.Needed {
			d.Outcome = Approved
			d.Reason = fmt.Sprintf("approved by %s (%d of %d)", strings.Join(d.Approvals, ", "), len(d.Approvals), d.Needed)
			return d
		}
	}
	if !r.ExpiresAt.IsZero() && !now.Before(r.ExpiresAt) {
		d.Outcome = Expired
		d.Reason = fmt.Sprintf("expired at %s UTC with %d of %d approvals", r.ExpiresAt.UTC().Format("15:04:05"), len(d.Approvals), d.Needed)
		return d
	}
	d.Outcome = Pending
	d.Reason = fmt.Sprintf("%d of %d approvals", len(d.Approvals), d.Needed)
	return d
}

// Denied is a refusal by the policy, with the reason shown to the user.
type Denied struct{ Reason string }

func (d *Denied) Error() string { return d.Reason }

// IsDenied reports whether err is (or wraps) a Denied.
func IsDenied(err error) bool {
	var d *Denied
	return errors.As(err, &d)
}

// Authorizer answers who may request and approve, resolving user groups
// with a GroupResolver. It fails closed: no policy, an unresolvable group
// or a channel not listed all deny.
type Authorizer struct {
	Policies *config.ApprovalPolicies
	// Groups resolves user groups; nil denies every group entry.
	Groups GroupResolver
}

// Policy returns the kind's policy or a Denied saying there is none.
func (a Authorizer) Policy(kind string) (*config.ApprovalPolicy, error) {
	if a.Policies != nil {
		if p, ok := a.Policies.For(kind); ok {
			return p, nil
		}
	}
	return nil, &Denied{Reason: fmt.Sprintf("No approval policy for %s: it cannot be requested. Configure approvals.policies.%s.", kind, kind)}
}

// CanRequest checks that user may request kind from channel ("" for the
// CLI, where channels do not apply).
func (a Authorizer) CanRequest(ctx context.Context, kind, user, channel string) error {
	p, err := a.Policy(kind)
	if err != nil {
		return err
	}
	if err := channelAllowed(p, kind, channel); err != nil {
		return err
	}
	ok, err := a.member(ctx, user, p.Requesters)
	if err != nil {
		return err
	}
	if !ok {
		return &Denied{Reason: fmt.Sprintf("You are not allowed to request %s: approvals.policies.%s.requesters does not name you (%s).", kind, kind, user)}
	}
	return nil
}

// CanApprove checks that user may approve or reject kind from channel.
func (a Authorizer) CanApprove(ctx context.Context, kind, user, channel string) error {
	p, err := a.Policy(kind)
	if err != nil {
		return err
	}
	if err := channelAllowed(p, kind, channel); err != nil {
		return err
	}
	ok, err := a.member(ctx, user, p.Approvers)
	if err != nil {
		return err
	}
	if !ok {
		return &Denied{Reason: fmt.Sprintf("You are not an approver of %s: approvals.policies.%s.approvers does not name you (%s).", kind, kind, user)}
	}
	return nil
}

func channelAllowed(p *config.ApprovalPolicy, kind, channel string) error {
	if channel == "" || len(p.Channels) == 0 || slices.Contains(p.Channels, channel) {
		return nil
	}
	return &Denied{Reason: fmt.Sprintf("%s cannot be requested or approved in this channel (%s); approvals.policies.%s.channels allows %s.", kind, channel, kind, strings.Join(p.Channels, ", "))}
}

// member reports whether user is in list, directly, by "*", or through a
// user group.
func (a Authorizer) member(ctx context.Context, user string, list []string) (bool, error) {
	if user == "" {
		return false, nil
	}
	var groupErr error
	for _, e := range list {
		switch {
		case e == "*" || e == user:
			return true, nil
		case strings.HasPrefix(e, "S"):
			if a.Groups == nil {
				groupErr = &Denied{Reason: fmt.Sprintf("User group %s cannot be resolved (no Slack connection), so its members are not recognised.", e)}
				continue
			}
			ms, err := a.Groups.Members(ctx, e)
			if err != nil {
				groupErr = &Denied{Reason: fmt.Sprintf("User group %s could not be resolved (%v), so its members are not recognised.", e, err)}
				continue
			}
			if slices.Contains(ms, user) {
				return true, nil
			}
		}
	}
	return false, groupErr
}
