package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
)

// LeaseChecker tells who holds a cluster's action lease (the actions
// Runner's lock), so that an execution another live process is running is
// not marked interrupted.
type LeaseChecker interface {
	LeaseHolder(ctx context.Context, cluster string) (holder string, held bool, err error)
}

// Options configure the approval flow.
type Options struct {
	Store    *store.Store
	Policies *config.ApprovalPolicies
	// TeamID is the Slack workspace whose clicks are accepted; empty
	// refuses every click (fail closed).
	TeamID string
	// Groups resolves user groups (nil: group entries match nobody).
	Groups GroupResolver
	// Planner computes plans and Executor runs them; without them nothing
	// can be requested (the reply says so).
	Planner  Planner
	Executor actions.Executor
	// Leases is optional (see LeaseChecker).
	Leases LeaseChecker
	// Name identifies this process in executions and heartbeats
	// ("server host:pid", "cli host:pid").
	Name string
	// Kick wakes the Slack outbox after messages were queued.
	Kick func()
	// Poll is how often the worker looks for work (approvals recorded by
	// another process, expiries) [2s].
	Poll time.Duration
	Now  func() time.Time
	Log  *slog.Logger
}

// Service is the approval flow: requests from clicks and the CLI, votes
// under the policy, the re-check of the plan and its execution, the thread
// messages and the audit log. It implements ClickHandler.
type Service struct {
	o     Options
	st    *store.Store
	auth  Authorizer
	audit Audit
	wake  chan struct{}

	mu       sync.Mutex
	inflight map[string]bool
	progress map[string][]chslack.StepView
	wg       sync.WaitGroup
}

var _ ClickHandler = (*Service)(nil)

// New builds the flow.
func New(o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.Name == "" {
		o.Name = "chmedic"
	}
	return &Service{
		o: o, st: o.Store, auth: Authorizer{Policies: o.Policies, Groups: o.Groups},
		audit: Audit{Store: o.Store, Now: o.Now}, wake: make(chan struct{}, 1),
		inflight: map[string]bool{}, progress: map[string][]chslack.StepView{},
	}
}

// SetGroupResolver sets the user group resolver (the Slack transport's
// cached usergroups.users.list); call it before Run and the first click.
func (s *Service) SetGroupResolver(g GroupResolver) { s.auth.Groups = g }

// Audit returns the audit log writer (for the transports' refusals).
func (s *Service) Audit() Audit { return s.audit }

// Authorizer returns the policy checks.
func (s *Service) Authorizer() Authorizer { return s.auth }

func (s *Service) now() time.Time { return s.o.Now() }

// Wake makes the worker look for work now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// RequestInput is what a request is made from.
type RequestInput struct {
	Kind    string
	Cluster string
	Params  map[string]string
	User    string // Slack user id (the CLI's --as)
	Via     string // slack | cli
	Channel string // channel id ("" from the CLI)
	// From an offered action:
	OfferID    string
	ThreadKey  string
	GroupKey   string
	AlertStart time.Time
}

// ErrUnavailable is returned when no action runner is wired in.
var ErrUnavailable = errors.New("actions are not available in this chmedic (no action runner configured)")

// Request computes the plan now and stores a pending request (the CLI's
// path; clicks plan from a job). A request refused at plan time — no
// policy, not a requester, a gate says no — is an error (a *Denied or an
// *actions.Refusal), audited; a refusal by a gate is also stored as a
// refused request.
func (s *Service) Request(ctx context.Context, in RequestInput) (store.ApprovalRequest, *actions.Plan, error) {
	if err := s.auth.CanRequest(ctx, in.Kind, in.User, in.Channel); err != nil {
		s.audit.append(ctx, store.AuditEntry{Actor: in.User, Via: in.Via, Event: EventRefused, Kind: in.Kind, Cluster: in.Cluster, Outcome: "not allowed", Detail: err.Error()})
		return store.ApprovalRequest{}, nil, err
	}
	if s.o.Planner == nil || s.o.Executor == nil {
		return store.ApprovalRequest{}, nil, ErrUnavailable
	}
	if in.Params == nil {
		// As the store gives it back: the re-computed plan must see the
		// same parameters.
		in.Params = map[string]string{}
	}
	pol, _ := s.auth.Policy(in.Kind)
	// The re-check before running computes the plan from the stored
	// request: give the planner exactly what the store keeps.
	received := s.now().UTC().Truncate(time.Millisecond)
	in.AlertStart = in.AlertStart.UTC().Truncate(time.Millisecond)
	plan, err := s.o.Planner.Plan(ctx, in.Kind, s.actionRequest(ctx, in.ThreadKey, in.Cluster, in.Params, in.AlertStart, received, in.Via, in.User))
	state, reason := store.ReqPending, ""
	if err != nil {
		state, reason = store.ReqRefused, "refused at plan time: "+err.Error()
	}
	r := store.ApprovalRequest{OfferID: in.OfferID, Kind: in.Kind, Cluster: in.Cluster, Params: in.Params, ThreadKey: in.ThreadKey,
		GroupKey: in.GroupKey, Channel: in.Channel, AlertStart: in.AlertStart, RequestedBy: in.User, RequestedVia: in.Via, State: state, Reason: reason,
		CreatedAt: received}
	if err == nil {
		b, _ := json.Marshal(plan)
		r.Plan, r.PlanHash, r.ExpiresAt = b, plan.Hash(), s.now().Add(pol.ExpireAfter)
	}
	r, created, cerr := s.st.CreateApprovalRequest(ctx, r)
	if cerr != nil {
		return r, nil, cerr
	}
	if !created {
		return r, nil, &Denied{Reason: fmt.Sprintf("Already requested by %s (%s): request %s.", r.RequestedBy, r.State, r.ID)}
	}
	if err != nil {
		s.audit.append(ctx, store.AuditEntry{Actor: in.User, Via: in.Via, Event: EventRefused, RequestID: r.ID, Kind: in.Kind, Cluster: in.Cluster,
			Outcome: "refused at plan time", Detail: err.Error()})
		s.publish(ctx, r.ID)
		return r, nil, err
	}
	s.audit.append(ctx, store.AuditEntry{Actor: in.User, Via: in.Via, Event: EventRequested, RequestID: r.ID, Kind: in.Kind, Cluster: in.Cluster,
		Nodes: PlanNodes(plan), PlanHash: r.PlanHash, Outcome: store.ReqPending, Detail: plan.Summary})
	s.publish(ctx, r.ID)
	return r, &plan, nil
}

func (s *Service) actionRequest(ctx context.Context, threadKey, cluster string, params map[string]string, alertStart, received time.Time, via, user string) actions.Request {
	req := actions.Request{Cluster: cluster, Params: params, AlertStart: alertStart, ReceivedAt: received, RequestedBy: via + ":" + user}
	// The alert's thread, where an action may attach what it produced
	// (collect_logs' bundle). A click comes from a posted message, so its
	// thread is known both when the plan is made and when it is re-checked.
	if threadKey != "" {
		if t, err := s.st.Thread(ctx, threadKey); err == nil && t.TS != "" {
			req.Channel, req.ThreadTS = t.Channel, t.TS
		}
	}
	return req
}

// VoteInput is one approve or reject.
type VoteInput struct {
	RequestID string
	User      string
	Via       string // slack | cli
	Channel   string // "" from the CLI
	Approve   bool
}

// VoteResult says what a vote did.
type VoteResult struct {
	Request  store.ApprovalRequest
	Decision Decision
	// Duplicate is set when the user had already voted (nothing changed).
	Duplicate bool
	// Message is the one sentence for the voter.
	Message string
}

// Vote records an approve or reject under the policy and decides. A
// refusal is a *Denied (audited); a second vote by the same user changes
// nothing.
func (s *Service) Vote(ctx context.Context, in VoteInput) (VoteResult, error) {
	r, err := s.st.ApprovalRequest(ctx, in.RequestID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			s.refuse(ctx, in.User, in.Via, store.ApprovalRequest{ID: in.RequestID}, "unknown request", "")
			return VoteResult{}, &Denied{Reason: fmt.Sprintf("There is no request %q.", in.RequestID)}
		}
		return VoteResult{}, err
	}
	res := VoteResult{Request: r}
	if r.State == store.ReqPending && !s.now().Before(r.ExpiresAt) {
		s.expire(ctx, r)
		r, _ = s.st.ApprovalRequest(ctx, r.ID)
	}
	if r.State != store.ReqPending {
		// A Slack retry or a double click of a vote that decided.
		vs, _ := s.st.Votes(ctx, r.ID)
		for _, v := range vs {
			if v.Voter == in.User {
				res.Duplicate = true
				res.Message = fmt.Sprintf("You already voted (%s at %s UTC). %s", voteWord(v.Approve), v.At.UTC().Format("15:04:05"), decidedText(r))
				return res, nil
			}
		}
		s.refuse(ctx, in.User, in.Via, r, "request is "+r.State, "")
		return res, &Denied{Reason: decidedText(r)}
	}
	if err := s.auth.CanApprove(ctx, r.Kind, in.User, in.Channel); err != nil {
		s.refuse(ctx, in.User, in.Via, r, "not an approver", err.Error())
		return res, err
	}
	pol, _ := s.auth.Policy(r.Kind)
	if in.Approve && in.User == r.RequestedBy && !pol.AllowSelfApproval {
		s.refuse(ctx, in.User, in.Via, r, "self-approval", "")
		return res, &Denied{Reason: "You requested this action; another approver must approve it (approvals.policies." + r.Kind + ".allow_self_approval is false)."}
	}
	v, added, err := s.st.AddVote(ctx, store.ApprovalVote{RequestID: r.ID, Voter: in.User, Approve: in.Approve, Via: in.Via})
	if errors.Is(err, store.ErrConflict) {
		r, _ = s.st.ApprovalRequest(ctx, r.ID)
		return res, &Denied{Reason: decidedText(r)}
	}
	if err != nil {
		return res, err
	}
	if !added {
		res.Duplicate = true
		res.Message = fmt.Sprintf("You already voted (%s at %s UTC); one vote per person.", voteWord(v.Approve), v.At.UTC().Format("15:04:05"))
		res.Decision = s.decide(ctx, r)
		return res, nil
	}
	ev := EventApproveVote
	if !in.Approve {
		ev = EventRejectVote
	}
	s.audit.append(ctx, store.AuditEntry{Actor: in.User, Via: in.Via, Event: ev, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster, PlanHash: r.PlanHash})
	d := s.decide(ctx, r)
	res.Decision = d
	switch d.Outcome {
	case Approved:
		if err := s.st.TransitionRequest(ctx, r.ID, []string{store.ReqPending}, store.ReqApproved, d.Reason); err == nil {
			s.audit.append(ctx, store.AuditEntry{Actor: "chmedic", Event: EventApproved, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster,
				Nodes: s.nodes(r), PlanHash: r.PlanHash, Outcome: store.ReqApproved, Detail: d.Reason})
			s.Wake()
		}
		res.Message = fmt.Sprintf("Approved (%d of %d): chmedic re-checks the plan and runs it now.", len(d.Approvals), d.Needed)
	case Rejected:
		if err := s.st.TransitionRequest(ctx, r.ID, []string{store.ReqPending}, store.ReqRejected, d.Reason); err == nil {
			s.audit.append(ctx, store.AuditEntry{Actor: in.User, Via: in.Via, Event: EventRejected, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster,
				Nodes: s.nodes(r), PlanHash: r.PlanHash, Outcome: store.ReqRejected, Detail: d.Reason})
		}
		res.Message = "Rejected: nothing will run."
	default:
		res.Message = fmt.Sprintf("Your approval is recorded: %d of %d.", len(d.Approvals), d.Needed)
	}
	s.publish(ctx, r.ID)
	res.Request, _ = s.st.ApprovalRequest(ctx, r.ID)
	return res, nil
}

func voteWord(approve bool) string {
	if approve {
		return "approve"
	}
	return "reject"
}

// decide applies the policy to the stored votes.
func (s *Service) decide(ctx context.Context, r store.ApprovalRequest) Decision {
	pol, _ := s.auth.Policy(r.Kind)
	vs, _ := s.st.Votes(ctx, r.ID)
	var votes []Vote
	for _, v := range vs {
		votes = append(votes, Vote{User: v.Voter, Approve: v.Approve, Via: v.Via, At: v.At})
	}
	return Decide(pol, Facts{Kind: r.Kind, RequestedBy: r.RequestedBy, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}, votes, s.now())
}

func decidedText(r store.ApprovalRequest) string {
	switch r.State {
	case store.ReqExpired:
		return fmt.Sprintf("This request expired at %s UTC; nothing ran. Request it again if it is still needed.", r.ExpiresAt.UTC().Format("15:04:05"))
	case store.ReqPlanning:
		return "The plan of this request is still being computed; vote once it is shown."
	case store.ReqRejected:
		return "This request was rejected (" + r.Reason + "); nothing ran."
	case store.ReqApproved, store.ReqRunning:
		return "This request is already approved (" + r.Reason + ")."
	case store.ReqStale:
		return "This request was not run: its plan changed since it was approved (the cluster or chmedic's configuration changed). Request it again."
	case store.ReqRefused:
		return "This request was refused: " + r.Reason
	case store.ReqInterrupted:
		return "This request's execution was interrupted; use Resume or Abort."
	case store.ReqStopped:
		return "This request's execution stopped at a failed step (" + r.Reason + "); use Resume or Abort."
	}
	return "This request is already decided: " + r.State + "."
}

func (s *Service) refuse(ctx context.Context, user, via string, r store.ApprovalRequest, reason, detail string) {
	s.audit.append(ctx, store.AuditEntry{Actor: user, Via: via, Event: EventRefused, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster,
		PlanHash: r.PlanHash, Outcome: reason, Detail: detail})
}

func (s *Service) expire(ctx context.Context, r store.ApprovalRequest) {
	d := s.decide(ctx, r)
	if err := s.st.TransitionRequest(ctx, r.ID, []string{store.ReqPending}, store.ReqExpired, d.Reason); err != nil {
		return
	}
	s.audit.append(ctx, store.AuditEntry{Actor: "chmedic", Event: EventExpired, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster,
		Nodes: s.nodes(r), PlanHash: r.PlanHash, Outcome: store.ReqExpired, Detail: d.Reason})
	s.publish(ctx, r.ID)
}

// Resume continues an interrupted or stopped execution (an approver's
// decision): the runner skips the steps recorded as done; a stopped one is
// re-checked by its action first (it may be refused again, and stays
// stopped).
func (s *Service) Resume(ctx context.Context, in VoteInput) (store.ApprovalRequest, error) {
	return s.control(ctx, in, store.ReqApproved, EventResumed)
}

// Abort ends an interrupted or stopped execution without running the
// rest; what the step in progress or stopped left behind is cleaned up.
func (s *Service) Abort(ctx context.Context, in VoteInput) (store.ApprovalRequest, error) {
	return s.control(ctx, in, store.ReqAborted, EventAborted)
}

func (s *Service) control(ctx context.Context, in VoteInput, to, event string) (store.ApprovalRequest, error) {
	r, err := s.st.ApprovalRequest(ctx, in.RequestID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return r, &Denied{Reason: fmt.Sprintf("There is no request %q.", in.RequestID)}
		}
		return r, err
	}
	if !controllable(r.State) {
		s.refuse(ctx, in.User, in.Via, r, "request is "+r.State, event)
		return r, &Denied{Reason: fmt.Sprintf("Only an interrupted execution can be resumed or aborted (or one stopped at a failed step); this request is %s.", r.State)}
	}
	if err := s.auth.CanApprove(ctx, r.Kind, in.User, in.Channel); err != nil {
		s.refuse(ctx, in.User, in.Via, r, "not an approver", err.Error())
		return r, err
	}
	reason := event + " by " + in.User
	if err := s.st.TransitionRequest(ctx, r.ID, controlStates, to, reason); err != nil {
		if errors.Is(err, store.ErrConflict) {
			r, _ = s.st.ApprovalRequest(ctx, r.ID)
			return r, &Denied{Reason: "Someone else already decided: the request is " + r.State + "."}
		}
		return r, err
	}
	if to == store.ReqAborted {
		if e, err := s.st.ApprovalExecutionOf(ctx, r.ID); err == nil {
			if s.st.FinishApprovalExecution(ctx, e.ID, actions.ExecAborted, e.Outcome) == nil {
				defer s.cleanupAfterAbort(ctx, r, e.ID) // after the abort's audit entry
			}
		}
	}
	s.audit.append(ctx, store.AuditEntry{Actor: in.User, Via: in.Via, Event: event, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster,
		Nodes: s.nodes(r), PlanHash: r.PlanHash, Outcome: to})
	s.publish(ctx, r.ID)
	s.Wake()
	r, _ = s.st.ApprovalRequest(ctx, r.ID)
	return r, nil
}

// nodes lists the nodes of a request's stored plan.
func (s *Service) nodes(r store.ApprovalRequest) []string {
	p, ok := storedPlan(r)
	if !ok {
		return nil
	}
	return PlanNodes(p)
}

func storedPlan(r store.ApprovalRequest) (actions.Plan, bool) {
	var p actions.Plan
	if len(r.Plan) == 0 || json.Unmarshal(r.Plan, &p) != nil {
		return p, false
	}
	return p, true
}

// HandleClick handles a verified button press: an offered action (request
// it) or a request's Approve / Reject / Resume / Abort. It only records and
// answers; plans and executions run on the worker.
func (s *Service) HandleClick(ctx context.Context, c Click) (Reply, error) {
	if s.o.TeamID == "" || c.TeamID != s.o.TeamID {
		s.audit.Refused(ctx, Attempt{UserID: c.UserID, TeamID: c.TeamID, Via: "slack", Reason: RefusedOtherTeam, RequestID: c.Value})
		if s.o.TeamID == "" {
			return Reply{Ephemeral: "chmedic does not know which Slack workspace it serves (approvals.team_id is unset and auth.test failed at start), so it accepts no clicks."}, nil
		}
		return Reply{Ephemeral: "This chmedic serves another Slack workspace; nothing was done."}, nil
	}
	in := VoteInput{RequestID: c.Value, User: c.UserID, Via: "slack", Channel: c.ChannelID}
	var err error
	var msg string
	switch c.ActionID {
	case chslack.ActionApprove, chslack.ActionReject:
		in.Approve = c.ActionID == chslack.ActionApprove
		var res VoteResult
		res, err = s.Vote(ctx, in)
		msg = res.Message
	case chslack.ActionResume:
		var before store.ApprovalRequest
		before, _ = s.st.ApprovalRequest(ctx, in.RequestID)
		if _, err = s.Resume(ctx, in); err == nil {
			msg = "Resuming: the steps already done are not repeated."
			if before.State == store.ReqStopped {
				msg = "Resuming: chmedic first re-checks the step where it stopped and the gates of the whole run (a failing check keeps it stopped, with the figures, in the thread); the steps already done are not repeated."
			}
		}
	case chslack.ActionAbort:
		if _, err = s.Abort(ctx, in); err == nil {
			msg = "Aborted: the remaining steps will not run."
		}
	default:
		if !strings.HasPrefix(c.ActionID, "chmedic:") {
			s.audit.Refused(ctx, Attempt{UserID: c.UserID, TeamID: c.TeamID, Via: "slack", Reason: RefusedMalformed, Detail: "action " + c.ActionID})
			return Reply{Ephemeral: "chmedic does not know this button."}, nil
		}
		msg, err = s.offerClicked(ctx, c)
	}
	if IsDenied(err) {
		return Reply{Ephemeral: err.Error()}, nil
	}
	if err != nil {
		s.o.Log.Error("approvals: click failed", "action_id", c.ActionID, "user", c.UserID, "err", err)
		return Reply{Ephemeral: "chmedic could not record this click: " + err.Error()}, err
	}
	return Reply{Ephemeral: msg}, nil
}

// offerClicked turns a click on an offered action into a request in state
// planning; the worker computes the plan and posts it in the thread.
func (s *Service) offerClicked(ctx context.Context, c Click) (string, error) {
	offer, err := s.st.ActionRequestByID(ctx, c.Value)
	if errors.Is(err, store.ErrNotFound) {
		s.refuse(ctx, c.UserID, "slack", store.ApprovalRequest{ID: c.Value}, "unknown offer", c.ActionID)
		return "", &Denied{Reason: "chmedic does not know this button (no such offer); nothing was done."}
	}
	if err != nil {
		return "", err
	}
	if offer.State != "offered" {
		s.refuse(ctx, c.UserID, "slack", store.ApprovalRequest{ID: offer.ID, Kind: offer.Kind, Cluster: offer.Cluster}, "offer is "+offer.State, "")
		return "", &Denied{Reason: fmt.Sprintf("This button belongs to an older version of the message (the offer is %s); use the buttons of the current message.", offer.State)}
	}
	if err := s.auth.CanRequest(ctx, offer.Kind, c.UserID, c.ChannelID); err != nil {
		s.refuse(ctx, c.UserID, "slack", store.ApprovalRequest{ID: offer.ID, Kind: offer.Kind, Cluster: offer.Cluster}, "not a requester", err.Error())
		return "", err
	}
	if s.o.Planner == nil || s.o.Executor == nil {
		return "", &Denied{Reason: ErrUnavailable.Error() + "; nothing was requested."}
	}
	// One live request per kind in a thread, also across the offers of
	// successive versions of the message.
	live, err := s.st.ApprovalRequests(ctx, store.LiveRequestStates, offer.ThreadKey, 50)
	if err != nil {
		return "", err
	}
	for _, other := range live {
		if other.Kind == offer.Kind && offer.ThreadKey != "" {
			return fmt.Sprintf("%s was already requested by <@%s> (%s); see the thread.", other.Kind, other.RequestedBy, other.State), nil
		}
	}
	r, created, err := s.st.CreateApprovalRequest(ctx, store.ApprovalRequest{OfferID: offer.ID, Kind: offer.Kind, Cluster: offer.Cluster, Params: offer.Params,
		ThreadKey: offer.ThreadKey, GroupKey: offer.GroupKey, Channel: c.ChannelID, AlertStart: offer.AlertStart,
		RequestedBy: c.UserID, RequestedVia: "slack", State: store.ReqPlanning})
	if err != nil {
		return "", err
	}
	if !created {
		return fmt.Sprintf("%s was already requested by <@%s> (%s); see the thread.", r.Kind, r.RequestedBy, r.State), nil
	}
	s.audit.append(ctx, store.AuditEntry{Actor: c.UserID, Via: "slack", Event: EventRequested, RequestID: r.ID, Kind: r.Kind, Cluster: r.Cluster, Outcome: store.ReqPlanning})
	s.publish(ctx, r.ID)
	s.Wake()
	return fmt.Sprintf("Requested %s on %s: chmedic is computing the plan; it will be posted in the thread for approval.", r.Kind, r.Cluster), nil
}
