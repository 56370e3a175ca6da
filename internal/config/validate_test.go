package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		env   map[string]string
		files map[string]string
		want  []string
	}{
		// top level
		{
			name: "listen_address without port",
			src:  y("listen_address: nohost") + minimal,
			want: []string{`chmedic.yaml:1:17: listen_address: invalid address "nohost": want host:port`},
		},
		{
			name: "listen_address port out of range",
			src:  y(`listen_address: ":0"`) + minimal,
			want: []string{`chmedic.yaml:1:17: listen_address: invalid address ":0": port must be a number between 1 and 65535`},
		},
		{
			name: "listen_address of the wrong type",
			src:  y("listen_address: [a]") + minimal,
			want: []string{`chmedic.yaml:1:17: listen_address: expected a string, got a list`},
		},
		{
			name: "shutdown_timeout zero",
			src:  y("shutdown_timeout: 0s") + minimal,
			want: []string{`chmedic.yaml:1:19: shutdown_timeout: must be greater than 0, got 0s`},
		},
		{
			name: "bad duration",
			src:  y("shutdown_timeout: 5x") + minimal,
			want: []string{`chmedic.yaml:1:19: shutdown_timeout: invalid duration "5x" (use a Go duration such as 30s, 5m or 1h30m)`},
		},
		{
			name: "log level and format",
			src:  y("log:", "  level: verbose", "  format: xml") + minimal,
			want: []string{
				`chmedic.yaml:2:10: log.level: must be one of debug, info, warn, error (got "verbose")`,
				`chmedic.yaml:3:11: log.format: must be one of text, json (got "xml")`,
			},
		},
		{
			name: "section of the wrong type",
			src:  y("log: debug") + minimal,
			want: []string{`chmedic.yaml:1:6: log: expected a mapping, got a scalar`},
		},
		{
			name: "store.path empty",
			src:  y("store:", `  path: ""`) + minimal,
			want: []string{`chmedic.yaml:2:9: store.path: is required`},
		},
		// webhook
		{
			name: "webhook limits low",
			src:  y("webhook:", "  max_body_bytes: 0", "  queue_size: 0", "  workers: 0", "  dedup_window: -1s") + minimal,
			want: []string{
				`chmedic.yaml:2:19: webhook.max_body_bytes: must be between 1 byte and 64MiB (got 0)`,
				`chmedic.yaml:3:15: webhook.queue_size: must be between 1 and 100000, got 0`,
				`chmedic.yaml:4:12: webhook.workers: must be between 1 and 256, got 0`,
				`chmedic.yaml:5:17: webhook.dedup_window: must not be negative, got -1s`,
			},
		},
		{
			name: "webhook limits high",
			src:  y("webhook:", "  max_body_bytes: 65MiB", "  queue_size: 100001", "  workers: 257") + minimal,
			want: []string{
				`chmedic.yaml:2:19: webhook.max_body_bytes: must be between 1 byte and 64MiB (got 68157440)`,
				`chmedic.yaml:3:15: webhook.queue_size: must be between 1 and 100000, got 100001`,
				`chmedic.yaml:4:12: webhook.workers: must be between 1 and 256, got 257`,
			},
		},
		{
			name: "bad byte size and integer",
			src:  y("webhook:", "  max_body_bytes: 4XB", "  workers: many") + minimal,
			want: []string{
				`chmedic.yaml:2:19: webhook.max_body_bytes: invalid byte size "4XB": unknown unit "XB" (use B, KB, MB, GB, KiB, MiB or GiB)`,
				`chmedic.yaml:3:12: webhook.workers: invalid integer "many"`,
			},
		},
		{
			name: "bearer and basic together",
			src: y("webhook:", "  auth:", "    bearer_token_env: TOKEN", "    basic:",
				"      username: am", "      password_env: PASS") + minimal,
			env:  map[string]string{"TOKEN": "t0k3n", "PASS": "pa55"},
			want: []string{`chmedic.yaml:3:5: webhook.auth: bearer_token_file/bearer_token_env and basic are mutually exclusive; configure only one`},
		},
		{
			name: "bearer and basic together, bearer file missing",
			src: y("webhook:", "  auth:", "    bearer_token_file: /nope", "    basic:",
				"      username: am", "      password_env: PASS") + minimal,
			env: map[string]string{"PASS": "pa55"},
			want: []string{
				`chmedic.yaml:3:5: webhook.auth: bearer_token_file/bearer_token_env and basic are mutually exclusive; configure only one`,
				`chmedic.yaml:3:24: webhook.auth.bearer_token_file: cannot read secret file: open /nope: file does not exist`,
			},
		},
		{
			name: "basic without username and password",
			src:  y("webhook:", "  auth:", "    basic:", `      username: ""`) + minimal,
			want: []string{
				`chmedic.yaml:4:7: webhook.auth.basic.password_file: is required (or password_env)`,
				`chmedic.yaml:4:17: webhook.auth.basic.username: is required`,
			},
		},
		{
			name: "alertmanager url not absolute",
			src:  y("alertmanager:", "  url: alertmanager:9093") + minimal,
			want: []string{`chmedic.yaml:2:8: alertmanager.url: invalid URL "alertmanager:9093": want an absolute http or https URL`},
		},
		// diagnosis
		{
			name: "diagnosis limits",
			src: y("diagnosis:", "  probe_timeout: 3s", "  budget: 2s", "  max_concurrent_per_node: 17",
				"  cache_ttl: -1s", "  max_execution_time: -1s", "  ddl_storm_window: 0s") + minimal,
			want: []string{
				`chmedic.yaml:3:11: diagnosis.budget: must be at least probe_timeout (3s), got 2s`,
				`chmedic.yaml:4:28: diagnosis.max_concurrent_per_node: must be between 1 and 16, got 17`,
				`chmedic.yaml:5:14: diagnosis.cache_ttl: must not be negative, got -1s`,
				`chmedic.yaml:6:23: diagnosis.max_execution_time: must not be negative, got -1s`,
				`chmedic.yaml:7:21: diagnosis.ddl_storm_window: must be greater than 0, got 0s`,
			},
		},
		{
			name: "probe_timeout zero",
			src:  y("diagnosis:", "  probe_timeout: 0s", "  max_concurrent_per_node: 0") + minimal,
			want: []string{
				`chmedic.yaml:2:18: diagnosis.probe_timeout: must be greater than 0, got 0s`,
				`chmedic.yaml:3:28: diagnosis.max_concurrent_per_node: must be between 1 and 16, got 0`,
			},
		},
		{
			name: "thresholds crit not above warn and bad ranges",
			src: y("diagnosis:", "  thresholds:",
				"    keeper_latency_warn: 100ms",
				"    keeper_latency_crit: 100ms",
				"    replication_queue_tries_warn: 5",
				"    replication_queue_tries_crit: 5",
				"    outstanding_requests_warn: 10",
				"    outstanding_requests_crit: 3",
				"    connections_ratio_warn: 0",
				"    fd_ratio_warn: 1.5",
				"    znode_count_warn: 0",
				"    replicated_tables_warn: 0",
				"    ddl_storm_count: 0",
				"    ddl_stuck_after: 0s",
				"    replica_delay_warn: 0s",
			) + minimal,
			want: []string{
				`chmedic.yaml:4:26: diagnosis.thresholds.keeper_latency_crit: must be greater than keeper_latency_warn (100ms), got 100ms`,
				`chmedic.yaml:6:35: diagnosis.thresholds.replication_queue_tries_crit: must be greater than replication_queue_tries_warn (5), got 5`,
				`chmedic.yaml:8:32: diagnosis.thresholds.outstanding_requests_crit: must be greater than outstanding_requests_warn (10), got 3`,
				`chmedic.yaml:9:29: diagnosis.thresholds.connections_ratio_warn: must be greater than 0 and at most 1, got 0`,
				`chmedic.yaml:10:20: diagnosis.thresholds.fd_ratio_warn: must be greater than 0 and at most 1, got 1.5`,
				`chmedic.yaml:11:23: diagnosis.thresholds.znode_count_warn: must be at least 1, got 0`,
				`chmedic.yaml:12:29: diagnosis.thresholds.replicated_tables_warn: must be at least 1, got 0`,
				`chmedic.yaml:13:22: diagnosis.thresholds.ddl_storm_count: must be at least 1, got 0`,
				`chmedic.yaml:14:22: diagnosis.thresholds.ddl_stuck_after: must be greater than 0, got 0s`,
				`chmedic.yaml:15:25: diagnosis.thresholds.replica_delay_warn: must be greater than 0, got 0s`,
			},
		},
		{
			name: "threshold warnings zero",
			src: y("diagnosis:", "  thresholds:",
				"    keeper_latency_warn: 0s",
				"    replication_queue_tries_warn: 0",
				"    outstanding_requests_warn: 0",
				"    fd_ratio_warn: lots",
			) + minimal,
			want: []string{
				`chmedic.yaml:3:26: diagnosis.thresholds.keeper_latency_warn: must be greater than 0, got 0s`,
				`chmedic.yaml:4:35: diagnosis.thresholds.replication_queue_tries_warn: must be at least 1, got 0`,
				`chmedic.yaml:5:32: diagnosis.thresholds.outstanding_requests_warn: must be at least 1, got 0`,
				`chmedic.yaml:6:20: diagnosis.thresholds.fd_ratio_warn: invalid number "lots"`,
			},
		},
		// clusters
		{
			name: "no clusters",
			src:  y("log: {level: info}"),
			want: []string{`chmedic.yaml:1:1: clusters: at least one cluster is required`},
		},
		{
			name: "empty clusters list",
			src:  y("clusters: []"),
			want: []string{`chmedic.yaml:1:11: clusters: at least one cluster is required`},
		},
		{
			name: "empty file",
			src:  "",
			want: []string{`chmedic.yaml:1:1: clusters: at least one cluster is required`},
		},
		{
			name: "clusters of the wrong type",
			src:  y("clusters: prod"),
			want: []string{
				`chmedic.yaml:1:11: clusters: expected a list, got a scalar`,
			},
		},
		{
			name: "keeper without nodes",
			src: y(
				"clusters:",
				"  - name: prod",
				"    clickhouse:",
				"      nodes:",
				"        - name: ch-1",
				"          address: 10.0.0.1:9000",
				"    keeper:",
				"      kind: clickhouse-keeper",
			),
			want: []string{`chmedic.yaml:8:7: clusters[0].keeper.nodes: at least one node is required`},
		},
		{
			name: "cluster without clickhouse and keeper",
			src:  y("clusters:", "  - name: prod"),
			want: []string{
				`chmedic.yaml:2:5: clusters[0].clickhouse.nodes: at least one node is required`,
				`chmedic.yaml:2:5: clusters[0].keeper.nodes: at least one node is required`,
			},
		},
		{
			name: "cluster field rules",
			src: y(
				"clusters:",
				`  - name: "bad name"`,
				`    match: ['cluster=~"(']`,
				`    slack_channel: "#a b"`,
				"    clickhouse:",
				`      user: ""`,
				`      database: ""`,
				"      discover: true",
				"      nodes:",
				"        - name: ch-1",
				"          address: 10.0.0.1",
				"          shard: 0",
				"        - name: ch-1",
				`          address: ":9000"`,
				"        - address: 10.0.0.2:70000",
				"    keeper:",
				"      kind: etcd",
				"      nodes: []",
				"      commands: [ruok, stat, ruok]",
			),
			want: []string{
				`chmedic.yaml:2:11: clusters[0].name: invalid cluster name "bad name" (use letters, digits, '_', '.' and '-')`,
				`chmedic.yaml:3:13: clusters[0].match[0]: invalid matcher "cluster=~\"(": matcher value contains unescaped double quote: "(`,
				`chmedic.yaml:4:20: clusters[0].slack_channel: invalid Slack channel "#a b"`,
				`chmedic.yaml:6:7: clusters[0].clickhouse.cluster_name: is required when discover is true`,
				`chmedic.yaml:6:13: clusters[0].clickhouse.user: must not be empty`,
				`chmedic.yaml:7:17: clusters[0].clickhouse.database: must not be empty`,
				`chmedic.yaml:11:20: clusters[0].clickhouse.nodes[0].address: invalid address "10.0.0.1": want host:port`,
				`chmedic.yaml:12:18: clusters[0].clickhouse.nodes[0].shard: must be at least 1, got 0`,
				`chmedic.yaml:13:17: clusters[0].clickhouse.nodes[1].name: duplicate node name "ch-1" (first used at line 10)`,
				`chmedic.yaml:14:20: clusters[0].clickhouse.nodes[1].address: invalid address ":9000": host is empty`,
				`chmedic.yaml:15:11: clusters[0].clickhouse.nodes[2].name: is required`,
				`chmedic.yaml:15:20: clusters[0].clickhouse.nodes[2].address: invalid address "10.0.0.2:70000": port must be a number between 1 and 65535`,
				`chmedic.yaml:17:13: clusters[0].keeper.kind: must be one of zookeeper, clickhouse-keeper (got "etcd")`,
				`chmedic.yaml:18:14: clusters[0].keeper.nodes: at least one node is required`,
				`chmedic.yaml:19:24: clusters[0].keeper.commands[1]: unknown command "stat" (allowed: ruok, mntr, srvr, isro, cons, wchs, dirs, conf)`,
				`chmedic.yaml:19:30: clusters[0].keeper.commands[2]: duplicate command "ruok"`,
			},
		},
		{
			name: "keeper node rules and empty commands",
			src: y(
				"clusters:",
				"  - name: prod",
				`    clickhouse: {nodes: [{name: a, address: "h:1"}]}`,
				"    keeper:",
				"      nodes:",
				"        - name: zk-1",
				"        - name: zk-1",
				"          address: zk:2181",
				"      commands: []",
			),
			want: []string{
				`chmedic.yaml:6:11: clusters[0].keeper.nodes[0].address: is required`,
				`chmedic.yaml:7:17: clusters[0].keeper.nodes[1].name: duplicate node name "zk-1" (first used at line 6)`,
				`chmedic.yaml:9:17: clusters[0].keeper.commands: at least one command is required`,
			},
		},
		{
			name: "duplicate cluster name and two default clusters",
			src: y(
				"clusters:",
				"  - name: prod",
				`    clickhouse: {nodes: [{name: a, address: "h:1"}]}`,
				`    keeper: {nodes: [{name: z, address: "h:2"}]}`,
				"  - name: prod",
				`    clickhouse: {nodes: [{name: a, address: "h:1"}]}`,
				`    keeper: {nodes: [{name: z, address: "h:2"}]}`,
			),
			want: []string{
				`chmedic.yaml:5:5: clusters[1].match: only one cluster may have an empty match (the default cluster); clusters[0] already has one`,
				`chmedic.yaml:5:11: clusters[1].name: duplicate cluster name "prod" (first used at line 2)`,
			},
		},
		{
			name: "bad boolean",
			src: y(
				"clusters:",
				"  - name: prod",
				"    clickhouse:",
				"      secure: yes",
				`      nodes: [{name: a, address: "h:1"}]`,
				`    keeper: {nodes: [{name: z, address: "h:2"}]}`,
			),
			want: []string{`chmedic.yaml:4:15: clusters[0].clickhouse.secure: invalid boolean "yes" (use true or false)`},
		},
		// slack
		{
			name: "slack rules",
			src: y(
				"slack:",
				"  bot_token_env: SLACK_TOKEN",
				"  api_url: slack.com/api",
				"  routes:",
				`    - channel: "#x"`,
				`    - match: ['severity="critical"', 'bad matcher']`,
				"  storm_threshold: 0",
				"  storm_window: 0s",
			) + minimal,
			env: map[string]string{"SLACK_TOKEN": "xoxb-secret"},
			want: []string{
				`chmedic.yaml:2:3: slack.channel: is required when a bot token is set`,
				`chmedic.yaml:3:12: slack.api_url: invalid URL "slack.com/api": want an absolute http or https URL`,
				`chmedic.yaml:5:7: slack.routes[0].match: at least one matcher is required`,
				`chmedic.yaml:6:7: slack.routes[1].channel: is required`,
				`chmedic.yaml:6:38: slack.routes[1].match[1]: invalid matcher "bad matcher": bad matcher format: bad matcher`,
				`chmedic.yaml:7:20: slack.storm_threshold: must be at least 1, got 0`,
				`chmedic.yaml:8:17: slack.storm_window: must be greater than 0, got 0s`,
			},
		},
		// unknown keys
		{
			name: "unknown nested key",
			src: y(
				"clusters:",
				"  - name: prod",
				"    clickhouse:",
				"      nodes:",
				"        - name: ch-1",
				"          address: 10.0.0.1:9000",
				"    keeper:",
				"      nodez:",
				"        - name: zk-1",
				"          address: 10.0.0.5:2181",
			),
			want: []string{
				`chmedic.yaml:8:7: clusters[0].keeper.nodez: unknown key (did you mean "nodes"?)`,
				`chmedic.yaml:8:7: clusters[0].keeper.nodes: at least one node is required`,
			},
		},
		{
			name: "unknown top-level key",
			src:  y("colour: red") + minimal,
			want: []string{`chmedic.yaml:1:1: colour: unknown key (valid keys: listen_address, shutdown_timeout, log, store, webhook, alertmanager, diagnosis, clusters, slack, playbooks, approvals, digests)`},
		},
		{
			name: "duplicate key",
			src:  y("log:", "  level: info", "  level: debug") + minimal,
			want: []string{`chmedic.yaml:3:3: log.level: duplicate key (first set at line 2)`},
		},
		// secrets
		{
			name: "inline slack secrets",
			src:  y("slack:", "  bot_token: xoxb-123", "  signing_secret: s3cr3t", "  channel: '#x'") + minimal,
			want: []string{
				`chmedic.yaml:2:3: slack.bot_token: inline secrets are not allowed; use bot_token_file or bot_token_env`,
				`chmedic.yaml:3:3: slack.signing_secret: inline secrets are not allowed; use signing_secret_file or signing_secret_env`,
			},
		},
		{
			name: "inline bearer token",
			src:  y("webhook:", "  auth:", "    bearer_token: s3cr3t") + minimal,
			want: []string{`chmedic.yaml:3:5: webhook.auth.bearer_token: inline secrets are not allowed; use bearer_token_file or bearer_token_env`},
		},
		{
			name: "inline passwords",
			src: y(
				"webhook:",
				"  auth:",
				"    basic: {username: am, password: s3cr3t}",
				"clusters:",
				"  - name: prod",
				"    clickhouse:",
				"      password: s3cr3t",
				`      nodes: [{name: a, address: "h:1"}]`,
				`    keeper: {nodes: [{name: z, address: "h:2"}]}`,
			),
			want: []string{
				`chmedic.yaml:3:27: webhook.auth.basic.password: inline secrets are not allowed; use password_file or password_env`,
				`chmedic.yaml:7:7: clusters[0].clickhouse.password: inline secrets are not allowed; use password_file or password_env`,
			},
		},
		{
			name: "missing secret file",
			src:  y("slack:", "  bot_token_file: /missing/token", "  channel: '#x'") + minimal,
			want: []string{`chmedic.yaml:2:19: slack.bot_token_file: cannot read secret file: open /missing/token: file does not exist`},
		},
		{
			name:  "empty secret file",
			src:   y("slack:", "  bot_token_file: /run/empty", "  channel: '#x'") + minimal,
			files: map[string]string{"/run/empty": "\n"},
			want:  []string{`chmedic.yaml:2:19: slack.bot_token_file: secret file /run/empty is empty`},
		},
		{
			name: "empty secret file name",
			src:  y("slack:", `  bot_token_file: ""`) + minimal,
			want: []string{`chmedic.yaml:2:19: slack.bot_token_file: must not be empty`},
		},
		{
			name: "unset and empty environment variables",
			src:  y("slack:", "  bot_token_env: NOPE", "  signing_secret_env: EMPTY", "  channel: '#x'") + minimal,
			env:  map[string]string{"EMPTY": ""},
			want: []string{
				`chmedic.yaml:2:18: slack.bot_token_env: environment variable NOPE is not set`,
				`chmedic.yaml:3:23: slack.signing_secret_env: environment variable EMPTY is empty`,
			},
		},
		{
			name:  "secret from both file and env",
			src:   y("slack:", "  bot_token_file: /run/t", "  bot_token_env: T", "  channel: '#x'") + minimal,
			env:   map[string]string{"T": "xoxb-env"},
			files: map[string]string{"/run/t": "xoxb-file"},
			want:  []string{`chmedic.yaml:3:3: slack.bot_token_env: cannot be combined with bot_token_file; set only one`},
		},
		// YAML level
		{
			name: "syntax error",
			src:  y("log:", "\t- x"),
			want: []string{`chmedic.yaml:2: invalid YAML: found character that cannot start any token`},
		},
		{
			name: "two documents",
			src:  minimal + y("---", "log: {}"),
			want: []string{`chmedic.yaml:11:1: more than one YAML document; only one is allowed`},
		},
		{
			name: "document is not a mapping",
			src:  y("- clusters"),
			want: []string{`chmedic.yaml:1:1: expected a mapping, got a list`},
		},
		{
			name: "comments only",
			src:  y("# nothing here"),
			want: []string{`chmedic.yaml:1:1: clusters: at least one cluster is required`},
		},
		// several at once, in file order
		{
			name: "several errors at once",
			src: y(
				"shutdown_timeout: soon",
				"log: {level: loud}",
				"webhook:",
				"  workers: 0",
				"clusters:",
				"  - name: prod",
				"    clickhouse:",
				"      nodes:",
				"        - name: ch-1",
				"          address: 10.0.0.1:9000",
				"    keeper:",
				"      nodez: []",
				"slack:",
				"  bot_token: xoxb-123",
			),
			want: []string{
				`chmedic.yaml:1:19: shutdown_timeout: invalid duration "soon" (use a Go duration such as 30s, 5m or 1h30m)`,
				`chmedic.yaml:2:14: log.level: must be one of debug, info, warn, error (got "loud")`,
				`chmedic.yaml:4:12: webhook.workers: must be between 1 and 256, got 0`,
				`chmedic.yaml:12:7: clusters[0].keeper.nodez: unknown key (did you mean "nodes"?)`,
				`chmedic.yaml:12:7: clusters[0].keeper.nodes: at least one node is required`,
				`chmedic.yaml:14:3: slack.bot_token: inline secrets are not allowed; use bot_token_file or bot_token_env`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("chmedic.yaml", []byte(tt.src), fakeEnv(tt.env), fakeFiles(tt.files))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want errors:\n%s", c, strings.Join(tt.want, "\n"))
			}
			if c != nil {
				t.Errorf("Parse returned a config along with the error")
			}
			got := errLines(t, err)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, secret := range []string{"xoxb-123", "s3cr3t", "xoxb-secret", "xoxb-env", "xoxb-file", "t0k3n", "pa55"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error reveals secret %q", secret)
				}
			}
		})
	}
}

func TestValidationErrorsDoNotHideEachOther(t *testing.T) {
	src := y(
		"webhook:",
		"  auth:",
		"    bearer_token_env: TOKEN",
		"    basic:",
		`      username: ""`,
		"      password_env: PASS",
	) + minimal
	_, err := Parse("chmedic.yaml", []byte(src), fakeEnv(map[string]string{"TOKEN": "t", "PASS": "p"}), nil)
	want := []string{
		`chmedic.yaml:3:5: webhook.auth: bearer_token_file/bearer_token_env and basic are mutually exclusive; configure only one`,
		`chmedic.yaml:5:17: webhook.auth.basic.username: is required`,
	}
	if got := errLines(t, err); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestAnchorsAndAliases(t *testing.T) {
	src := y(
		"clusters:",
		"  - name: a",
		`    match: ['cluster="a"']`,
		"    clickhouse: &ch",
		"      user: probe",
		`      nodes: [{name: n1, address: "h:1"}]`,
		"    keeper: &zk",
		`      nodes: [{name: z, address: "h:2"}]`,
		"  - name: b",
		"    clickhouse: *ch",
		"    keeper: *zk",
	)
	c := mustParse(t, src, nil, nil)
	if got := c.Clusters[1].ClickHouse.User; got != "probe" {
		t.Errorf("aliased clickhouse.user = %q", got)
	}
	if got := c.Clusters[1].Keeper.Nodes[0].Address; got != "h:2" {
		t.Errorf("aliased keeper address = %q", got)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    FieldError
		want string
	}{
		{FieldError{File: "f.yaml", Line: 3, Col: 4, Path: "a.b", Msg: "bad"}, "f.yaml:3:4: a.b: bad"},
		{FieldError{File: "f.yaml", Line: 3, Msg: "bad"}, "f.yaml:3: bad"},
		{FieldError{File: "f.yaml", Msg: "bad"}, "f.yaml: bad"},
		{FieldError{Path: "a", Msg: "bad"}, "a: bad"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	es := Errors{{File: "f", Line: 1, Col: 1, Msg: "x"}, {File: "f", Line: 2, Col: 1, Msg: "y"}}
	if got := es.Error(); got != "f:1:1: x\nf:2:1: y" {
		t.Errorf("Errors.Error() = %q", got)
	}
}
