package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/alecthomas/kingpin/v2"

	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/store"
)

func init() { commands = append(commands, registerApprove) }

func registerApprove(a *kingpin.Application, configFlag func(*kingpin.CmdClause) *string) (string, func(context.Context, io.Writer, io.Writer) int) {
	c := a.Command("approve", "Approve a request (break-glass when Slack is down; the policy applies). The running server executes it, or this command when no server runs.")
	cfgPath := configFlag(c)
	id := c.Arg("request", "Request id.").Required().String()
	as := c.Flag("as", "Your Slack user id: approvals.policies.<kind>.approvers must name you.").Required().String()
	wait := c.Flag("wait", "Block until the execution ends and print its outcome.").Bool()
	return c.FullCommand(), func(ctx context.Context, stdout, stderr io.Writer) int {
		return runVote(ctx, *cfgPath, *id, *as, true, *wait, stdout, stderr)
	}
}

// runVote records an approval or a rejection from the CLI.
func runVote(ctx context.Context, path, id, as string, approve, wait bool, stdout, stderr io.Writer) int {
	c, code := openApprovalsCLI(ctx, path, stderr)
	if c == nil {
		return code
	}
	defer c.close()
	res, err := c.svc.Vote(ctx, approvals.VoteInput{RequestID: id, User: as, Via: "cli", Approve: approve})
	if err != nil {
		// Approved already (e.g. in Slack) but not run, the server being
		// down: an approver may still run it from here.
		r, lerr := c.st.ApprovalRequest(ctx, id)
		if !approve || lerr != nil || r.State != store.ReqApproved || c.svc.Authorizer().CanApprove(ctx, r.Kind, as, "") != nil {
			return failed(stderr, err)
		}
		res = approvals.VoteResult{Request: r, Message: "Already approved (" + r.Reason + ")."}
	}
	fmt.Fprintln(stdout, res.Message)
	r := res.Request
	if r.State != store.ReqApproved && (!wait || r.Terminal()) {
		return 0
	}
	// Approved (now or by an earlier vote), or waiting for the end.
	r, err = c.settle(ctx, id, wait, stdout)
	if err != nil {
		return failed(stderr, err)
	}
	if !r.Terminal() && r.State != store.ReqInterrupted && r.State != store.ReqStopped {
		fmt.Fprintf(stdout, "request %s: %s\n", r.ID, r.State)
		if strings.HasPrefix(r.Reason, "waiting: ") {
			fmt.Fprintf(stdout, "  %s\n", r.Reason)
		}
		return 0
	}
	return c.printOutcome(ctx, r, stdout)
}
