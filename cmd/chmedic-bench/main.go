// Command chmedic-bench measures chmedic on this machine against the real
// test environment (internal/testenv: two ClickHouse 18.16 replicas,
// ZooKeeper 3.8, Alertmanager 0.25), the Slack fake and the chmedic binary
// built with go build and run out of process, as Alertmanager reaches it.
// Every scenario is bounded in time and load, on loopback, and stops by
// itself; the results are one Markdown table (--json: JSON).
//
//	go run ./cmd/chmedic-bench [--json] [--quick] [--outage 30s] [--only ingest,side,storm,faults,outage,actions]
//	go run ./cmd/chmedic-bench demo [zk-pause|zk-resume|zk-stop|zk-start|ddl-storm|replica-stop|replica-start|status]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// options of a bench run.
type options struct {
	json        bool
	only        map[string]bool
	senders     int
	ingest      time.Duration
	sideN       int
	foldN       int
	stormGroups int
	stormSend   time.Duration
	stormWait   time.Duration
	outage      time.Duration
	chmedicBin  string
}

var scenarioNames = []string{"ingest", "side", "storm", "faults", "outage", "actions"}

// bench is one run: the harness, the options and the rows gathered.
type bench struct {
	h    *harness
	opts options
	rows []Row
	logf func(string, ...any)
}

func (b *bench) add(r Row) { b.rows = append(b.rows, r) }

// fail records a scenario that could not run as a row, and logs it.
func (b *bench) fail(scenario string, err error) {
	b.logf("%s: %v", scenario, err)
	msg := strings.SplitN(err.Error(), "\n", 2)[0]
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	b.add(Row{Scenario: scenario, Figure: "failed to run", Value: math.NaN(), Text: msg})
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "demo" {
		os.Exit(demoMain(os.Args[2:]))
	}
	os.Exit(benchMain(os.Args[1:], os.Stdout, os.Stderr))
}

func benchMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chmedic-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.BoolVar(&o.json, "json", false, "print JSON instead of the Markdown table")
	only := fs.String("only", strings.Join(scenarioNames, ","), "scenarios to run: "+strings.Join(scenarioNames, ","))
	quick := fs.Bool("quick", false, "a smaller run (fewer alerts, shorter outage) for trying the bench out")
	fs.IntVar(&o.senders, "senders", 32, "concurrent senders of the ingest scenario")
	fs.DurationVar(&o.ingest, "ingest-duration", 4*time.Second, "how long each ingest load runs")
	fs.IntVar(&o.sideN, "side-alerts", 20, "alerts of the side-by-side scenario without folding (1 / 1.5 s)")
	fs.IntVar(&o.foldN, "fold-groups", 20, "groups of the side-by-side scenario with folding (in 10 s)")
	fs.IntVar(&o.stormGroups, "storm-groups", 1000, "groups of the storm (10 alerts each)")
	fs.DurationVar(&o.stormSend, "storm-send", 9*time.Second, "the storm's groups are sent evenly within this")
	fs.DurationVar(&o.stormWait, "storm-wait", 60*time.Second, "bound on waiting for the storm to be processed and reflected")
	fs.DurationVar(&o.outage, "outage", 30*time.Second, "how long Slack answers 503 in the outage scenario")
	fs.StringVar(&o.chmedicBin, "chmedic", "", "chmedic binary to measure (default: go build ./cmd/chmedic)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *quick {
		o.ingest, o.sideN, o.foldN, o.stormGroups, o.stormSend, o.stormWait = 2*time.Second, 4, 6, 100, 2*time.Second, 20*time.Second
		if !flagSet(fs, "outage") {
			o.outage = 6 * time.Second
		}
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !contains(scenarioNames, s) {
			fmt.Fprintf(stderr, "chmedic-bench: unknown scenario %q (known: %s)\n", s, strings.Join(scenarioNames, ","))
			return 2
		}
		o.only[s] = true
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%s chmedic-bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, o, nil, logf)
	if err != nil {
		fmt.Fprintf(stderr, "chmedic-bench: %v\n", err)
		return 1
	}
	if o.json {
		err = WriteJSON(stdout, res)
	} else {
		err = WriteMarkdown(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "chmedic-bench: %v\n", err)
		return 1
	}
	return 0
}

// run starts the harness (on env when given) and runs the scenarios chosen.
func run(ctx context.Context, o options, h *harness, logf func(string, ...any)) (Results, error) {
	started := time.Now()
	res := Results{Machine: machine(), Commit: commit(), Started: started}
	if h == nil {
		var err error
		h, err = newHarness(ctx, nil, o.chmedicBin, logf)
		if err != nil {
			return res, err
		}
		defer h.close()
	}
	b := &bench{h: h, opts: o, logf: logf}
	for _, s := range []struct {
		name string
		run  func(*bench, context.Context)
	}{
		{"ingest", (*bench).scenarioIngest},
		{"side", (*bench).scenarioSide},
		{"storm", (*bench).scenarioStorm},
		{"faults", (*bench).scenarioFaults},
		{"outage", (*bench).scenarioOutage},
		{"actions", (*bench).scenarioActions},
	} {
		if !o.only[s.name] {
			continue
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		t0 := time.Now()
		logf("scenario %s", s.name)
		s.run(b, ctx)
		logf("scenario %s done in %s", s.name, time.Since(t0).Round(time.Millisecond))
	}
	res.Rows = b.rows
	res.Elapsed = time.Since(started).Round(time.Second).String()
	return res, nil
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// machine describes this machine: cores, CPU model, memory, kernel.
func machine() string {
	model := ""
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.1f GiB RAM", float64(kb)/(1<<20))
		}
	}
	s := fmt.Sprintf("%d cores", runtime.NumCPU())
	if model != "" {
		s += " (" + model + ")"
	}
	return s + mem + ", " + runtime.GOOS + "/" + runtime.GOARCH + ", " + runtime.Version()
}

// commit is the repository's HEAD, with "+dirty" when the tree has changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += "+dirty"
	}
	return c
}

var errUsage = errors.New("usage")
