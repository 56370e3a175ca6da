package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/chmedic/chmedic/internal/testenv"
)

// The demo: `chmedic-bench demo` starts the real environment, chmedic wired
// to it (Alertmanager → chmedic → the Slack fake) and prints every message
// the fake receives as text; it listens for break commands on a loopback
// control address (written to demoAddrFile). A second invocation,
// `chmedic-bench demo zk-pause`, sends one: the demo breaks the environment
// for real and posts the matching alert to the real Alertmanager, which
// sends it to chmedic, which diagnoses the live cluster.

// demoCommands are the break (and repair) commands, in the order shown.
var demoCommands = []struct{ name, help string }{
	{"zk-pause", "pause ZooKeeper (SIGSTOP): a hung coordination service; alert ZookeeperNotOk"},
	{"zk-resume", "resume ZooKeeper (SIGCONT), resolve its alert"},
	{"zk-stop", "stop ZooKeeper: replicas turn read-only; alert ZookeeperDown"},
	{"zk-start", "start ZooKeeper again, resolve its alert"},
	{"ddl-storm", "run 200 CREATE/DROP TABLE on ch-1; alert ClickHouseDistributedDDLQueueStuck"},
	{"replica-stop", "stop ClickHouse ch-2; alert ClickHouseReplicasInReadOnly"},
	{"replica-start", "start ch-2 again, resolve its alert"},
	{"heal", "undo every fault and resolve every alert"},
	{"status", "what is broken now"},
}

func demoAddrFile() string { return filepath.Join(os.TempDir(), "chmedic-demo.addr") }

func demoMain(args []string) int {
	fs := flag.NewFlagSet("chmedic-bench demo", flag.ContinueOnError)
	control := fs.String("control", "", "control address (default: 127.0.0.1:9137 when starting; the address in "+demoAddrFile()+" when sending)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: chmedic-bench demo [--control ADDR]           start the demo (Ctrl-C stops it)\n       chmedic-bench demo [--control ADDR] COMMAND   break or repair it, from another terminal\n\ncommands:\n")
		for _, c := range demoCommands {
			fmt.Fprintf(fs.Output(), "  %-14s %s\n", c.name, c.help)
		}
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		return demoSend(*control, fs.Arg(0))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runDemo(ctx, cmpStr(*control, "127.0.0.1:9137"), os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "chmedic-bench demo: %v\n", err)
		return 1
	}
	return 0
}

// demoSend sends one command to a running demo and prints its answer.
func demoSend(addr, cmd string) int {
	if addr == "" {
		data, err := os.ReadFile(demoAddrFile())
		if err != nil {
			fmt.Fprintf(os.Stderr, "chmedic-bench demo: no demo running (%v); start one with: make demo\n", err)
			return 1
		}
		addr = strings.TrimSpace(string(data))
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Post("http://"+addr+"/"+cmd, "text/plain", nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "chmedic-bench demo: %v (is the demo running?)\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Print(string(body))
	if resp.StatusCode != http.StatusOK {
		return 1
	}
	return 0
}

// demo is a running demo.
type demo struct {
	h   *harness
	p   *chmedicProc
	out io.Writer

	mu     sync.Mutex
	broken map[string]bool     // faults in effect
	alerts map[string][]string // fault → alert names posted for it
}

func runDemo(ctx context.Context, control string, out io.Writer) error {
	logf := func(format string, args ...any) {
		fmt.Fprintf(out, "%s demo: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	logf("starting ZooKeeper, two ClickHouse 18.16 replicas, Alertmanager, the Slack fake and chmedic (about 20 s)…")
	h, err := newHarness(ctx, nil, "", logf)
	if err != nil {
		return err
	}
	defer h.close()
	p, err := h.startChmedic(ctx, "demo", chOptions{CacheTTL: "3s"})
	if err != nil {
		return err
	}
	defer p.stop(sigterm)
	if err := h.env.Alertmanager.SetWebhook(ctx, p.webhookURL(), ""); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", control)
	if err != nil {
		return fmt.Errorf("control address %s: %w (another demo running? pass --control)", control, err)
	}
	defer ln.Close()
	if err := os.WriteFile(demoAddrFile(), []byte(ln.Addr().String()), 0o644); err != nil {
		return err
	}
	defer os.Remove(demoAddrFile())
	d := &demo{h: h, p: p, out: out, broken: map[string]bool{}, alerts: map[string][]string{}}
	srv := &http.Server{Handler: http.HandlerFunc(d.serveControl)}
	go srv.Serve(ln)
	defer srv.Close()
	go d.printSlack(ctx)

	fmt.Fprintf(out, `
chmedic is running at http://%s (config %s, log %s),
fed by the real Alertmanager at %s; Slack is the fake: every message chmedic posts is printed below.

Break it from another terminal (each command also fires the matching alert through Alertmanager):
`, p.addr, p.cfgPath, p.logPath, h.env.Alertmanager.URL)
	for _, c := range demoCommands {
		fmt.Fprintf(out, "  go run ./cmd/chmedic-bench demo %-14s # %s\n", c.name, c.help)
	}
	fmt.Fprintf(out, "Ctrl-C stops everything.\n\n")
	<-ctx.Done()
	fmt.Fprintln(out, "\nstopping…")
	d.heal(context.Background())
	return nil
}

func (d *demo) serveControl(w http.ResponseWriter, r *http.Request) {
	cmd := strings.Trim(r.URL.Path, "/")
	ctx, cancel := context.WithTimeout(r.Context(), 90*time.Second)
	defer cancel()
	msg, err := d.do(ctx, cmd)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "%s: %v\n", cmd, err)
		fmt.Fprintf(d.out, "%s demo: %s failed: %v\n", time.Now().Format("15:04:05"), cmd, err)
		return
	}
	fmt.Fprintln(w, msg)
	fmt.Fprintf(d.out, "%s demo: %s\n", time.Now().Format("15:04:05"), msg)
}

func (d *demo) do(ctx context.Context, cmd string) (string, error) {
	env := d.h.env
	switch cmd {
	case "zk-pause":
		if err := env.ZooKeeper.Pause(); err != nil {
			return "", err
		}
		return d.fire(ctx, cmd, "ZooKeeper paused (SIGSTOP): it accepts connections and answers nothing", "ZookeeperNotOk")
	case "zk-resume":
		if err := env.ZooKeeper.Resume(); err != nil {
			return "", err
		}
		return d.resolve(ctx, "zk-pause", "ZooKeeper resumed")
	case "zk-stop":
		if err := env.ZooKeeper.Stop(ctx); err != nil {
			return "", err
		}
		return d.fire(ctx, cmd, "ZooKeeper stopped: the replicas turn read-only within seconds", "ZookeeperDown")
	case "zk-start":
		if err := env.ZooKeeper.Start(ctx); err != nil {
			return "", err
		}
		return d.resolve(ctx, "zk-stop", "ZooKeeper started; the replicas recover in about 8 s")
	case "ddl-storm":
		n, err := ddlStorm(ctx, env, 100)
		if err != nil {
			return "", err
		}
		return d.fire(ctx, cmd, fmt.Sprintf("ran %d DDL statements on ch-1", n), "ClickHouseDistributedDDLQueueStuck")
	case "replica-stop":
		if err := env.ClickHouse[1].Stop(ctx); err != nil {
			return "", err
		}
		return d.fire(ctx, cmd, "ClickHouse ch-2 stopped", "ClickHouseReplicasInReadOnly")
	case "replica-start":
		if err := env.ClickHouse[1].Start(ctx); err != nil {
			return "", err
		}
		return d.resolve(ctx, "replica-stop", "ClickHouse ch-2 started")
	case "heal":
		d.heal(ctx)
		return "healed: every server runs, every demo alert resolved", nil
	case "status":
		d.mu.Lock()
		var b []string
		for f := range d.broken {
			b = append(b, f)
		}
		d.mu.Unlock()
		sort.Strings(b)
		if len(b) == 0 {
			return "nothing broken", nil
		}
		return "broken: " + strings.Join(b, ", "), nil
	}
	var names []string
	for _, c := range demoCommands {
		names = append(names, c.name)
	}
	return "", fmt.Errorf("unknown command (known: %s)", strings.Join(names, ", "))
}

// fire records the fault and posts its alert to Alertmanager.
func (d *demo) fire(ctx context.Context, fault, what, alertname string) (string, error) {
	d.mu.Lock()
	d.broken[fault] = true
	d.alerts[fault] = append(d.alerts[fault], alertname)
	d.mu.Unlock()
	err := d.h.env.Alertmanager.PostAlerts(ctx, []testenv.PostableAlert{demoAlert(alertname, time.Time{})})
	if err != nil {
		return "", err
	}
	return what + "; alert " + alertname + " posted to Alertmanager (group_wait 1s), chmedic diagnoses the live cluster", nil
}

// resolve resolves the alerts fired for fault.
func (d *demo) resolve(ctx context.Context, fault, what string) (string, error) {
	d.mu.Lock()
	names := d.alerts[fault]
	delete(d.alerts, fault)
	delete(d.broken, fault)
	d.mu.Unlock()
	var alerts []testenv.PostableAlert
	for _, n := range names {
		alerts = append(alerts, demoAlert(n, time.Now()))
	}
	if len(alerts) > 0 {
		if err := d.h.env.Alertmanager.PostAlerts(ctx, alerts); err != nil {
			return "", err
		}
		what += "; resolved " + strings.Join(names, ", ")
	}
	return what, nil
}

func (d *demo) heal(ctx context.Context) {
	env := d.h.env
	if env.ZooKeeper.Paused() {
		_ = env.ZooKeeper.Resume()
	}
	if !env.ZooKeeper.Running() {
		_ = env.ZooKeeper.Start(ctx)
	}
	for _, c := range env.ClickHouse {
		if !c.Running() {
			_ = c.Start(ctx)
		}
	}
	for _, f := range []string{"zk-pause", "zk-stop", "replica-stop", "ddl-storm"} {
		_, _ = d.resolve(ctx, f, "")
	}
}

func demoAlert(alertname string, endsAt time.Time) testenv.PostableAlert {
	return testenv.PostableAlert{
		Labels:      map[string]string{"alertname": alertname, "cluster": benchCluster, "severity": "critical"},
		Annotations: map[string]string{"summary": "demo: " + alertname, "description": "fired by chmedic-bench demo"},
		EndsAt:      endsAt,
	}
}

// ddlStorm runs n CREATE and n DROP TABLE statements on ch-1 (the
// ddl_storm probe reads them from system.query_log).
func ddlStorm(ctx context.Context, env *testenv.Env, n int) (int, error) {
	c := env.ClickHouse[0]
	done := 0
	for i := range n {
		t := fmt.Sprintf("%s.demo_storm_%d", testenv.Database, i)
		for _, q := range []string{"CREATE TABLE IF NOT EXISTS " + t + " (x UInt8) ENGINE = Memory", "DROP TABLE IF EXISTS " + t} {
			if _, err := c.Query(ctx, q); err != nil {
				return done, err
			}
			done++
		}
	}
	_, _ = c.Query(ctx, "SYSTEM FLUSH LOGS")
	return done, nil
}

// printSlack prints every message the fake receives from chmedic, as text.
func (d *demo) printSlack(ctx context.Context) {
	seen := 0
	for ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
		calls := d.h.slack.Calls()
		for _, c := range calls[seen:] {
			switch c.Method {
			case "chat.postMessage", "chat.update":
			default:
				continue
			}
			head := "new message"
			switch {
			case c.Method == "chat.update":
				head = "message updated"
			case c.Params.Get("thread_ts") != "":
				head = "thread reply"
			}
			status := ""
			if c.Status != http.StatusOK || !strings.Contains(string(c.Response), `"ok":true`) {
				status = fmt.Sprintf(" (refused: %d %s)", c.Status, strings.TrimSpace(string(c.Response)))
			}
			fmt.Fprintf(d.out, "\n──── Slack %s %s in %s%s ────\n", c.Time.Format("15:04:05.000"), head, c.Params.Get("channel"), status)
			text := blocksText(c.Params.Get("blocks"))
			if text == "" {
				text = c.Params.Get("text")
			}
			fmt.Fprintln(d.out, plainMrkdwn(text))
		}
		seen = len(calls)
	}
}

// blocksText renders Block Kit blocks as plain text: headers, sections and
// their fields, context lines, buttons.
func blocksText(raw string) string {
	if raw == "" {
		return ""
	}
	var blocks []map[string]json.RawMessage
	if json.Unmarshal([]byte(raw), &blocks) != nil {
		return ""
	}
	textOf := func(r json.RawMessage) string {
		var t struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(r, &t)
		return t.Text
	}
	var b strings.Builder
	for _, blk := range blocks {
		var typ string
		_ = json.Unmarshal(blk["type"], &typ)
		switch typ {
		case "header":
			fmt.Fprintf(&b, "# %s\n", textOf(blk["text"]))
		case "section":
			if t := textOf(blk["text"]); t != "" {
				fmt.Fprintln(&b, t)
			}
			var fields []json.RawMessage
			_ = json.Unmarshal(blk["fields"], &fields)
			for _, f := range fields {
				fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(textOf(f), "\n", " "))
			}
		case "context":
			var els []json.RawMessage
			_ = json.Unmarshal(blk["elements"], &els)
			var parts []string
			for _, e := range els {
				if t := textOf(e); t != "" {
					parts = append(parts, t)
				}
			}
			fmt.Fprintf(&b, "  (%s)\n", strings.Join(parts, " · "))
		case "divider":
			b.WriteString("  ---\n")
		case "actions":
			var els []struct {
				Text struct {
					Text string `json:"text"`
				} `json:"text"`
			}
			_ = json.Unmarshal(blk["elements"], &els)
			var parts []string
			for _, e := range els {
				parts = append(parts, "["+e.Text.Text+"]")
			}
			fmt.Fprintf(&b, "  %s\n", strings.Join(parts, " "))
		case "rich_text":
			fmt.Fprintf(&b, "%s\n", richText(blk))
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

var (
	slackDate = regexp.MustCompile(`<!date\^[0-9]+\^[^|>]*\|([^>]*)>`)
	slackLink = regexp.MustCompile(`<(https?://[^|>]*)\|([^>]*)>`)
)

// plainMrkdwn replaces Slack's date tokens by their fallback text and
// links by "text (url)".
func plainMrkdwn(s string) string {
	s = slackDate.ReplaceAllString(s, "$1")
	return slackLink.ReplaceAllString(s, "$2 ($1)")
}

// richText flattens a rich_text block's text elements.
func richText(blk map[string]json.RawMessage) string {
	var sb strings.Builder
	var walk func(json.RawMessage)
	walk = func(r json.RawMessage) {
		var node struct {
			Text     string            `json:"text"`
			Elements []json.RawMessage `json:"elements"`
		}
		if json.Unmarshal(r, &node) != nil {
			return
		}
		sb.WriteString(node.Text)
		for _, e := range node.Elements {
			walk(e)
		}
	}
	for _, e := range func() []json.RawMessage {
		var els []json.RawMessage
		_ = json.Unmarshal(blk["elements"], &els)
		return els
	}() {
		walk(e)
		sb.WriteString("\n")
	}
	return strings.TrimRight(sb.String(), "\n")
}
