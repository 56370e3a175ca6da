package main

import (
	"context"
	"io"

	"github.com/alecthomas/kingpin/v2"
)

func init() { commands = append(commands, registerReject) }

func registerReject(a *kingpin.Application, configFlag func(*kingpin.CmdClause) *string) (string, func(context.Context, io.Writer, io.Writer) int) {
	c := a.Command("reject", "Reject a request (the policy applies); nothing runs.")
	cfgPath := configFlag(c)
	id := c.Arg("request", "Request id.").Required().String()
	as := c.Flag("as", "Your Slack user id: approvals.policies.<kind>.approvers must name you.").Required().String()
	return c.FullCommand(), func(ctx context.Context, stdout, stderr io.Writer) int {
		return runVote(ctx, *cfgPath, *id, *as, false, false, stdout, stderr)
	}
}
