package main

import (
	"fmt"
	"io"

	"github.com/alecthomas/kingpin/v2"

	chslack "github.com/chmedic/chmedic/internal/slack"
)

// slackManifestCmd is `chmedic slack-manifest --config F [--format yaml|json]`:
// it prints the Slack app manifest for the config (the bot scopes chmedic
// uses, the interactivity request URL or Socket Mode, the bot user), to
// paste into "Create an app → From a manifest".
type slackManifestCmd struct {
	clause *kingpin.CmdClause
	config *string
	format *string
}

func newSlackManifestCmd(a *kingpin.Application, configFlag func(*kingpin.CmdClause) *string) *slackManifestCmd {
	c := &slackManifestCmd{clause: a.Command("slack-manifest", "Print the Slack app manifest for this config (scopes, interactivity URL or Socket Mode, bot user).")}
	c.config = configFlag(c.clause)
	c.format = c.clause.Flag("format", "Output format (Slack accepts both).").Default("yaml").Enum("yaml", "json")
	return c
}

func (c *slackManifestCmd) run(stdout, stderr io.Writer) int {
	cfg, code := load(*c.config, stderr)
	if cfg == nil {
		return code
	}
	render := chslack.ManifestYAML
	if *c.format == "json" {
		render = chslack.ManifestJSON
	}
	out, err := render(&cfg.Slack)
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %s: %v\n", *c.config, err)
		return 1
	}
	stdout.Write(out)
	return 0
}
