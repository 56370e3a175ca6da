// Command chmedic is the Alertmanager receiver that diagnoses ClickHouse and
// ClickHouse Keeper / ZooKeeper incidents live and posts runbook-structured
// messages to Slack. This file only parses flags; the runtime is
// internal/app.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/chmedic/chmedic/internal/app"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/report"
	"github.com/chmedic/chmedic/webhook"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// commands are the commands defined in their own files (cmd_*.go), which
// register themselves in init: each adds its kingpin command and returns
// its name and what runs it.
var commands []func(a *kingpin.Application, configFlag func(*kingpin.CmdClause) *string) (string, func(ctx context.Context, stdout, stderr io.Writer) int)

// exitRequest carries the exit code kingpin asks for after --help.
type exitRequest struct{ code int }

// run executes one command and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (code int) {
	a := kingpin.New("chmedic", "Alertmanager receiver that diagnoses ClickHouse / Keeper incidents and posts runbook-structured Slack messages.")
	a.Writer(stderr)
	// kingpin "terminates" after printing help; stop here instead of
	// running the command.
	a.Terminate(func(c int) { panic(exitRequest{c}) })
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(exitRequest)
			if !ok {
				panic(r)
			}
			code = e.code
		}
	}()
	a.HelpFlag.Short('h')
	a.UsageWriter(stdout)
	configFlag := func(c *kingpin.CmdClause) *string {
		return c.Flag("config", "Path to the chmedic YAML config.").Short('c').Default("chmedic.yaml").String()
	}

	serve := a.Command("serve", "Run the webhook receiver.")
	serveConfig := configFlag(serve)
	listen := serve.Flag("web.listen-address", "Address to listen on (overrides listen_address).").String()
	storePath := serve.Flag("store.path", "SQLite store file (overrides store.path).").String()

	health := a.Command("healthcheck", "Probe a running chmedic's /healthz (for container health checks).")
	healthURL := health.Flag("url", "URL to probe.").Default("http://127.0.0.1:9135/healthz").String()

	check := a.Command("check", "Validate the config and the playbooks; print every error.")
	checkConfig := configFlag(check)

	cfgCmd := a.Command("config", "Print the resolved config with secrets redacted.")
	cfgConfig := configFlag(cfgCmd)

	versionCmd := a.Command("version", "Print the version.")

	diag := a.Command("diagnose", "Run one live diagnosis of a cluster and print it.")
	diagConfig := configFlag(diag)
	diagCluster := diag.Flag("cluster", "Cluster name from the config (default: the only one).").String()
	diagFormat := diag.Flag("format", "Output format.").Default("text").Enum("text", "json")

	render := a.Command("render", "Print the message chmedic would post for an Alertmanager payload.")
	renderConfig := configFlag(render)
	renderAlert := render.Flag("alert", "Alertmanager webhook payload (JSON file, - for stdin).").Required().String()
	renderOffline := render.Flag("offline", "Do not run probes; the findings section says so.").Bool()
	renderFormat := render.Flag("format", "Output format.").Default("text").Enum("text", "blocks")

	pbCmd := a.Command("playbooks", "List the playbooks (built-in and from playbooks.dir) and what they match.")
	pbConfig := configFlag(pbCmd)

	slackManifest := newSlackManifestCmd(a, configFlag) // cmd_slack_manifest.go
	extra := map[string]func(context.Context, io.Writer, io.Writer) int{}
	for _, register := range commands {
		name, runCmd := register(a, configFlag)
		extra[name] = runCmd
	}
	collect := registerCollect(a, configFlag)
	digestCmd := newDigestCommand(a) // cmd_digest.go

	cmd, err := a.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 2
	}
	if runCmd, ok := extra[cmd]; ok {
		return runCmd(ctx, stdout, stderr)
	}
	switch cmd {
	case digestCmd.cmd.FullCommand():
		return digestCmd.run(ctx, stdout, stderr)
	case versionCmd.FullCommand():
		fmt.Fprintf(stdout, "chmedic %s\n", version)
		return 0
	case health.FullCommand():
		hc := &http.Client{Timeout: 3 * time.Second}
		resp, err := hc.Get(*healthURL)
		if err != nil {
			fmt.Fprintf(stderr, "chmedic: %v\n", err)
			return 1
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintf(stderr, "chmedic: %s: %s\n", *healthURL, resp.Status)
			return 1
		}
		return 0
	case check.FullCommand():
		return runCheck(*checkConfig, stdout, stderr)
	case cfgCmd.FullCommand():
		cfg, code := load(*cfgConfig, stderr)
		if cfg == nil {
			return code
		}
		out, err := cfg.Redacted()
		if err != nil {
			fmt.Fprintf(stderr, "chmedic: %v\n", err)
			return 1
		}
		stdout.Write(out)
		return 0
	case serve.FullCommand():
		cfg, code := load(*serveConfig, stderr)
		if cfg == nil {
			return code
		}
		if *listen != "" {
			cfg.ListenAddress = *listen
		}
		if *storePath != "" {
			cfg.Store.Path = *storePath
		}
		log := newLogger(cfg, stderr)
		ap, err := app.New(ctx, cfg, log, app.Options{Version: version})
		if err != nil {
			log.Error("start failed", "err", err)
			return 1
		}
		if err := ap.Run(ctx); err != nil {
			log.Error("stopped with an error", "err", err)
			return 1
		}
		return 0
	case diag.FullCommand():
		cfg, code := load(*diagConfig, stderr)
		if cfg == nil {
			return code
		}
		return runDiagnose(ctx, cfg, *diagCluster, *diagFormat, stdout, stderr)
	case render.FullCommand():
		cfg, code := load(*renderConfig, stderr)
		if cfg == nil {
			return code
		}
		return runRender(ctx, cfg, *renderAlert, *renderOffline, *renderFormat, stdout, stderr)
	case slackManifest.clause.FullCommand():
		return slackManifest.run(stdout, stderr)
	case collect.clause.FullCommand():
		return collect.run(ctx, stdout, stderr)
	case pbCmd.FullCommand():
		cfg, code := load(*pbConfig, stderr)
		if cfg == nil {
			return code
		}
		set, err := playbooks.Load(cfg.Playbooks.Dir, app.PlaybookValidator())
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		set.Describe(stdout)
		return 0
	}
	return 2
}

func load(path string, stderr io.Writer) (*config.Config, int) {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, 1
	}
	return cfg, 0
}

func runCheck(path string, stdout, stderr io.Writer) int {
	var errs []error
	cfg, err := config.Load(path)
	if err != nil {
		errs = append(errs, err)
	}
	dir := ""
	if cfg != nil {
		dir = cfg.Playbooks.Dir
	}
	set, err := playbooks.Load(dir, app.PlaybookValidator())
	if err != nil {
		errs = append(errs, err)
	}
	if cfg != nil && set != nil {
		if err := checkActionNeeds(cfg, set); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		fmt.Fprintln(stderr, errors.Join(errs...))
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d clusters)\n", path, len(cfg.Clusters))
	return 0
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.SlogLevel()}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runDiagnose(ctx context.Context, cfg *config.Config, cluster, format string, stdout, stderr io.Writer) int {
	if cluster == "" {
		if len(cfg.Clusters) != 1 {
			fmt.Fprintf(stderr, "chmedic: --cluster is required (the config has %d clusters)\n", len(cfg.Clusters))
			return 2
		}
		cluster = cfg.Clusters[0].Name
	}
	log := newLogger(cfg, stderr)
	engine, closeEngine, err := app.BuildEngine(cfg, log, nil)
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	defer closeEngine()
	d, err := engine.Diagnose(ctx, cluster)
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	if format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			return 1
		}
		return 0
	}
	report.WriteDiagnosis(stdout, d)
	return 0
}

func runRender(ctx context.Context, cfg *config.Config, alertPath string, offline bool, format string, stdout, stderr io.Writer) int {
	var in io.Reader = os.Stdin
	if alertPath != "-" {
		f, err := os.Open(alertPath)
		if err != nil {
			fmt.Fprintf(stderr, "chmedic: %v\n", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	msg, _, err := webhook.Decode(in, int64(cfg.Webhook.MaxBodyBytes))
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %s: %v\n", alertPath, err)
		return 1
	}
	log := newLogger(cfg, stderr)
	proc, closeProc, err := app.RenderProcessor(cfg, log, offline)
	if err != nil {
		fmt.Fprintf(stderr, "chmedic: %v\n", err)
		return 1
	}
	defer closeProc()
	dctx, cancel := context.WithTimeout(ctx, cfg.Diagnosis.Budget+5*time.Second)
	defer cancel()
	plan := proc.BuildReport(dctx, msg, offline)
	if format == "blocks" {
		out, err := app.RenderBlocksJSON(plan.Report)
		if err != nil {
			fmt.Fprintf(stderr, "chmedic: %v\n", err)
			return 1
		}
		stdout.Write(out)
		return 0
	}
	report.WriteText(stdout, plan.Report)
	return 0
}
