package app

import (
	"context"
	"time"

	"github.com/chmedic/chmedic/approvals"
	"github.com/chmedic/chmedic/internal/slashcmd"
	"github.com/chmedic/chmedic/playbooks/digest"
)

// setupSlashCommands builds the /chmedic handler: the approvals' workspace,
// slack.commands, the user-group resolver, the diagnosis engine, DigestNow
// and, in the channels chmedic posts to, digests posted through the outbox
// with their buttons.
func (a *App) setupSlashCommands() approvals.CommandHandler {
	cfg := a.cfg
	var names []string
	for _, c := range cfg.Clusters {
		names = append(names, c.Name)
	}
	command := cfg.Slack.SlashCommand
	if command == "" {
		command = "/chmedic"
	}
	o := slashcmd.Options{
		Command:    command,
		TeamID:     func() string { return "" },
		Clusters:   names,
		Policy:     cfg.Slack.Commands,
		Groups:     a.UserGroups,
		Diagnoser:  a.Engine,
		Digests:    a,
		PostDigest: appDigestPoster{a},
		InChannel:  slashcmd.InChannelOf(slashcmd.PostingChannels(cfg)),
		Responder:  &slashcmd.HTTPResponder{Client: a.opts.HTTPClient},
		JobTimeout: time.Duration(len(names)+1) * (cfg.Diagnosis.Budget + 5*time.Second),
		Registerer: a.reg,
		Now:        a.opts.Now,
		Log:        a.log.With("component", "slash_command"),
	}
	if a.Approvals != nil {
		o.TeamID = a.Approvals.TeamID
		o.Audit = a.Approvals.Audit()
	}
	o.Freezes = FreezesSource(a.Store)
	h := slashcmd.New(o)
	a.closers = append(a.closers, func() error { h.Close(); return nil })
	return h
}

// appDigestPoster posts an on-demand digest to a channel as the scheduler
// posts its digests (PostDigest: offered actions, durable outbox); one
// digest posted twice to one channel is one message.
type appDigestPoster struct{ a *App }

func (p appDigestPoster) PostDigest(ctx context.Context, d *digest.Digest, channel string) error {
	if _, err := PostDigest(ctx, p.a.Store, d, channel, DigestThreadKey("slack-"+channel, d.GeneratedAt)); err != nil {
		return err
	}
	p.a.Outbox.Kick()
	return nil
}
