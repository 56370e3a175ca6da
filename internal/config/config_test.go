package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// y joins lines into a YAML document, so that line numbers in the tests can
// be read off the argument list.
func y(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// minimal is the smallest valid configuration body (10 lines).
var minimal = y(
	"clusters:",
	"  - name: prod",
	"    clickhouse:",
	"      nodes:",
	"        - name: ch-1",
	"          address: 10.0.0.1:9000",
	"    keeper:",
	"      nodes:",
	"        - name: zk-1",
	"          address: 10.0.0.5:2181",
)

func fakeEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func fakeFiles(m map[string]string) func(string) ([]byte, error) {
	return func(p string) ([]byte, error) {
		v, ok := m[p]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
		}
		return []byte(v), nil
	}
}

func mustParse(t *testing.T, src string, env map[string]string, files map[string]string) *Config {
	t.Helper()
	c, err := Parse("chmedic.yaml", []byte(src), fakeEnv(env), fakeFiles(files))
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v", err)
	}
	return c
}

func errLines(t *testing.T, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	for _, e := range es {
		if e.File != "chmedic.yaml" {
			t.Errorf("FieldError.File = %q", e.File)
		}
	}
	return strings.Split(err.Error(), "\n")
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, minimal, nil, nil)
	want := defaults()
	want.File = "chmedic.yaml"
	want.Diagnosis.MaxExecutionTime = 2 * time.Second
	got := *c
	got.Clusters = nil
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, *want)
	}
	// Spot-check the documented defaults explicitly too.
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen_address", c.ListenAddress, "127.0.0.1:9135"},
		{"shutdown_timeout", c.ShutdownTimeout, 15 * time.Second},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"store.path", c.Store.Path, "chmedic.db"},
		{"webhook.max_body_bytes", c.Webhook.MaxBodyBytes, 4 * MiB},
		{"webhook.queue_size", c.Webhook.QueueSize, 256},
		{"webhook.workers", c.Webhook.Workers, 4},
		{"webhook.dedup_window", c.Webhook.DedupWindow, 5 * time.Minute},
		{"webhook.auth enabled", c.Webhook.Auth.Enabled(), false},
		{"alertmanager.url", c.Alertmanager.URL, ""},
		{"diagnosis.probe_timeout", c.Diagnosis.ProbeTimeout, 2 * time.Second},
		{"diagnosis.budget", c.Diagnosis.Budget, 5 * time.Second},
		{"diagnosis.max_concurrent_per_node", c.Diagnosis.MaxConcurrentPerNode, 2},
		{"diagnosis.cache_ttl", c.Diagnosis.CacheTTL, 15 * time.Second},
		{"diagnosis.max_execution_time", c.Diagnosis.MaxExecutionTime, 2 * time.Second},
		{"diagnosis.ddl_storm_window", c.Diagnosis.DDLStormWindow, 10 * time.Minute},
		{"keeper_latency_warn", c.Diagnosis.Thresholds.KeeperLatencyWarn, 10 * time.Millisecond},
		{"keeper_latency_crit", c.Diagnosis.Thresholds.KeeperLatencyCrit, 100 * time.Millisecond},
		{"replica_delay_warn", c.Diagnosis.Thresholds.ReplicaDelayWarn, 5 * time.Minute},
		{"replication_queue_tries_warn", c.Diagnosis.Thresholds.ReplicationQueueTriesWarn, 5},
		{"replication_queue_tries_crit", c.Diagnosis.Thresholds.ReplicationQueueTriesCrit, 50},
		{"ddl_stuck_after", c.Diagnosis.Thresholds.DDLStuckAfter, 5 * time.Minute},
		{"ddl_storm_count", c.Diagnosis.Thresholds.DDLStormCount, 50},
		{"outstanding_requests_warn", c.Diagnosis.Thresholds.OutstandingRequestsWarn, 10},
		{"outstanding_requests_crit", c.Diagnosis.Thresholds.OutstandingRequestsCrit, 100},
		{"connections_ratio_warn", c.Diagnosis.Thresholds.ConnectionsRatioWarn, 0.8},
		{"fd_ratio_warn", c.Diagnosis.Thresholds.FDRatioWarn, 0.8},
		{"znode_count_warn", c.Diagnosis.Thresholds.ZnodeCountWarn, 1000000},
		{"replicated_tables_warn", c.Diagnosis.Thresholds.ReplicatedTablesWarn, 1000},
		{"slack enabled", c.Slack.Enabled(), false},
		{"slack.api_url", c.Slack.APIURL, "https://slack.com/api/"},
		{"slack.storm_threshold", c.Slack.StormThreshold, 3},
		{"slack.storm_window", c.Slack.StormWindow, 2 * time.Minute},
		{"playbooks.dir", c.Playbooks.Dir, ""},
		{"clickhouse.user", c.Clusters[0].ClickHouse.User, "default"},
		{"clickhouse.database", c.Clusters[0].ClickHouse.Database, "default"},
		{"clickhouse.secure", c.Clusters[0].ClickHouse.Secure, false},
		{"clickhouse.discover", c.Clusters[0].ClickHouse.Discover, false},
		{"node shard", c.Clusters[0].ClickHouse.Nodes[0].Shard, 1},
		{"node replica", c.Clusters[0].ClickHouse.Nodes[0].Replica, "ch-1"},
		{"keeper.kind", c.Clusters[0].Keeper.Kind, "zookeeper"},
		{"keeper.commands", c.Clusters[0].Keeper.Commands, []string{"ruok", "mntr", "srvr", "isro", "cons", "wchs", "dirs", "conf"}},
		{"default cluster", c.Clusters[0].IsDefault(), true},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestValues(t *testing.T) {
	src := y(
		"listen_address: ':8080'",
		"shutdown_timeout: 1h30m",
		"log: {level: debug, format: json}",
		"store: {path: /var/lib/chmedic/state.db}",
		"webhook:",
		"  max_body_bytes: 1048576",
		"  queue_size: 1_000",
		"  dedup_window: 0s",
		"diagnosis:",
		"  probe_timeout: 500ms",
		"  max_execution_time: 0s",
		"  thresholds: {connections_ratio_warn: 1, znode_count_warn: 2_000_000}",
		"slack:",
		"  api_url: http://127.0.0.1:8080/api",
		"playbooks: {dir: extra}",
	) + minimal
	c, err := Parse("/etc/chmedic/chmedic.yaml", []byte(src), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen_address", c.ListenAddress, ":8080"},
		{"shutdown_timeout", c.ShutdownTimeout, 90 * time.Minute},
		{"log", c.Log, Log{Level: "debug", Format: "json"}},
		{"slog level", c.Log.SlogLevel(), slog.LevelDebug},
		{"slog level warn", Log{Level: "warn"}.SlogLevel(), slog.LevelWarn},
		{"slog level error", Log{Level: "error"}.SlogLevel(), slog.LevelError},
		{"slog level info", Log{Level: "info"}.SlogLevel(), slog.LevelInfo},
		{"store.path (absolute kept)", c.Store.Path, "/var/lib/chmedic/state.db"},
		{"max_body_bytes", c.Webhook.MaxBodyBytes, MiB},
		{"queue_size", c.Webhook.QueueSize, 1000},
		{"dedup_window", c.Webhook.DedupWindow, time.Duration(0)},
		{"max_execution_time (0 → probe_timeout)", c.Diagnosis.MaxExecutionTime, 500 * time.Millisecond},
		{"connections_ratio_warn", c.Diagnosis.Thresholds.ConnectionsRatioWarn, 1.0},
		{"znode_count_warn", c.Diagnosis.Thresholds.ZnodeCountWarn, 2000000},
		{"fd_ratio_warn (untouched sibling keeps default)", c.Diagnosis.Thresholds.FDRatioWarn, 0.8},
		{"api_url gets /", c.Slack.APIURL, "http://127.0.0.1:8080/api/"},
		{"playbooks.dir relative to config", c.Playbooks.Dir, "/etc/chmedic/extra"},
		{"File", c.File, "/etc/chmedic/chmedic.yaml"},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
	c, err = Parse("/etc/chmedic/chmedic.yaml", []byte(minimal), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Path != "/etc/chmedic/chmedic.db" {
		t.Errorf("default store.path = %q, want it relative to the config dir", c.Store.Path)
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "123": 123, "4MiB": 4 * MiB, "4 MiB": 4 * MiB, "4mib": 4 * MiB, "512KiB": 512 * KiB,
		"1GiB": GiB, "2KB": 2000, "3MB": 3000000, "1GB": 1000000000, "10B": 10, "1_024": 1024,
	} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "4XB", "MiB", "99999999999999999999", "9999999999GiB"} {
		if _, err := ParseByteSize(in); err == nil {
			t.Errorf("ParseByteSize(%q): want error", in)
		}
	}
	for b, want := range map[ByteSize]string{0: "0", 1000: "1000", 1536: "1536", 3 * KiB: "3KiB", 4 * MiB: "4MiB", 2 * GiB: "2GiB"} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
	}
}

func TestSecretResolution(t *testing.T) {
	src := y(
		"webhook:",
		"  auth:",
		"    basic:",
		"      username: am",
		"      password_file: secrets/am-password",
		"clusters:",
		"  - name: prod",
		"    clickhouse:",
		"      password_env: CH_PASSWORD",
		`      nodes: [{name: a, address: "h:1"}]`,
		`    keeper: {nodes: [{name: z, address: "h:2"}]}`,
		"slack:",
		"  bot_token_file: /run/secrets/slack-token",
		"  signing_secret_env: SLACK_SIGNING",
		"  channel: '#ch'",
	)
	c, err := Parse("/etc/chmedic/chmedic.yaml", []byte(src),
		fakeEnv(map[string]string{"CH_PASSWORD": "ch-pw", "SLACK_SIGNING": "sign-me"}),
		fakeFiles(map[string]string{
			"/etc/chmedic/secrets/am-password": "am-pw\r\n",
			"/run/secrets/slack-token":         "xoxb-file-token\n\n",
		}))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []struct {
		name      string
		got, want string
	}{
		{"basic password (relative file, CRLF trimmed)", c.Webhook.Auth.Basic.Password.Value(), "am-pw"},
		{"clickhouse password (env)", c.Clusters[0].ClickHouse.Password.Value(), "ch-pw"},
		{"bot token (absolute file, newlines trimmed)", c.Slack.BotToken.Value(), "xoxb-file-token"},
		{"signing secret (env)", c.Slack.SigningSecret.Value(), "sign-me"},
	} {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if !c.Webhook.Auth.Enabled() || !c.Slack.Enabled() {
		t.Errorf("Enabled: auth %v, slack %v; want both true", c.Webhook.Auth.Enabled(), c.Slack.Enabled())
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("xoxb-from-disk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHMEDIC_TEST_BEARER", "bearer-from-env")
	src := y(
		"store: {path: data/state.db}",
		"webhook: {auth: {bearer_token_env: CHMEDIC_TEST_BEARER}}",
		"slack: {bot_token_file: token, channel: '#ch'}",
	) + minimal
	path := filepath.Join(dir, "chmedic.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Slack.BotToken.Value(); got != "xoxb-from-disk" {
		t.Errorf("bot token = %q", got)
	}
	if got := c.Webhook.Auth.BearerToken.Value(); got != "bearer-from-env" {
		t.Errorf("bearer token = %q", got)
	}
	if want := filepath.Join(dir, "data", "state.db"); c.Store.Path != want {
		t.Errorf("store.path = %q, want %q", c.Store.Path, want)
	}

	// Errors from Load name the file as given.
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(y("slack: {bot_token_file: nope, channel: '#ch'}")+minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	want := fmt.Sprintf("%s:1:25: slack.bot_token_file: cannot read secret file: open %s: no such file or directory", bad, filepath.Join(dir, "nope"))
	if err == nil || err.Error() != want {
		t.Errorf("Load(bad) error:\n got %v\nwant %s", err, want)
	}

	if _, err := Load(filepath.Join(dir, "absent.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(absent) = %v, want ErrNotExist", err)
	}
}

const (
	botToken = "xoxb-very-secret-bot-token"
	signing  = "very-secret-signing"
	bearer   = "very-secret-bearer"
	chPass   = "very-secret-ch-password"
)

func secretConfig(t *testing.T) *Config {
	t.Helper()
	src := y(
		"webhook: {auth: {bearer_token_env: BEARER}}",
		"alertmanager: {url: 'http://alertmanager:9093'}",
		"clusters:",
		"  - name: prod",
		`    match: ['cluster="prod"']`,
		"    slack_channel: '#ch-prod'",
		"    clickhouse:",
		"      password_file: /run/ch",
		`      nodes: [{name: a, address: "h:1", shard: 2, replica: r1}]`,
		`    keeper: {kind: clickhouse-keeper, nodes: [{name: z, address: "h:2"}], commands: [ruok, mntr]}`,
		"  - name: fallback",
		`    clickhouse: {nodes: [{name: a, address: "h:1"}]}`,
		`    keeper: {nodes: [{name: z, address: "h:2"}]}`,
		"slack:",
		"  bot_token_file: /run/bot",
		"  signing_secret_env: SIGNING",
		"  channel: '#ch'",
		"  routes:",
		`    - match: ['severity="critical"', 'cluster="prod"']`,
		"      channel: '#pager'",
	)
	return mustParse(t, src,
		map[string]string{"BEARER": bearer, "SIGNING": signing},
		map[string]string{"/run/ch": chPass, "/run/bot": botToken})
}

func TestRedacted(t *testing.T) {
	c := secretConfig(t)
	out, err := c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, secret := range []string{botToken, signing, bearer, chPass} {
		if strings.Contains(s, secret) {
			t.Errorf("Redacted output contains secret %q:\n%s", secret, s)
		}
	}
	for _, want := range []string{
		"bot_token_file: /run/bot # <redacted>",
		"signing_secret_env: SIGNING # <redacted>",
		"bearer_token_env: BEARER # <redacted>",
		"password_file: /run/ch # <redacted>",
		"max_execution_time: 2s",
		"max_body_bytes: 4MiB",
		"dedup_window: 5m\n",
		"shutdown_timeout: 15s\n",
		"commands: [ruok, mntr]",
		`match: [cluster="prod"]`,
		"replica: r1",
		"api_url: https://slack.com/api/",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("Redacted output lacks %q:\n%s", want, s)
		}
	}
	// The output is a loadable configuration equal to the original.
	c2 := mustParse(t, s,
		map[string]string{"BEARER": bearer, "SIGNING": signing},
		map[string]string{"/run/ch": chPass, "/run/bot": botToken})
	if !reflect.DeepEqual(c, c2) {
		t.Errorf("reloaded Redacted output differs:\n%+v\n%+v", c, c2)
	}

	// A secret with no source (NewSecret) is shown as <redacted>.
	c.Slack.BotToken = NewSecret(botToken)
	out, err = c.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	if s := string(out); strings.Contains(s, botToken) || !strings.Contains(s, "bot_token: <redacted>") {
		t.Errorf("Redacted with NewSecret:\n%s", s)
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	s := NewSecret("hunter2")
	if s.Value() != "hunter2" || !s.IsSet() {
		t.Fatalf("Value() = %q, IsSet() = %v", s.Value(), s.IsSet())
	}
	c := secretConfig(t)
	c.Slack.BotToken = s
	type wrapper struct {
		Token Secret
		Ptr   *Secret
	}
	w := wrapper{Token: s, Ptr: &s}

	var outputs []string
	outputs = append(outputs,
		fmt.Sprintf("%v %+v %#v %s %q %x %X %d %10s %T", s, s, s, s, s, s, s, s, s, s),
		fmt.Sprintf("%v %+v %#v", &s, &s, &s),
		fmt.Sprintf("%v %+v %#v", w, w, w),
		fmt.Sprintf("%v %+v %#v", c, c, c),
		fmt.Sprintf("%v %+v %#v", c.Slack, c.Slack, c.Slack),
		fmt.Sprint(s), fmt.Sprintln(s), s.String(), s.GoString(),
	)
	for _, f := range []func(*bytes.Buffer) slog.Handler{
		func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var buf bytes.Buffer
		l := slog.New(f(&buf))
		l.Info("secret", "s", s, "ptr", &s, "w", w, "slack", c.Slack, "config", c)
		l.Info("group", slog.Group("g", slog.Any("s", s)))
		outputs = append(outputs, buf.String())
	}
	for _, fn := range []func(Secret) ([]byte, error){
		func(s Secret) ([]byte, error) { return s.MarshalJSON() },
		func(s Secret) ([]byte, error) { v, err := s.MarshalYAML(); return []byte(fmt.Sprint(v)), err },
	} {
		b, err := fn(s)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(b))
	}
	for _, o := range outputs {
		if strings.Contains(o, "hunter2") || strings.Contains(o, botToken) || strings.Contains(o, signing) ||
			strings.Contains(o, bearer) || strings.Contains(o, chPass) {
			t.Errorf("secret revealed in %q", o)
		}
		if !strings.Contains(o, "<redacted>") {
			t.Errorf("no <redacted> in %q", o)
		}
	}
	if got := fmt.Sprintf("%v|%+v|%#v|%q", Secret{}, Secret{}, Secret{}, Secret{}); got != `|||""` {
		t.Errorf("unset secret formats as %q", got)
	}
	if b, _ := (Secret{}).MarshalJSON(); string(b) != `""` {
		t.Errorf("unset MarshalJSON = %s", b)
	}
	if (Secret{}).IsSet() {
		t.Error("zero Secret IsSet")
	}
}

func TestClusterForAndChannelFor(t *testing.T) {
	c := secretConfig(t)
	prod, fallback := &c.Clusters[0], &c.Clusters[1]
	tests := []struct {
		name        string
		lset        map[string]string
		wantCluster *Cluster
		wantChannel string
	}{
		{"matches prod, route matches", map[string]string{"cluster": "prod", "severity": "critical"}, prod, "#pager"},
		{"matches prod, no route", map[string]string{"cluster": "prod", "severity": "warning"}, prod, "#ch-prod"},
		{"default cluster", map[string]string{"cluster": "staging"}, fallback, "#ch"},
		{"no labels", nil, fallback, "#ch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := c.ClusterFor(tt.lset)
			if !ok || got != tt.wantCluster {
				t.Fatalf("ClusterFor = %v, %v; want %s", got, ok, tt.wantCluster.Name)
			}
			if ch := c.Slack.ChannelFor(got, tt.lset); ch != tt.wantChannel {
				t.Errorf("ChannelFor = %q, want %q", ch, tt.wantChannel)
			}
		})
	}
	if ch := c.Slack.ChannelFor(nil, map[string]string{"cluster": "x"}); ch != "#ch" {
		t.Errorf("ChannelFor(nil cluster) = %q", ch)
	}

	// Without a default cluster, an unmatched alert has no cluster.
	c.Clusters = c.Clusters[:1]
	if got, ok := c.ClusterFor(map[string]string{"cluster": "staging"}); ok || got != nil {
		t.Errorf("ClusterFor without default = %v, %v", got, ok)
	}
	// Matchers are ANDed.
	src := y(
		"clusters:",
		"  - name: a",
		`    match: ['cluster="prod"', 'dc=~"eu-.*"']`,
		`    clickhouse: {nodes: [{name: a, address: "h:1"}]}`,
		`    keeper: {nodes: [{name: z, address: "h:2"}]}`,
		"  - name: b",
		`    match: ['cluster="prod"']`,
		`    clickhouse: {nodes: [{name: a, address: "h:1"}]}`,
		`    keeper: {nodes: [{name: z, address: "h:2"}]}`,
	)
	c = mustParse(t, src, nil, nil)
	if got, _ := c.ClusterFor(map[string]string{"cluster": "prod", "dc": "eu-west"}); got == nil || got.Name != "a" {
		t.Errorf("eu-west → %v, want a", got)
	}
	if got, _ := c.ClusterFor(map[string]string{"cluster": "prod", "dc": "us-east"}); got == nil || got.Name != "b" {
		t.Errorf("us-east → %v, want b", got)
	}
	if got, ok := c.Cluster("b"); !ok || got.Name != "b" {
		t.Errorf("Cluster(b) = %v, %v", got, ok)
	}
	if _, ok := c.Cluster("nope"); ok {
		t.Error("Cluster(nope) found")
	}
	if !c.Clusters[0].Keeper.Allows("mntr") || c.Clusters[0].Keeper.Allows("stat") {
		t.Error("Keeper.Allows")
	}
}

func TestExampleLoads(t *testing.T) {
	const path = "../../cmd/chmedic/chmedic.example.yaml"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	noFiles := func(p string) ([]byte, error) { return nil, fmt.Errorf("unexpected read of %s", p) }
	c, err := Parse(path, data, nil, noFiles)
	if err != nil {
		t.Fatalf("example does not load:\n%v", err)
	}
	if len(c.Clusters) != 1 || c.Clusters[0].Name != "local" {
		t.Fatalf("clusters = %+v", c.Clusters)
	}
	cl := c.Clusters[0]
	if cl.ClickHouse.Nodes[0].Address != "127.0.0.1:9000" || cl.Keeper.Nodes[0].Address != "127.0.0.1:2181" {
		t.Errorf("addresses: %+v %+v", cl.ClickHouse.Nodes, cl.Keeper.Nodes)
	}
	if c.Slack.Enabled() || c.Webhook.Auth.Enabled() {
		t.Error("example enables Slack or webhook auth")
	}
	if want := filepath.Join("../../cmd/chmedic", "chmedic.db"); c.Store.Path != want {
		t.Errorf("store.path = %q, want %q", c.Store.Path, want)
	}
	// The example shows every default: it decodes to the same values as the
	// minimal equivalent.
	d := mustParse(t, y(
		"clusters:",
		"  - name: local",
		"    clickhouse: {nodes: [{name: ch-1, address: '127.0.0.1:9000'}]}",
		"    keeper: {nodes: [{name: keeper-1, address: '127.0.0.1:2181'}]}",
		"    actions: {clickhouse: {user: chmedic_actions}}",
		"slack: {channel: '#clickhouse-alerts'}",
	), nil, nil)
	d.File, d.Store.Path = c.File, c.Store.Path
	if !reflect.DeepEqual(c, d) {
		t.Errorf("example differs from defaults:\n%+v\n%+v", c, d)
	}
	// Every key of the schema appears in the example (set or commented).
	out, err := d.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		key, _, ok := strings.Cut(strings.TrimLeft(line, " -"), ":")
		if ok && !strings.Contains(string(data), key+":") {
			t.Errorf("example does not document %q", key)
		}
	}
	for _, key := range []string{"bearer_token_file", "bearer_token_env", "basic", "username", "password_file", "password_env",
		"bot_token_file", "bot_token_env", "signing_secret_file", "signing_secret_env", "url", "slack_channel",
		"app_token_file", "app_token_env"} {
		if !strings.Contains(string(data), key+":") {
			t.Errorf("example does not document %q", key)
		}
	}
}
