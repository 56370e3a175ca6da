package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

// ClusterActions configures the actions chmedic may run on one cluster
// (clusters[].actions): the credentials SQL actions use, and one section per
// action kind (actions.<kind>). Which keys an action kind needs is declared
// by the kind itself (package actions); `chmedic check` refuses a config
// where an action a playbook offers lacks one.
type ClusterActions struct {
	// ClickHouse are the credentials of the SQL the actions run
	// (clickhouse), separate from the read-only probe user.
	ClickHouse ActionsClickHouse `yaml:"clickhouse"`
	// CollectLogs configures the collect_logs action (collect_logs).
	CollectLogs CollectLogs `yaml:"collect_logs"`
	// DDLFreeze configures ddl_freeze and ddl_unfreeze (ddl_freeze).
	DDLFreeze DDLFreeze `yaml:"ddl_freeze"`
	// RollingRestart configures the rolling_restart action
	// (rolling_restart); see rolling_restart.go.
	RollingRestart RollingRestart `yaml:"rolling_restart"`
}

// ActionsClickHouse are the ClickHouse credentials of actions.
type ActionsClickHouse struct {
	// User (user); no default: an action that runs SQL needs it.
	User string `yaml:"user"`
	// Password (password_file or password_env); optional.
	Password Secret `yaml:"password"`
}

// Collect-logs source names (actions.collect_logs.sources).
const (
	SourceTextLog             = "text_log"
	SourceQueryLog            = "query_log"
	SourceZooKeeperLog        = "zookeeper_log"
	SourcePartLog             = "part_log"
	SourceReplicas            = "replicas"
	SourceReplicationQueue    = "replication_queue"
	SourceDistributedDDLQueue = "distributed_ddl_queue"
	SourceZooKeeperConnection = "zookeeper_connection"
	SourceEvents              = "events"
	SourceServerLog           = "server_log"
	SourceKeeper4lw           = "keeper_4lw"
	SourceKeeperLog           = "keeper_log"
)

var collectSources = []string{
	SourceTextLog, SourceQueryLog, SourceZooKeeperLog, SourcePartLog,
	SourceReplicas, SourceReplicationQueue, SourceDistributedDDLQueue,
	SourceZooKeeperConnection, SourceEvents, SourceServerLog,
	SourceKeeper4lw, SourceKeeperLog,
}

// CollectLogSources returns every source collect_logs knows, in collection
// order per node; it is also the default of CollectLogs.Sources.
func CollectLogSources() []string { return slices.Clone(collectSources) }

// CollectLogs configures the collect_logs action.
type CollectLogs struct {
	// Command is an argv template (command) run once per ClickHouse node
	// whose standard output is the node's server log; each element is a Go
	// template with {{.Host}} {{.Name}} {{.Shard}} {{.Replica}} {{.Since}}
	// {{.Until}} {{.SinceUnix}} {{.UntilUnix}}. Never run through a shell.
	Command []string `yaml:"command"`
	// Path is a file glob template (path) for a co-located chmedic, same
	// fields as Command; .gz files are read decompressed. Not with Command.
	Path string `yaml:"path"`
	// KeeperCommand and KeeperPath are the same for each coordination node
	// (keeper_command, keeper_path); {{.Shard}} is 0 and {{.Replica}} "".
	KeeperCommand []string `yaml:"keeper_command"`
	KeeperPath    string   `yaml:"keeper_path"`
	// Timeout bounds one command (timeout) [30s].
	Timeout time.Duration `yaml:"timeout"`
	// LogTimezone is the zone of log-line timestamps that carry none
	// (log_timezone) [Local]: an IANA name, "UTC" or "Local".
	LogTimezone string `yaml:"log_timezone"`
	// WindowBefore and WindowAfter bound the window around the alert's
	// start (window_before, window_after) [10m each].
	WindowBefore time.Duration `yaml:"window_before"`
	WindowAfter  time.Duration `yaml:"window_after"`
	// Sources are collected (sources) [all of CollectLogSources].
	Sources []string `yaml:"sources"`
	// MaxRows bounds the rows read from one system table (max_rows)
	// [10000].
	MaxRows int `yaml:"max_rows"`
	// QueryTimeout bounds one query; also its max_execution_time
	// (query_timeout) [10s].
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// MaxConcurrentPerNode bounds the queries in flight per node
	// (max_concurrent_per_node) [2]; 1 to 16.
	MaxConcurrentPerNode int `yaml:"max_concurrent_per_node"`
	// MaxSourceBytes caps one source's file (max_source_bytes) [10MiB].
	MaxSourceBytes ByteSize `yaml:"max_source_bytes"`
	// MaxBundleBytes caps the whole bundle (max_bundle_bytes) [50MiB].
	MaxBundleBytes ByteSize `yaml:"max_bundle_bytes"`
	// KeepBundles is how many bundles of the cluster are kept in the data
	// directory (keep_bundles) [20]; 0 keeps all.
	KeepBundles int `yaml:"keep_bundles"`
	// Retention deletes older bundles (retention) [168h]; 0 keeps them.
	Retention time.Duration `yaml:"retention"`
	// Upload attaches the bundle to the alert's Slack thread (upload)
	// [true].
	Upload bool `yaml:"upload"`
}

func (a *ClusterActions) setDefaults() {
	c := &a.CollectLogs
	c.Timeout = 30 * time.Second
	c.LogTimezone = "Local"
	c.WindowBefore = 10 * time.Minute
	c.WindowAfter = 10 * time.Minute
	c.Sources = CollectLogSources()
	c.MaxRows = 10000
	c.QueryTimeout = 10 * time.Second
	c.MaxConcurrentPerNode = 2
	c.MaxSourceBytes = 10 * MiB
	c.MaxBundleBytes = 50 * MiB
	c.KeepBundles = 20
	c.Retention = 7 * 24 * time.Hour
	c.Upload = true
	a.DDLFreeze.setDefaults()
	a.RollingRestart.setDefaults()
}

// Location returns LogTimezone as a location (Local when unknown).
func (c CollectLogs) Location() *time.Location {
	switch c.LogTimezone {
	case "", "Local":
		return time.Local
	case "UTC":
		return time.UTC
	}
	if loc, err := time.LoadLocation(c.LogTimezone); err == nil {
		return loc
	}
	return time.Local
}

// Wants reports whether source is collected.
func (c CollectLogs) Wants(source string) bool { return slices.Contains(c.Sources, source) }

// ErrorAt returns a FieldError for path (e.g.
// "clusters[0].actions.clickhouse.user") positioned at that key in the file
// the configuration was loaded from, or at the nearest enclosing key the
// file has (line 0 when the file cannot be read again). Checks made after
// loading (an action's unmet need) report through it.
func (c *Config) ErrorAt(path, msg string) *FieldError {
	fe := &FieldError{File: c.File, Path: path, Msg: msg}
	data, err := os.ReadFile(c.File)
	if err != nil {
		return fe
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return fe
	}
	n := doc.Content[0]
	fe.Line, fe.Col = n.Line, n.Column
	for _, seg := range splitPath(path) {
		at, next := childNode(n, seg)
		if next == nil {
			break
		}
		n = next
		fe.Line, fe.Col = at.Line, at.Column
	}
	return fe
}

// splitPath splits "a.b[2].c" into "a", "b", "[2]", "c".
func splitPath(p string) []string {
	var out []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				out = append(out, part)
				break
			}
			if i > 0 {
				out = append(out, part[:i])
			}
			j := strings.IndexByte(part, ']')
			if j < i {
				out = append(out, part[i:])
				break
			}
			out = append(out, part[i:j+1])
			part = part[j+1:]
		}
	}
	return out
}

// childNode returns the node to report for seg under n (a mapping's key)
// and the node to descend into (its value).
func childNode(n *yaml.Node, seg string) (at, value *yaml.Node) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if strings.HasPrefix(seg, "[") {
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil, nil
		}
		return n.Content[i], n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == seg {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

// CommandFields are the fields a command or path template may use; the
// validator renders every template with them.
type CommandFields struct {
	Host, Name, Replica  string
	Shard                int
	Since, Until         string
	SinceUnix, UntilUnix int64
}

// ParseArgv parses every element of an argv template strictly (an unknown
// field is an error when rendered).
func ParseArgv(argv []string) ([]*template.Template, error) {
	out := make([]*template.Template, len(argv))
	for i, a := range argv {
		t, err := template.New(fmt.Sprint(i)).Option("missingkey=error").Parse(a)
		if err != nil {
			return nil, fmt.Errorf("element %d %q: %w", i, a, err)
		}
		out[i] = t
	}
	return out, nil
}

func checkTemplates(argv []string) string {
	ts, err := ParseArgv(argv)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for i, t := range ts {
		b.Reset()
		if err := t.Execute(&b, CommandFields{Host: "h", Name: "n", Shard: 1}); err != nil {
			return fmt.Sprintf("element %d %q: %v", i, argv[i], err)
		}
	}
	return ""
}

func (d *decoder) validateActions(path string, a *ClusterActions) {
	d.validateRollingRestart(path, &a.RollingRestart)
	c := &a.CollectLogs
	p := path + ".collect_logs"
	if len(c.Command) > 0 && c.Path != "" {
		d.fail(p+".path", "cannot be combined with command; set only one")
	}
	if len(c.KeeperCommand) > 0 && c.KeeperPath != "" {
		d.fail(p+".keeper_path", "cannot be combined with keeper_command; set only one")
	}
	for _, f := range []struct {
		key  string
		argv []string
	}{{"command", c.Command}, {"keeper_command", c.KeeperCommand}} {
		if len(f.argv) == 0 {
			continue
		}
		if strings.TrimSpace(f.argv[0]) == "" {
			d.fail(p+"."+f.key+"[0]", "the program must not be empty")
		}
		if msg := checkTemplates(f.argv); msg != "" {
			d.fail(p+"."+f.key, "invalid template: %s", msg)
		}
	}
	for _, f := range []struct{ key, glob string }{{"path", c.Path}, {"keeper_path", c.KeeperPath}} {
		if f.glob == "" {
			continue
		}
		if msg := checkTemplates([]string{f.glob}); msg != "" {
			d.fail(p+"."+f.key, "invalid template: %s", msg)
		} else if _, err := filepath.Match(f.glob, ""); err != nil {
			d.fail(p+"."+f.key, "invalid glob %q: %v", f.glob, err)
		}
	}
	d.positive(p+".timeout", c.Timeout)
	if c.LogTimezone != "Local" && c.LogTimezone != "UTC" {
		if _, err := time.LoadLocation(c.LogTimezone); err != nil {
			d.fail(p+".log_timezone", "unknown time zone %q", c.LogTimezone)
		}
	}
	d.positive(p+".window_before", c.WindowBefore)
	d.positive(p+".window_after", c.WindowAfter)
	if c.WindowBefore > 24*time.Hour || c.WindowAfter > 24*time.Hour {
		d.fail(p+".window_before", "the window is at most 24h on each side")
	}
	for i, s := range c.Sources {
		sp := fmt.Sprintf("%s.sources[%d]", p, i)
		switch {
		case !slices.Contains(collectSources, s):
			d.fail(sp, "unknown source %q (known: %s)", s, strings.Join(collectSources, ", "))
		case slices.Index(c.Sources, s) < i:
			d.fail(sp, "duplicate source %q", s)
		}
	}
	d.between(p+".max_rows", c.MaxRows, 1, 10000000)
	d.positive(p+".query_timeout", c.QueryTimeout)
	d.between(p+".max_concurrent_per_node", c.MaxConcurrentPerNode, 1, 16)
	if c.MaxSourceBytes < KiB {
		d.fail(p+".max_source_bytes", "must be at least 1KiB, got %s", c.MaxSourceBytes)
	}
	if c.MaxBundleBytes < 64*KiB || c.MaxBundleBytes > GiB {
		d.fail(p+".max_bundle_bytes", "must be between 64KiB and 1GiB (Slack's file limit), got %s", c.MaxBundleBytes)
	}
	if c.KeepBundles < 0 {
		d.fail(p+".keep_bundles", "must not be negative, got %d", c.KeepBundles)
	}
	d.nonNegative(p+".retention", c.Retention)
}
