// Package config loads chmedic's configuration: one strict YAML file,
// validated as a whole when it is loaded.
//
// Loading goes defaults → decode → validate. Unknown keys are errors, and
// every problem is reported at once as Errors, each naming the file, line,
// column and field path:
//
//	chmedic.yaml:12:5: clusters[0].keeper.nodes: at least one node is required
//
// Secrets are never written inline: a secret key "x" is given as "x_file"
// (a path to a file holding the value; trailing newlines are trimmed) or
// "x_env" (the name of an environment variable). They are resolved during
// Load into Secret values that print as "<redacted>" everywhere.
//
// Durations are Go duration strings ("5s", "10m", "1h30m"); byte sizes are
// integers (bytes) or strings with a unit ("4MiB"). Relative paths (secret
// files, store.path, playbooks.dir) are resolved against the directory of
// the configuration file.
//
// cmd/chmedic/chmedic.example.yaml documents every key.
package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
)

// Config is chmedic's whole configuration. Load and Parse return it with
// defaults filled in, secrets resolved, relative paths resolved and
// matchers parsed.
type Config struct {
	// File is the path the configuration was loaded from (as given to Load
	// or Parse).
	File string `yaml:"-"`

	// ListenAddress is the host:port the HTTP server listens on
	// (listen_address) [127.0.0.1:9135].
	ListenAddress string `yaml:"listen_address"`
	// ShutdownTimeout bounds draining in-flight work on SIGTERM
	// (shutdown_timeout) [15s].
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Log configures logging (log).
	Log Log `yaml:"log"`
	// Store configures the embedded database (store).
	Store Store `yaml:"store"`
	// Webhook configures the Alertmanager webhook receiver (webhook).
	Webhook Webhook `yaml:"webhook"`
	// Alertmanager describes the Alertmanager that sends alerts
	// (alertmanager).
	Alertmanager Alertmanager `yaml:"alertmanager"`
	// Diagnosis configures probing and diagnosis (diagnosis).
	Diagnosis Diagnosis `yaml:"diagnosis"`
	// Clusters are the ClickHouse clusters chmedic knows (clusters); at
	// least one.
	Clusters []Cluster `yaml:"clusters"`
	// Slack configures posting to Slack (slack).
	Slack Slack `yaml:"slack"`
	// Playbooks configures extra playbooks (playbooks).
	Playbooks Playbooks `yaml:"playbooks"`
	// Approvals configures the approval policy of actions (approvals).
	Approvals Approvals `yaml:"approvals"`
	// Digests configures the scheduled health digests (digests); see
	// digests.go.
	Digests Digests `yaml:"digests"`
}

// Log configures logging.
type Log struct {
	// Level is debug, info, warn or error (level) [info].
	Level string `yaml:"level"`
	// Format is text or json (format) [text].
	Format string `yaml:"format"`
}

// SlogLevel returns Level as a slog.Level (info when unrecognised).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Store configures the embedded SQLite database.
type Store struct {
	// Path is the SQLite database file (path) [chmedic.db], resolved
	// against the configuration file's directory.
	Path string `yaml:"path"`
	// Retention is how long processed notifications (and delivered outbox
	// entries) are kept (retention) [168h]; 0 keeps them forever.
	Retention time.Duration `yaml:"retention"`
}

// Webhook configures the Alertmanager webhook receiver.
type Webhook struct {
	// MaxBodyBytes is the largest request body accepted (max_body_bytes)
	// [4MiB]; 1 byte to 64MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// QueueSize is the capacity of the work queue (queue_size) [256];
	// 1 to 100000.
	QueueSize int `yaml:"queue_size"`
	// Workers is the number of notification workers (workers) [4]; 1 to
	// 256.
	Workers int `yaml:"workers"`
	// DedupWindow drops repeats of the same notification within it
	// (dedup_window) [5m]; 0 disables deduplication.
	DedupWindow time.Duration `yaml:"dedup_window"`
	// Auth authenticates Alertmanager (auth); optional.
	Auth WebhookAuth `yaml:"auth"`
}

// WebhookAuth authenticates requests to the webhook: a bearer token or HTTP
// basic auth, not both. When neither is set the receiver is open.
type WebhookAuth struct {
	// BearerToken is the expected bearer token (bearer_token_file or
	// bearer_token_env).
	BearerToken Secret `yaml:"bearer_token"`
	// Basic is HTTP basic auth (basic); nil when not configured.
	Basic *BasicAuth `yaml:"basic"`
}

// Enabled reports whether the webhook requires authentication.
func (a WebhookAuth) Enabled() bool { return a.BearerToken.IsSet() || a.Basic != nil }

// BasicAuth is an HTTP basic auth username and password.
type BasicAuth struct {
	// Username (username); required.
	Username string `yaml:"username"`
	// Password (password_file or password_env); required.
	Password Secret `yaml:"password"`
}

// Alertmanager describes the Alertmanager that sends alerts.
type Alertmanager struct {
	// URL is Alertmanager's external URL (url), used for silence links;
	// optional. An absolute http or https URL.
	URL string `yaml:"url"`
}

// Diagnosis configures probing and diagnosis.
type Diagnosis struct {
	// ProbeTimeout bounds one probe (probe_timeout) [2s].
	ProbeTimeout time.Duration `yaml:"probe_timeout"`
	// Budget bounds a whole diagnosis (budget) [5s]; at least ProbeTimeout.
	Budget time.Duration `yaml:"budget"`
	// MaxConcurrentPerNode limits concurrent probes per node
	// (max_concurrent_per_node) [2]; 1 to 16.
	MaxConcurrentPerNode int `yaml:"max_concurrent_per_node"`
	// CacheTTL is how long probe results are reused (cache_ttl) [15s].
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// MaxExecutionTime is sent to ClickHouse as the max_execution_time
	// setting of probe queries (max_execution_time) [ProbeTimeout]; 0 or
	// absent means ProbeTimeout.
	MaxExecutionTime time.Duration `yaml:"max_execution_time"`
	// DDLStormWindow is the window in which Thresholds.DDLStormCount DDL
	// statements count as a storm (ddl_storm_window) [10m].
	DDLStormWindow time.Duration `yaml:"ddl_storm_window"`
	// Thresholds are the diagnosis thresholds (thresholds).
	Thresholds Thresholds `yaml:"thresholds"`
}

// Thresholds are the limits diagnosis compares probe results with.
type Thresholds struct {
	// KeeperLatencyWarn (keeper_latency_warn) [10ms].
	KeeperLatencyWarn time.Duration `yaml:"keeper_latency_warn"`
	// KeeperLatencyCrit (keeper_latency_crit) [100ms]; greater than
	// KeeperLatencyWarn.
	KeeperLatencyCrit time.Duration `yaml:"keeper_latency_crit"`
	// ReplicaDelayWarn is the replica absolute delay that warns
	// (replica_delay_warn) [5m].
	ReplicaDelayWarn time.Duration `yaml:"replica_delay_warn"`
	// ReplicationQueueTriesWarn (replication_queue_tries_warn) [5].
	ReplicationQueueTriesWarn int `yaml:"replication_queue_tries_warn"`
	// ReplicationQueueTriesCrit (replication_queue_tries_crit) [50];
	// greater than ReplicationQueueTriesWarn.
	ReplicationQueueTriesCrit int `yaml:"replication_queue_tries_crit"`
	// DDLStuckAfter is the age after which a distributed DDL task counts as
	// stuck (ddl_stuck_after) [5m].
	DDLStuckAfter time.Duration `yaml:"ddl_stuck_after"`
	// DDLStormCount is the number of DDL statements within
	// Diagnosis.DDLStormWindow that counts as a storm (ddl_storm_count) [50].
	DDLStormCount int `yaml:"ddl_storm_count"`
	// OutstandingRequestsWarn (outstanding_requests_warn) [10].
	OutstandingRequestsWarn int `yaml:"outstanding_requests_warn"`
	// OutstandingRequestsCrit (outstanding_requests_crit) [100]; greater
	// than OutstandingRequestsWarn.
	OutstandingRequestsCrit int `yaml:"outstanding_requests_crit"`
	// ConnectionsRatioWarn is the fraction of maxClientCnxns used by one
	// client IP that warns (connections_ratio_warn) [0.8]; 0 < x ≤ 1.
	ConnectionsRatioWarn float64 `yaml:"connections_ratio_warn"`
	// FDRatioWarn is the open/max file descriptor fraction that warns
	// (fd_ratio_warn) [0.8]; 0 < x ≤ 1.
	FDRatioWarn float64 `yaml:"fd_ratio_warn"`
	// ZnodeCountWarn (znode_count_warn) [1000000].
	ZnodeCountWarn int `yaml:"znode_count_warn"`
	// ReplicatedTablesWarn (replicated_tables_warn) [1000].
	ReplicatedTablesWarn int `yaml:"replicated_tables_warn"`
	// ZxidWarnShare is the share of 2^32 reached by a ZooKeeper zxid's
	// counter (its low 32 bits) that warns (zxid_warn_share) [0.9];
	// 0 < x < 1. At 2^32 the ensemble forces a new epoch and sessions drop.
	ZxidWarnShare float64 `yaml:"zxid_warn_share"`
}

// Cluster is one ClickHouse cluster with its Keeper ensemble.
type Cluster struct {
	// Name identifies the cluster (name); required, unique,
	// [a-zA-Z0-9_.-]+.
	Name string `yaml:"name"`
	// Match are Alertmanager label matchers (match), ANDed, as written.
	// Empty matches any alert; at most one cluster may have an empty
	// match, and it is the default cluster.
	Match []string `yaml:"match"`
	// Matchers are Match parsed.
	Matchers []*labels.Matcher `yaml:"-"`
	// SlackChannel overrides Slack.Channel for this cluster
	// (slack_channel); optional.
	SlackChannel string `yaml:"slack_channel"`
	// ClickHouse is how to reach the cluster's servers (clickhouse).
	ClickHouse ClickHouse `yaml:"clickhouse"`
	// Keeper is the cluster's ZooKeeper / ClickHouse Keeper ensemble
	// (keeper).
	Keeper Keeper `yaml:"keeper"`
	// Actions configures the actions on this cluster (actions); see
	// actions.go.
	Actions ClusterActions `yaml:"actions"`
}

// IsDefault reports whether the cluster has an empty match, i.e. is the
// default cluster for alerts no other cluster matches.
func (c *Cluster) IsDefault() bool { return len(c.Matchers) == 0 }

func (c *Cluster) setDefaults() {
	c.ClickHouse.User = "default"
	c.ClickHouse.Database = "default"
	c.Keeper.Kind = KeeperKindZooKeeper
	c.Keeper.Commands = DefaultKeeperCommands()
	c.Actions.setDefaults()
}

// ClickHouse is how chmedic connects to a cluster's ClickHouse servers.
type ClickHouse struct {
	// User (user) [default].
	User string `yaml:"user"`
	// Password (password_file or password_env); optional, empty when unset.
	Password Secret `yaml:"password"`
	// Database (database) [default].
	Database string `yaml:"database"`
	// Secure enables TLS (secure) [false].
	Secure bool `yaml:"secure"`
	// Discover also discovers nodes from system.clusters on a seed node
	// (discover) [false].
	Discover bool `yaml:"discover"`
	// ClusterName is the remote_servers cluster name (cluster_name);
	// required when Discover is set.
	ClusterName string `yaml:"cluster_name"`
	// Nodes are the servers (nodes); at least one, names unique.
	Nodes []ClickHouseNode `yaml:"nodes"`
}

// ClickHouseNode is one ClickHouse server.
type ClickHouseNode struct {
	// Name (name); required, unique within the cluster, [a-zA-Z0-9_.-]+.
	Name string `yaml:"name"`
	// Address is host:port of the native protocol (address); required.
	Address string `yaml:"address"`
	// Shard is the 1-based shard number (shard) [1].
	Shard int `yaml:"shard"`
	// Replica is the replica name (replica) [Name].
	Replica string `yaml:"replica"`
}

func (n *ClickHouseNode) setDefaults() { n.Shard = 1 }

// Keeper kinds.
const (
	KeeperKindZooKeeper        = "zookeeper"
	KeeperKindClickHouseKeeper = "clickhouse-keeper"
)

var keeperCommands = []string{"ruok", "mntr", "srvr", "isro", "cons", "wchs", "dirs", "conf"}

// DefaultKeeperCommands returns the four-letter-word commands chmedic may
// send to Keeper nodes, which is also the default of Keeper.Commands: ruok,
// mntr, srvr, isro, cons, wchs, dirs, conf.
func DefaultKeeperCommands() []string { return slices.Clone(keeperCommands) }

// Keeper is a ZooKeeper or ClickHouse Keeper ensemble.
type Keeper struct {
	// Kind is zookeeper or clickhouse-keeper (kind) [zookeeper].
	Kind string `yaml:"kind"`
	// Nodes are the ensemble members (nodes); at least one, names unique.
	Nodes []KeeperNode `yaml:"nodes"`
	// Commands are the four-letter-word commands chmedic may send
	// (commands) [all of DefaultKeeperCommands]; a subset of those.
	Commands []string `yaml:"commands"`
}

// Allows reports whether the four-letter-word command cmd may be sent.
func (k Keeper) Allows(cmd string) bool { return slices.Contains(k.Commands, cmd) }

// KeeperNode is one ZooKeeper / Keeper server.
type KeeperNode struct {
	// Name (name); required, unique within the ensemble, [a-zA-Z0-9_.-]+.
	Name string `yaml:"name"`
	// Address is host:port of the client port (address); required.
	Address string `yaml:"address"`
}

// Slack configures posting to Slack.
type Slack struct {
	// BotToken (bot_token_file or bot_token_env); optional. When unset,
	// chmedic logs messages instead of posting them.
	BotToken Secret `yaml:"bot_token"`
	// SigningSecret verifies Slack interaction requests
	// (signing_secret_file or signing_secret_env).
	SigningSecret Secret `yaml:"signing_secret"`
	// Channel is the default channel (channel); required when BotToken is
	// set.
	Channel string `yaml:"channel"`
	// APIURL is the Slack Web API base URL (api_url)
	// [https://slack.com/api/]; always ends with "/".
	APIURL string `yaml:"api_url"`
	// Routes choose a channel by alert labels (routes); first match wins.
	Routes []SlackRoute `yaml:"routes"`
	// StormThreshold is the number of alert groups for one cluster within
	// StormWindow that are folded into one incident message
	// (storm_threshold) [3].
	StormThreshold int `yaml:"storm_threshold"`
	// StormWindow (storm_window) [2m].
	StormWindow time.Duration `yaml:"storm_window"`

	// Interactivity: how Slack's clicks and slash commands reach chmedic
	// (validated in slack_interactivity.go).
	//
	// PublicURL is chmedic's base URL as Slack reaches it (public_url), e.g.
	// https://chmedic.example.com; Slack posts clicks to
	// PublicURL + "/slack/interactions". Requires SigningSecret.
	PublicURL string `yaml:"public_url"`
	// SocketMode receives clicks over Slack's Socket Mode websocket instead
	// (socket_mode) [false]: no public endpoint; needs AppToken.
	SocketMode bool `yaml:"socket_mode"`
	// AppToken is the app-level token (xapp-, scope connections:write) for
	// Socket Mode (app_token_file or app_token_env).
	AppToken Secret `yaml:"app_token"`
	// SlashCommand, when set (slash_command, e.g. "/chmedic"), is declared
	// in the app manifest and delivered to chmedic.
	SlashCommand string `yaml:"slash_command"`
	// AppName is the Slack app's and bot user's name in the manifest
	// (app_name) [chmedic].
	AppName string `yaml:"app_name"`
	// UserGroupCacheTTL is how long a user group's members (approvers given
	// as groups) are reused (usergroup_cache_ttl) [5m].
	UserGroupCacheTTL time.Duration `yaml:"usergroup_cache_ttl"`
	// RefireWindow (refire_window) [1h]: a group that fires again within
	// it after it resolved updates its message in place and broadcasts the
	// thread note to the channel; later, it gets a new message linking the
	// previous one. 0: always a new message.
	RefireWindow time.Duration `yaml:"refire_window"`
	// Commands is who may use the slash command (commands); see
	// slack_commands.go.
	Commands SlackCommands `yaml:"commands"`

	// Storm-proof output (validated in slack_storm.go).
	//
	// CoalesceWindow (coalesce_window) [3s]: a message is written (posted
	// or updated) at most once per window; the changes within it are
	// coalesced into one update carrying the latest version. 0: updates go
	// out as soon as Slack's rate limits allow.
	CoalesceWindow time.Duration `yaml:"coalesce_window"`
	// SummaryInterval (summary_interval) [1m]: an incident's thread gets
	// at most one summary reply per interval, batching its groups' changes,
	// instead of a reply per group.
	SummaryInterval time.Duration `yaml:"summary_interval"`
	// PostBurst (post_burst) [3]: posts one channel may take at once
	// before they are paced at one per second (Slack's per-channel limit
	// allows short bursts).
	PostBurst int `yaml:"post_burst"`
}

// Enabled reports whether chmedic posts to Slack (a bot token is set).
func (s *Slack) Enabled() bool { return s.BotToken.IsSet() }

// SlackRoute sends alerts whose labels match to Channel.
type SlackRoute struct {
	// Match are Alertmanager label matchers (match), ANDed; at least one.
	Match []string `yaml:"match"`
	// Matchers are Match parsed.
	Matchers []*labels.Matcher `yaml:"-"`
	// Channel (channel); required.
	Channel string `yaml:"channel"`
}

// Playbooks configures extra playbooks.
type Playbooks struct {
	// Dir is a directory of extra or overriding playbook YAML files (dir);
	// optional, resolved against the configuration file's directory.
	Dir string `yaml:"dir"`
}

func defaults() *Config {
	return &Config{
		ListenAddress:   "127.0.0.1:9135",
		ShutdownTimeout: 15 * time.Second,
		Log:             Log{Level: "info", Format: "text"},
		Store:           Store{Path: "chmedic.db", Retention: 7 * 24 * time.Hour},
		Webhook: Webhook{
			MaxBodyBytes: 4 * MiB,
			QueueSize:    256,
			Workers:      4,
			DedupWindow:  5 * time.Minute,
		},
		Diagnosis: Diagnosis{
			ProbeTimeout:         2 * time.Second,
			Budget:               5 * time.Second,
			MaxConcurrentPerNode: 2,
			CacheTTL:             15 * time.Second,
			DDLStormWindow:       10 * time.Minute,
			Thresholds: Thresholds{
				KeeperLatencyWarn:         10 * time.Millisecond,
				KeeperLatencyCrit:         100 * time.Millisecond,
				ReplicaDelayWarn:          5 * time.Minute,
				ReplicationQueueTriesWarn: 5,
				ReplicationQueueTriesCrit: 50,
				DDLStuckAfter:             5 * time.Minute,
				DDLStormCount:             50,
				OutstandingRequestsWarn:   10,
				OutstandingRequestsCrit:   100,
				ConnectionsRatioWarn:      0.8,
				FDRatioWarn:               0.8,
				ZnodeCountWarn:            1000000,
				ReplicatedTablesWarn:      1000,
				ZxidWarnShare:             0.9,
			},
		},
		Slack: Slack{
			APIURL:         "https://slack.com/api/",
			StormThreshold: 3,
			StormWindow:    2 * time.Minute,
			// interactivity
			AppName:           "chmedic",
			UserGroupCacheTTL: 5 * time.Minute,
			RefireWindow:      time.Hour,
			// storm-proof output
			CoalesceWindow:  3 * time.Second,
			SummaryInterval: time.Minute,
			PostBurst:       3,
		},
		Digests: defaultDigests(),
	}
}

// Load reads, decodes and validates the configuration file at path, reading
// secrets from the process environment and the file system. Relative paths
// in it are resolved against path's directory (made absolute). The error,
// when the file could be read, is Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	return parse(path, dir, data, os.LookupEnv, os.ReadFile)
}

// Parse decodes and validates a configuration read from filename. env looks
// up environment variables for "*_env" keys (nil: none are set); readFile
// reads "*_file" secrets (nil: os.ReadFile). Relative paths are resolved
// against filepath.Dir(filename). The error is Errors.
func Parse(filename string, data []byte, env func(string) (string, bool), readFile func(string) ([]byte, error)) (*Config, error) {
	return parse(filename, filepath.Dir(filename), data, env, readFile)
}

// ClusterFor returns the cluster an alert with label set lset belongs to:
// the first cluster with a non-empty match whose matchers all match, else
// the default cluster (the one with an empty match), else false.
func (c *Config) ClusterFor(lset map[string]string) (*Cluster, bool) {
	var def *Cluster
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		if cl.IsDefault() {
			if def == nil {
				def = cl
			}
			continue
		}
		if matchAll(cl.Matchers, lset) {
			return cl, true
		}
	}
	return def, def != nil
}

// Cluster returns the cluster with the given name.
func (c *Config) Cluster(name string) (*Cluster, bool) {
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			return &c.Clusters[i], true
		}
	}
	return nil, false
}

// ChannelFor returns the Slack channel for an alert with label set lset
// belonging to cluster (which may be nil): the channel of the first route
// whose matchers all match, else the cluster's slack_channel, else
// Slack.Channel.
func (s *Slack) ChannelFor(cluster *Cluster, lset map[string]string) string {
	for _, r := range s.Routes {
		if matchAll(r.Matchers, lset) {
			return r.Channel
		}
	}
	if cluster != nil && cluster.SlackChannel != "" {
		return cluster.SlackChannel
	}
	return s.Channel
}

// matchAll reports whether every matcher matches lset; a missing label
// matches as the empty string, as in Alertmanager.
func matchAll(ms []*labels.Matcher, lset map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(lset[m.Name]) {
			return false
		}
	}
	return true
}
