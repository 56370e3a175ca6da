package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/alecthomas/kingpin/v2"
	goslack "github.com/slack-go/slack"

	"github.com/chmedic/chmedic/internal/app"
	"github.com/chmedic/chmedic/internal/config"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/internal/store"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/digest"
)

// digestCommand is `chmedic digest`: one health digest now, printed or posted.
type digestCommand struct {
	cmd     *kingpin.CmdClause
	config  *string
	cluster *string
	post    *bool
	format  *string
	noStore *bool
}

func newDigestCommand(a *kingpin.Application) *digestCommand {
	c := &digestCommand{cmd: a.Command("digest", "Compute a health digest now (every configured cluster, or one) and print or post it; it is stored as the previous of the next digest.")}
	c.config = c.cmd.Flag("config", "Path to the chmedic YAML config.").Short('c').Default("chmedic.yaml").String()
	c.cluster = c.cmd.Flag("cluster", "Only this cluster (default: all clusters).").String()
	c.post = c.cmd.Flag("post", "Post it to Slack (the cluster's slack_channel, else slack.channel) through the store's outbox.").Bool()
	c.format = c.cmd.Flag("format", "Output format.").Default("text").Enum("text", "json", "blocks")
	c.noStore = c.cmd.Flag("no-store", "A dry look: do not store this digest (the next one compares with the last stored one).").Bool()
	return c
}

func (c *digestCommand) run(ctx context.Context, stdout, stderr io.Writer) int {
	cfg, code := load(*c.config, stderr)
	if cfg == nil {
		return code
	}
	clusters := []string{}
	if *c.cluster != "" {
		if _, ok := cfg.Cluster(*c.cluster); !ok {
			fmt.Fprintf(stderr, "chmedic: unknown cluster %q\n", *c.cluster)
			return 2
		}
		clusters = append(clusters, *c.cluster)
	} else {
		for _, cl := range cfg.Clusters {
			clusters = append(clusters, cl.Name)
		}
	}
	log := newLogger(cfg, stderr)
	pbs, err := playbooks.Load(cfg.Playbooks.Dir, app.PlaybookValidator())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	st, err := store.Open(ctx, cfg.Store.Path)
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	defer st.Close()
	engine, clusterNodes, closeEngine, err := app.BuildDigestEngine(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	defer closeEngine()
	svc := app.NewDigestService(app.DigestDeps{Config: cfg, Diagnoser: engine, Clusters: clusterNodes, Store: st, Playbooks: pbs, Log: log, Freezes: app.FreezesSource(st)})
	dctx, cancel := context.WithTimeout(ctx, time.Duration(len(clusters)+1)*(cfg.Diagnosis.Budget+5*time.Second))
	defer cancel()
	d, err := svc.Run(dctx, digest.Request{Source: digest.SourceCLI, Clusters: clusters, NoStore: *c.noStore})
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	if *c.post {
		if code := postDigest(ctx, cfg, st, d, *c.cluster, stderr); code != 0 {
			return code
		}
	}
	switch *c.format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return 1
		}
	case "blocks":
		msg := chslack.RenderDigest(d)
		out, err := json.MarshalIndent(struct {
			Text   string `json:"text"`
			Blocks any    `json:"blocks"`
		}{msg.Text, msg.Blocks}, "", "  ")
		if err != nil {
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", out)
	default:
		digest.WriteText(stdout, d)
	}
	return 0
}

// postDigest queues the digest in the outbox and delivers it, waiting for
// Slack's answer (at most 30 s; what is left stays queued for `serve`).
func postDigest(ctx context.Context, cfg *config.Config, st *store.Store, d *digest.Digest, cluster string, stderr io.Writer) int {
	channel := cfg.Slack.Channel
	if cl, ok := cfg.Cluster(cluster); ok && cl.SlackChannel != "" {
		channel = cl.SlackChannel
	}
	if channel == "" && cfg.Slack.Enabled() {
		fmt.Fprintln(stderr, "chmedic: --post needs slack.channel (or the cluster's slack_channel)")
		return 2
	}
	id, err := app.PostDigest(ctx, st, d, channel, app.DigestThreadKey("", d.GeneratedAt))
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	var api chslack.API
	if cfg.Slack.Enabled() {
		api = goslack.New(cfg.Slack.BotToken.Value(), goslack.OptionAPIURL(cfg.Slack.APIURL))
	}
	instance, err := st.InstanceID(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "chmedic:", err)
		return 1
	}
	ob := chslack.NewOutbox(st, api, chslack.OutboxOptions{Log: newLogger(cfg, stderr), Instance: instance})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ob.Step(ctx)
		e, err := st.OutboxEntry(ctx, id)
		if err == nil && (e.State == store.OutboxSent || e.State == store.OutboxFailed) {
			if e.State == store.OutboxFailed {
				fmt.Fprintf(stderr, "chmedic: Slack refused the digest: %s\n", e.LastError)
				return 1
			}
			return 0
		}
		select {
		case <-ctx.Done():
			return 1
		case <-time.After(200 * time.Millisecond):
		}
	}
	fmt.Fprintln(stderr, "chmedic: the digest is queued but not delivered yet; `chmedic serve` will deliver it")
	return 1
}
