package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite" // the store's driver, to count what it holds

	"github.com/chmedic/chmedic/internal/slackfake"
	"github.com/chmedic/chmedic/internal/testenv"
)

// Channels the bench's chmedic posts to.
const (
	defChannel   = "C0BENCHDEF" // slack.channel
	amChannel    = "C0AMSLACK1" // Alertmanager's own slack_configs
	requester    = "U0BENCHREQ"
	approver     = "U0BENCHAPP"
	benchCluster = "chmedic_test" // the cluster label of the bench cluster's alerts
)

// harness is the running environment of one bench or demo run: the real
// servers, the Slack fake, a hung server, and the chmedic binary.
type harness struct {
	env   *testenv.Env
	slack *slackfake.Server
	hung  *testenv.HungServer
	bin   string // the chmedic binary
	dir   string // scratch directory of this run
	logf  func(format string, args ...any)
	// ownEnv: the harness started env and closes it.
	ownEnv bool
	amHook string // incoming-webhook URL for Alertmanager's slack_configs
}

// buildChmedic builds ./cmd/chmedic into dir with go build: the bench
// measures the real binary, out of process, as Alertmanager would reach it.
func buildChmedic(ctx context.Context, dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "chmedic")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/chmedic")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/chmedic: %w\n%s", err, out)
	}
	return bin, nil
}

// moduleRoot finds the directory holding go.mod, from the working directory up.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the chmedic module: run from the repository")
	}
	return filepath.Dir(mod), nil
}

// newHarness starts what a run needs. env may be given (a test's shared
// environment); else it is started here and closed by close.
func newHarness(ctx context.Context, env *testenv.Env, bin string, logf func(string, ...any)) (_ *harness, err error) {
	dir, err := os.MkdirTemp("", "chmedic-bench-")
	if err != nil {
		return nil, err
	}
	h := &harness{env: env, dir: dir, logf: logf, bin: bin}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	if h.bin == "" {
		t0 := time.Now()
		if h.bin, err = buildChmedic(ctx, dir); err != nil {
			return h, err
		}
		logf("built chmedic in %s", time.Since(t0).Round(time.Millisecond))
	}
	if h.env == nil {
		if err := testenv.Available(); err != nil {
			return h, fmt.Errorf("%w (run scripts/install-test-deps.sh as root)", err)
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		h.env, err = testenv.Start(sctx, testenv.Options{})
		if err != nil {
			return h, err
		}
		h.ownEnv = true
		logf("environment (ZooKeeper, 2 ClickHouse replicas, Alertmanager) ready in %s", h.env.StartupTime.Round(time.Millisecond))
	}
	h.slack = slackfake.Start(slackfake.Options{})
	h.amHook = h.slack.IncomingWebhookURL(amChannel)
	if h.hung, err = testenv.StartHungServer(); err != nil {
		return h, err
	}
	for name, secret := range map[string]string{"ch-password": h.env.ProbePassword, "admin-password": h.env.AdminPassword, "slack-token": slackfake.DefaultToken} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(secret), 0o600); err != nil {
			return h, err
		}
	}
	return h, nil
}

func (h *harness) close() {
	if h.slack != nil {
		h.slack.Close()
	}
	if h.hung != nil {
		h.hung.Close()
	}
	if h.ownEnv && h.env != nil {
		if err := h.env.Close(); err != nil {
			h.logf("close the environment: %v", err)
		}
	}
	if os.Getenv("CHMEDIC_BENCH_KEEP") == "1" {
		h.logf("CHMEDIC_BENCH_KEEP=1: kept %s (configs, stores, chmedic logs)", h.dir)
		return
	}
	_ = os.RemoveAll(h.dir)
}

// chOptions shape one chmedic's config.
type chOptions struct {
	StormThreshold int    // slack.storm_threshold; 0: the default (3)
	CacheTTL       string // diagnosis.cache_ttl; "": the default (15s)
	Budget         string // diagnosis.budget; "": 5s
	LogLevel       string // "": info
	QueueSize      int    // webhook.queue_size; 0: the default (256)
}

// budget is the diagnosis budget the bench configures by default.
const defaultBudget = 5 * time.Second

// config writes a chmedic config for dir and returns its path. Each
// chmedic posts to channels of its own: two stores posting into one channel
// would see each other's messages when they look one up (see the README's
// Results).
func (h *harness) config(dir, listen, chChannel, hungChannel string, o chOptions) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "listen_address: %s\nshutdown_timeout: 5s\n", listen)
	fmt.Fprintf(&b, "log: {level: %s, format: json}\nstore: {path: chmedic.db}\n", cmpStr(o.LogLevel, "info"))
	if o.QueueSize > 0 {
		fmt.Fprintf(&b, "webhook: {queue_size: %d}\n", o.QueueSize)
	}
	b.WriteString("diagnosis:\n  probe_timeout: 2s\n")
	fmt.Fprintf(&b, "  budget: %s\n", cmpStr(o.Budget, defaultBudget.String()))
	if o.CacheTTL != "" {
		fmt.Fprintf(&b, "  cache_ttl: %s\n", o.CacheTTL)
	}
	b.WriteString("clusters:\n")
	fmt.Fprintf(&b, "  - name: bench\n    match: ['cluster=%q']\n    slack_channel: %s\n", benchCluster, chChannel)
	fmt.Fprintf(&b, "    clickhouse:\n      user: %s\n      password_file: %s\n      nodes:\n", h.env.ProbeUser, filepath.Join(h.dir, "ch-password"))
	for _, c := range h.env.ClickHouse {
		fmt.Fprintf(&b, "        - {name: %s, address: %q, replica: %s}\n", c.Name, c.Addr(), c.Replica)
	}
	fmt.Fprintf(&b, "    keeper:\n      nodes: [{name: zk-1, address: %q}]\n", h.env.ZooKeeper.Addr)
	fmt.Fprintf(&b, "    actions:\n      clickhouse: {user: %s, password_file: %s}\n", h.env.AdminUser, filepath.Join(h.dir, "admin-password"))
	fmt.Fprintf(&b, "      collect_logs:\n        path: '%s/{{.Name}}/clickhouse-server.log'\n        keeper_path: '%s'\n        upload: true\n",
		h.env.Dir, h.env.ZooKeeper.LogPath)
	fmt.Fprintf(&b, "  - name: hung\n    match: ['cluster=\"hung\"']\n    slack_channel: %s\n", hungChannel)
	fmt.Fprintf(&b, "    clickhouse:\n      user: %s\n      password_file: %s\n      nodes:\n", h.env.ProbeUser, filepath.Join(h.dir, "ch-password"))
	fmt.Fprintf(&b, "        - {name: ch-1, address: %q}\n        - {name: ch-hung, address: %q}\n", h.env.ClickHouse[0].Addr(), h.hung.Addr)
	fmt.Fprintf(&b, "    keeper:\n      nodes: [{name: zk-1, address: %q}]\n", h.env.ZooKeeper.Addr)
	fmt.Fprintf(&b, "slack:\n  bot_token_file: %s\n  channel: %s\n  api_url: %s\n", filepath.Join(h.dir, "slack-token"), defChannel, h.slack.URL())
	if o.StormThreshold > 0 {
		fmt.Fprintf(&b, "  storm_threshold: %d\n", o.StormThreshold)
	}
	fmt.Fprintf(&b, "approvals:\n  policies:\n    collect_logs: {requesters: [\"*\"], approvers: [%s]}\n", approver)
	path := filepath.Join(dir, "chmedic.yaml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

func cmpStr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// chmedicProc is one chmedic serve process.
type chmedicProc struct {
	h       *harness
	dir     string // its config and store
	cfgPath string
	addr    string
	// channel is where the "bench" cluster's messages go, hungChannel the
	// "hung" cluster's.
	channel, hungChannel string
	cmd                  *exec.Cmd
	logPath              string
	exited               chan struct{}
}

// startChmedic writes a config in a new directory named name and starts
// chmedic serve on it.
func (h *harness) startChmedic(ctx context.Context, name string, o chOptions) (*chmedicProc, error) {
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ch := fmt.Sprintf("C0%08X", uint32(hash(dir)))
	hung := fmt.Sprintf("C1%08X", uint32(hash(dir)))
	cfg, err := h.config(dir, addr, ch, hung, o)
	if err != nil {
		return nil, err
	}
	p := &chmedicProc{h: h, dir: dir, cfgPath: cfg, addr: addr, logPath: filepath.Join(dir, "chmedic.log"), channel: ch, hungChannel: hung}
	return p, p.start(ctx)
}

// start (re)starts the process on its directory and waits for /readyz.
func (p *chmedicProc) start(ctx context.Context) error {
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(p.h.bin, "serve", "--config", p.cfgPath)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start chmedic: %w", err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(done chan struct{}) { cmd.Wait(); close(done) }(p.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("chmedic exited at start:\n%s", tail(p.logPath, 20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chmedic not ready within 20s:\n%s", tail(p.logPath, 20))
		}
	}
}

// stop sends sig and waits for the exit (SIGKILL after 15 s).
func (p *chmedicProc) stop(sig syscall.Signal) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *chmedicProc) pid() int { return p.cmd.Process.Pid }

// signal sends sig to the process (SIGSTOP / SIGCONT around a peer's turn).
func (p *chmedicProc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

func (p *chmedicProc) webhookURL() string { return "http://" + p.addr + "/webhook" }

// peakRSS is the process's VmHWM in MiB (NaN when unreadable).
func peakRSS(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nanValue
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseFloat(f[0], 64)
				if err == nil {
					return kb / 1024
				}
			}
		}
	}
	return nanValue
}

// metrics scrapes /metrics: each sample by its full series name
// (`name{labels}`), and each metric name summed over its series.
func (p *chmedicProc) metrics() (map[string]float64, error) {
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body)
}

func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		series := line[:i]
		out[series] = v
		if j := strings.IndexByte(series, '{'); j >= 0 {
			out[series[:j]] += v
		}
	}
	return out, sc.Err()
}

// openStore opens the process's SQLite store read-only.
func (p *chmedicProc) openStore() (*sql.DB, error) {
	return sql.Open("sqlite", "file:"+filepath.Join(p.dir, "chmedic.db")+"?mode=ro&_pragma=busy_timeout(5000)")
}

// storeInt runs a one-number query on the store.
func (p *chmedicProc) storeInt(query string, args ...any) (int64, error) {
	db, err := p.openStore()
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRow(query, args...).Scan(&n)
	return n, err
}

// cli runs a chmedic command on the process's config.
func (p *chmedicProc) cli(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, p.h.bin, args...)
	cmd.Dir = p.dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("chmedic %s: %w: %s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// slackCall is one successful call to the fake, with its text.
type slackCall struct {
	Method  string
	Channel string
	Thread  string
	Time    time.Time
	Text    string // text, blocks and attachments as sent
}

// slackCalls returns the calls the fake answered with success since since.
func (h *harness) slackCalls(since time.Time) []slackCall {
	var out []slackCall
	for _, c := range h.slack.Calls() {
		if c.Time.Before(since) || c.Status != http.StatusOK {
			continue
		}
		if c.Method != slackfake.IncomingWebhookMethod {
			var ok struct {
				OK bool `json:"ok"`
			}
			if json.Unmarshal(c.Response, &ok) != nil || !ok.OK {
				continue
			}
		}
		out = append(out, slackCall{
			Method: c.Method, Channel: c.Params.Get("channel"), Thread: c.Params.Get("thread_ts"), Time: c.Time,
			Text: c.Params.Get("text") + "\n" + c.Params.Get("blocks") + "\n" + c.Params.Get("attachments"),
		})
	}
	return out
}

// firstNaming returns when the first call matching keep named token.
func firstNaming(calls []slackCall, token string, keep func(slackCall) bool) (time.Time, bool) {
	for _, c := range calls {
		if (keep == nil || keep(c)) && strings.Contains(c.Text, token) {
			return c.Time, true
		}
	}
	return time.Time{}, false
}

// waitUntil polls cond every 20 ms until it holds or d passes.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// poster sends webhook payloads to chmedic over keep-alive connections.
type poster struct {
	client *http.Client
	once   sync.Once
}

func newPoster(conns int) *poster {
	return &poster{client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}}
}

// post posts body and returns the status and the answer's "status" field.
func (p *poster) post(ctx context.Context, url string, body []byte) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var st struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(data, &st)
	return resp.StatusCode, st.Status, nil
}
