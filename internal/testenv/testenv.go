package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Names and sizes fixed by the environment.
const (
	// ClusterName is the remote_servers cluster (one shard, every replica).
	ClusterName = "chmedic_test"
	// Database is created at start on every replica.
	Database = "chmedic_test"
	// EventsTable is a ReplicatedMergeTree table on every replica, at
	// /clickhouse/tables/{shard}/chmedic_test/events, columns
	// (d Date, id UInt64, message String), PARTITION BY toYYYYMM(d).
	EventsTable = "chmedic_test.events"
	// SeedRows is how many rows EventsTable holds at start, on every replica.
	SeedRows = 1000
	// Shard is the {shard} macro of every replica.
	Shard = "01"

	DefaultAdminUser     = "chmedic_admin"
	DefaultAdminPassword = "admin-secret"
	DefaultProbeUser     = "chmedic_probe"
	DefaultProbePassword = "probe-secret"
)

// Environment variables read by this package.
const (
	// EnvRequire, set to 1, turns a skip for missing servers into a failure.
	EnvRequire = "CHMEDIC_REQUIRE_INTEGRATION"
	// EnvKeep, set to 1, keeps the environment's directory after Close.
	EnvKeep = "CHMEDIC_KEEP_TESTENV"
)

// Options configure Start. The zero value is the default environment.
type Options struct {
	// Replicas is the number of ClickHouse servers, all replicas of one
	// shard; default 2.
	Replicas int
	// ZooKeeperSessionTimeout is ClickHouse's <zookeeper><session_timeout_ms>;
	// default 6s, so that faults show within seconds.
	ZooKeeperSessionTimeout time.Duration
	// ZooKeeperWhitelist is ZooKeeper's 4lw.commands.whitelist; default
	// "*" (every word). "srvr" is ZooKeeper 3.5+'s own default.
	ZooKeeperWhitelist string
	// NoAlertmanager leaves Alertmanager out (Env.Alertmanager is nil).
	NoAlertmanager bool
	// PerNodeUsersDir gives every server its own users.d directory (see
	// Env.UsersDDir): each reads the shared users.xml through a symlink in
	// its own directory, and ClickHouse merges the users.d beside the path
	// it was given.
	PerNodeUsersDir bool
	// LogQueries sets log_queries in every settings profile; nil means on.
	// Turn it off with LogQueries: new(false).
	LogQueries *bool
	// Logf, if set, receives progress and timings while the environment
	// starts and stops (t.Logf fits, for an Env that the test closes).
	Logf func(format string, args ...any)
}

// Env is a running environment. Its fields are set by Start; do not change them.
type Env struct {
	Dir          string // everything lives here: configs, data, logs
	Cluster      string // the remote_servers cluster name, ClusterName
	ZooKeeper    *ZooKeeper
	ClickHouse   []*ClickHouse
	Alertmanager *Alertmanager // nil with Options.NoAlertmanager

	// UsersConfigPath is the users.xml every ClickHouse server reads (one
	// file for all). The servers re-read it by themselves within ~2 s of a
	// change; SetProfileSetting edits it and waits for that.
	UsersConfigPath string

	ProbeUser, ProbePassword string // readonly=2, log_queries=1; profile ProbeUser
	AdminUser, AdminPassword string // full rights; profile AdminUser

	// StartupTime is how long Start took, retries included.
	StartupTime time.Duration

	opts      Options
	users     *usersConfig
	client    *http.Client
	logMu     sync.Mutex
	startLog  []string
	closeOnce sync.Once
	closeErr  error
}

func (e *Env) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.logMu.Lock()
	e.startLog = append(e.startLog, msg)
	e.logMu.Unlock()
	if e.opts.Logf != nil {
		e.opts.Logf("testenv: %s", msg)
	}
}

// Start starts a fresh environment; the caller must Close it. It retries once
// when a port was taken between allocation and use.
func Start(ctx context.Context, opts Options) (*Env, error) {
	bins, err := findBinaries()
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 2
	}
	if opts.ZooKeeperSessionTimeout <= 0 {
		opts.ZooKeeperSessionTimeout = 6 * time.Second
	}
	t0 := time.Now()
	e, err := start(ctx, opts, bins)
	if errors.Is(err, errAddrInUse) {
		if opts.Logf != nil {
			opts.Logf("testenv: a port was taken, retrying once: %v", err)
		}
		e, err = start(ctx, opts, bins)
	}
	if err != nil {
		return nil, err
	}
	e.StartupTime = time.Since(t0)
	e.logf("environment ready in %s (dir %s)", e.StartupTime.Round(time.Millisecond), e.Dir)
	return e, nil
}

func start(ctx context.Context, opts Options, bins *binaries) (_ *Env, err error) {
	t0 := time.Now()
	removeStaleDirs()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	e := &Env{
		Dir:             dir,
		Cluster:         ClusterName,
		UsersConfigPath: filepath.Join(dir, "users.xml"),
		ProbeUser:       DefaultProbeUser,
		ProbePassword:   DefaultProbePassword,
		AdminUser:       DefaultAdminUser,
		AdminPassword:   DefaultAdminPassword,
		opts:            opts,
		client: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     2 * time.Second, // below ClickHouse's keep_alive_timeout of 3 s
		}},
	}
	defer func() {
		if err != nil {
			if cerr := e.Close(); cerr != nil {
				err = errors.Join(err, cerr)
			}
		}
	}()

	nPorts := 1 + 3*opts.Replicas
	if !opts.NoAlertmanager {
		nPorts++
	}
	ports, err := freePorts(nPorts)
	if err != nil {
		return e, fmt.Errorf("testenv: %w", err)
	}
	next := func() int { p := ports[0]; ports = ports[1:]; return p }

	// Users config, shared by every server.
	logQueries := "1"
	if opts.LogQueries != nil && !*opts.LogQueries {
		logQueries = "0"
	}
	e.users = &usersConfig{
		path: e.UsersConfigPath,
		profiles: []*profile{
			{name: "default", settings: []setting{{"log_queries", logQueries}, {"max_memory_usage", "4000000000"}, {"load_balancing", "random"}}},
			{name: e.AdminUser, settings: []setting{{"log_queries", logQueries}}},
			{name: e.ProbeUser, settings: []setting{{"readonly", "2"}, {"log_queries", logQueries}}},
		},
		users: []userEntry{
			{name: "default", password: "", profile: "default"},
			{name: e.AdminUser, password: e.AdminPassword, profile: e.AdminUser},
			{name: e.ProbeUser, password: e.ProbePassword, profile: e.ProbeUser},
		},
	}
	if err := e.users.write(); err != nil {
		return e, fmt.Errorf("testenv: write users config: %w", err)
	}

	zkDir := filepath.Join(dir, "zookeeper")
	if e.ZooKeeper, err = newZooKeeper(zkDir, next(), bins.java, bins.zkClasspath, opts.ZooKeeperWhitelist); err != nil {
		return e, fmt.Errorf("testenv: zookeeper config: %w", err)
	}
	for i := range opts.Replicas {
		name := fmt.Sprintf("ch-%d", i+1)
		chDir := filepath.Join(dir, name)
		c := &ClickHouse{
			Name: name, Host: "127.0.0.1",
			TCPPort: next(), HTTPPort: next(), InterserverPort: next(),
			Shard: Shard, Replica: name,
			Dir:           chDir,
			ConfigPath:    filepath.Join(chDir, "config.xml"),
			LogPath:       filepath.Join(chDir, "clickhouse-server.log"),
			ErrorLogPath:  filepath.Join(chDir, "clickhouse-server.err.log"),
			StdoutPath:    filepath.Join(chDir, "stdout.log"),
			adminUser:     e.AdminUser,
			adminPassword: e.AdminPassword,
			client:        e.client,
		}
		if err := os.MkdirAll(chDir, 0o755); err != nil {
			return e, fmt.Errorf("testenv: %w", err)
		}
		c.proc = &process{
			name:    "clickhouse " + name,
			path:    bins.clickhouse,
			args:    append(append([]string{}, bins.clickhouseArgs...), "--config-file="+c.ConfigPath),
			dir:     chDir,
			logPath: c.StdoutPath,
		}
		e.ClickHouse = append(e.ClickHouse, c)
	}
	for _, c := range e.ClickHouse {
		usersPath, err := e.nodeUsersConfig(c)
		if err != nil {
			return e, fmt.Errorf("testenv: %s users config: %w", c.Name, err)
		}
		if err := c.writeConfig(e.ClickHouse, e.Cluster, usersPath, e.ZooKeeper.Addr, opts.ZooKeeperSessionTimeout); err != nil {
			return e, fmt.Errorf("testenv: %s config: %w", c.Name, err)
		}
	}
	if !opts.NoAlertmanager {
		if e.Alertmanager, err = newAlertmanager(filepath.Join(dir, "alertmanager"), next(), bins.alertmanager, e.client); err != nil {
			return e, fmt.Errorf("testenv: alertmanager config: %w", err)
		}
	}
	e.logf("configs written in %s", time.Since(t0).Round(time.Millisecond))

	// Start every server at once; ClickHouse connects to ZooKeeper lazily.
	type starter struct {
		name  string
		start func(context.Context) error
	}
	starters := []starter{{"zookeeper", e.ZooKeeper.Start}}
	for _, c := range e.ClickHouse {
		starters = append(starters, starter{c.Name, c.Start})
	}
	if e.Alertmanager != nil {
		starters = append(starters, starter{"alertmanager", e.Alertmanager.Start})
	}
	errs := make([]error, len(starters))
	var wg sync.WaitGroup
	for i, s := range starters {
		wg.Go(func() {
			t := time.Now()
			errs[i] = s.start(ctx)
			if errs[i] == nil {
				e.logf("%s ready in %s", s.name, time.Since(t).Round(time.Millisecond))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return e, fmt.Errorf("testenv: start servers (dir %s): %w", dir, err)
	}

	t1 := time.Now()
	if err := e.createSchema(ctx); err != nil {
		return e, err
	}
	e.logf("schema created and %d rows replicated in %s", SeedRows, time.Since(t1).Round(time.Millisecond))

	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := e.WaitHealthy(hctx); err != nil {
		return e, fmt.Errorf("testenv: environment not healthy after start: %w", err)
	}
	return e, nil
}

// createSchema creates Database and EventsTable on every replica, inserts
// SeedRows rows on the first and waits until every replica has them.
func (e *Env) createSchema(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ddl := []string{
		"CREATE DATABASE IF NOT EXISTS " + Database,
		"CREATE TABLE IF NOT EXISTS " + EventsTable + ` (d Date, id UInt64, message String)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/` + Database + `/events', '{replica}')
PARTITION BY toYYYYMM(d) ORDER BY (d, id)`,
	}
	for _, c := range e.ClickHouse {
		for _, q := range ddl {
			if _, err := c.Query(ctx, q); err != nil {
				return fmt.Errorf("testenv: create schema: %w", err)
			}
		}
	}
	insert := fmt.Sprintf(`INSERT INTO %s (d, id, message)
SELECT toDate('2024-01-01') + (number %% 31), number, concat('event-', toString(number)) FROM system.numbers LIMIT %d`, EventsTable, SeedRows)
	if _, err := e.ClickHouse[0].Query(ctx, insert); err != nil {
		return fmt.Errorf("testenv: seed rows: %w", err)
	}
	for _, c := range e.ClickHouse {
		if err := e.waitRows(ctx, c, SeedRows); err != nil {
			return err
		}
	}
	return nil
}

// waitRows polls until c holds want rows in EventsTable.
func (e *Env) waitRows(ctx context.Context, c *ClickHouse, want int64) error {
	var last string
	for {
		n, err := c.QueryInt(ctx, "SELECT count() FROM "+EventsTable)
		if err == nil && n == want {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d rows", n)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s: %s does not have %d rows (last: %s): %w", c.Name, EventsTable, want, last, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitHealthy waits until ZooKeeper serves (ruok → imok and srvr → Mode,
// as far as its whitelist allows) and every
// ClickHouse server runs with no read-only or session-expired replicated
// table and active_replicas == total_replicas everywhere. Without a deadline
// on ctx it gives up after 60 s. Its error says what was last wrong.
func (e *Env) WaitHealthy(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
	}
	for {
		err := e.healthy(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: not healthy: %w (%v)", err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Healthy checks once what WaitHealthy waits for.
func (e *Env) Healthy(ctx context.Context) error { return e.healthy(ctx) }

func (e *Env) healthy(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := e.ZooKeeper.serving(cctx); err != nil {
		return err
	}
	for _, c := range e.ClickHouse {
		if !c.Running() {
			return fmt.Errorf("clickhouse %s is not running", c.Name)
		}
		out, err := c.Query(cctx, `SELECT database, table, is_readonly, is_session_expired, active_replicas, total_replicas
FROM system.replicas WHERE is_readonly OR is_session_expired OR active_replicas != total_replicas`)
		if err != nil {
			return err
		}
		if out = strings.TrimSpace(out); out != "" {
			return fmt.Errorf("clickhouse %s: unhealthy replicas (database, table, is_readonly, is_session_expired, active_replicas, total_replicas): %s",
				c.Name, strings.ReplaceAll(out, "\n", "; "))
		}
	}
	return nil
}

// Close stops every server and removes Dir, unless CHMEDIC_KEEP_TESTENV=1:
// then the servers are stopped gracefully (complete logs) and Dir is kept
// and logged. Close is idempotent.
func (e *Env) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.close() })
	return e.closeErr
}

func (e *Env) close() error {
	t0 := time.Now()
	keep := os.Getenv(EnvKeep) == "1"
	grace := time.Duration(0) // SIGKILL: the data is thrown away
	if keep {
		grace = stopGrace
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*stopGrace)
	defer cancel()
	var errs []error
	if e.Alertmanager != nil && e.Alertmanager.proc != nil {
		errs = append(errs, e.Alertmanager.proc.stop(ctx, grace))
	}
	var wg sync.WaitGroup
	chErrs := make([]error, len(e.ClickHouse))
	for i, c := range e.ClickHouse {
		if c.proc == nil {
			continue
		}
		wg.Go(func() { chErrs[i] = c.proc.stop(ctx, grace) })
	}
	wg.Wait()
	errs = append(errs, chErrs...)
	if e.ZooKeeper != nil && e.ZooKeeper.proc != nil {
		errs = append(errs, e.ZooKeeper.proc.stop(ctx, grace))
	}
	if e.client != nil {
		e.client.CloseIdleConnections()
	}
	if keep {
		_ = os.Remove(filepath.Join(e.Dir, ownerFile))
		msg := fmt.Sprintf("testenv: %s=1: kept the environment in %s", EnvKeep, e.Dir)
		if e.opts.Logf != nil {
			e.opts.Logf("%s", msg)
		} else {
			fmt.Fprintln(os.Stderr, msg)
		}
	} else if e.Dir != "" {
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, fmt.Errorf("testenv: remove %s: %w", e.Dir, err))
		}
	}
	if e.opts.Logf != nil {
		e.opts.Logf("testenv: closed in %s", time.Since(t0).Round(time.Millisecond))
	}
	return errors.Join(errs...)
}

// Require skips tb with a clear message when the servers are missing, or in
// -short mode, unless CHMEDIC_REQUIRE_INTEGRATION=1, in which case missing
// servers fail the test instead (and -short is ignored).
func Require(tb testing.TB) {
	tb.Helper()
	required := os.Getenv(EnvRequire) == "1"
	err := Available()
	switch {
	case err != nil && required:
		tb.Fatalf("%v; %s=1 requires them: run scripts/install-test-deps.sh (as root) to install them", err, EnvRequire)
	case err != nil:
		tb.Skipf("skipping integration test: %v; run scripts/install-test-deps.sh (as root) to install them, or set %s=1 to fail instead", err, EnvRequire)
	case testing.Short() && !required:
		tb.Skip("skipping integration test in -short mode")
	}
}

var shared struct {
	once   sync.Once
	mu     sync.Mutex
	env    *Env
	err    error
	logged bool
}

// Shared returns the package-wide environment, starting it on first use; it
// calls Require first. Tests of a package share it, and Main closes it. A test
// that breaks it must repair it (e.g. restart ZooKeeper, then WaitHealthy).
func Shared(tb testing.TB) *Env {
	tb.Helper()
	Require(tb)
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		shared.env, shared.err = Start(ctx, Options{})
	})
	if shared.err != nil {
		tb.Fatalf("testenv: start the shared environment: %v", shared.err)
	}
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.logged {
		shared.logged = true
		for _, l := range shared.env.startLog {
			tb.Logf("testenv: %s", l)
		}
	}
	return shared.env
}

// Main is for TestMain: it runs m, then closes the package's shared
// environment if one was started, and returns the exit code:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	shared.mu.Lock()
	env := shared.env
	shared.env = nil
	shared.mu.Unlock()
	if env != nil {
		if err := env.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: close the shared environment: %v\n", err)
		}
	}
	return code
}

const (
	dirPrefix = "chmedic-testenv-"
	ownerFile = "owner.pid" // the pid of the test binary that made the directory
)

// removeStaleDirs removes environment directories left in the temp dir by
// test binaries that died without Close (their servers died with them), and
// not kept on purpose.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // kept (CHMEDIC_KEEP_TESTENV=1 removes the file), or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}
