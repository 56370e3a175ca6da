package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
)

const maxBodyLimit = 64 * MiB

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// finish fills in defaults that depend on other values and resolves
// relative paths.
func (d *decoder) finish(c *Config) {
	if c.Diagnosis.MaxExecutionTime == 0 {
		c.Diagnosis.MaxExecutionTime = c.Diagnosis.ProbeTimeout
	}
	for i := range c.Clusters {
		for j := range c.Clusters[i].ClickHouse.Nodes {
			n := &c.Clusters[i].ClickHouse.Nodes[j]
			if n.Replica == "" {
				n.Replica = n.Name
			}
		}
	}
	if checkHTTPURL(c.Slack.APIURL) == "" && !strings.HasSuffix(c.Slack.APIURL, "/") {
		c.Slack.APIURL += "/"
	}
	c.fillRollingRestart()
	c.Store.Path = d.resolvePath(c.Store.Path)
	c.Playbooks.Dir = d.resolvePath(c.Playbooks.Dir)
}

// validate checks every rule, recording all failures.
func (d *decoder) validate(c *Config) {
	if msg := checkAddress(c.ListenAddress, true); msg != "" {
		d.fail("listen_address", "%s", msg)
	}
	d.positive("shutdown_timeout", c.ShutdownTimeout)

	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		d.fail("log.level", "must be one of debug, info, warn, error (got %q)", c.Log.Level)
	}
	if !slices.Contains([]string{"text", "json"}, c.Log.Format) {
		d.fail("log.format", "must be one of text, json (got %q)", c.Log.Format)
	}
	if c.Store.Path == "" {
		d.fail("store.path", "is required")
	}
	d.nonNegative("store.retention", c.Store.Retention)

	w := c.Webhook
	if w.MaxBodyBytes <= 0 || w.MaxBodyBytes > maxBodyLimit {
		d.fail("webhook.max_body_bytes", "must be between 1 byte and %s (got %d)", maxBodyLimit, int64(w.MaxBodyBytes))
	}
	d.between("webhook.queue_size", w.QueueSize, 1, 100000)
	d.between("webhook.workers", w.Workers, 1, 256)
	d.nonNegative("webhook.dedup_window", w.DedupWindow)
	bearer := w.Auth.BearerToken.IsSet() || d.present("webhook.auth.bearer_token_file") || d.present("webhook.auth.bearer_token_env")
	if bearer && w.Auth.Basic != nil {
		d.fail("webhook.auth", "bearer_token_file/bearer_token_env and basic are mutually exclusive; configure only one")
	}
	if b := w.Auth.Basic; b != nil {
		if b.Username == "" {
			d.fail("webhook.auth.basic.username", "is required")
		}
		if !b.Password.IsSet() && !d.secretGiven("webhook.auth.basic.password") {
			d.fail("webhook.auth.basic.password_file", "is required (or password_env)")
		}
	}

	if c.Alertmanager.URL != "" {
		if msg := checkHTTPURL(c.Alertmanager.URL); msg != "" {
			d.fail("alertmanager.url", "%s", msg)
		}
	}

	d.validateDiagnosis(&c.Diagnosis)
	d.validateClusters(c.Clusters)
	d.validateSlack(&c.Slack)
	d.validateApprovals(&c.Approvals)
	d.validateDigests(c)
}

func (d *decoder) validateDiagnosis(g *Diagnosis) {
	d.positive("diagnosis.probe_timeout", g.ProbeTimeout)
	if g.Budget < g.ProbeTimeout {
		d.fail("diagnosis.budget", "must be at least probe_timeout (%s), got %s", fmtDuration(g.ProbeTimeout), fmtDuration(g.Budget))
	}
	d.between("diagnosis.max_concurrent_per_node", g.MaxConcurrentPerNode, 1, 16)
	d.nonNegative("diagnosis.cache_ttl", g.CacheTTL)
	if d.present("diagnosis.max_execution_time") && g.MaxExecutionTime < 0 {
		d.fail("diagnosis.max_execution_time", "must not be negative, got %s", fmtDuration(g.MaxExecutionTime))
	}
	d.positive("diagnosis.ddl_storm_window", g.DDLStormWindow)

	t := g.Thresholds
	const p = "diagnosis.thresholds."
	d.positive(p+"keeper_latency_warn", t.KeeperLatencyWarn)
	if t.KeeperLatencyCrit <= t.KeeperLatencyWarn {
		d.fail(p+"keeper_latency_crit", "must be greater than keeper_latency_warn (%s), got %s", fmtDuration(t.KeeperLatencyWarn), fmtDuration(t.KeeperLatencyCrit))
	}
	d.positive(p+"replica_delay_warn", t.ReplicaDelayWarn)
	d.atLeast(p+"replication_queue_tries_warn", t.ReplicationQueueTriesWarn, 1)
	if t.ReplicationQueueTriesCrit <= t.ReplicationQueueTriesWarn {
		d.fail(p+"replication_queue_tries_crit", "must be greater than replication_queue_tries_warn (%d), got %d", t.ReplicationQueueTriesWarn, t.ReplicationQueueTriesCrit)
	}
	d.positive(p+"ddl_stuck_after", t.DDLStuckAfter)
	d.atLeast(p+"ddl_storm_count", t.DDLStormCount, 1)
	d.atLeast(p+"outstanding_requests_warn", t.OutstandingRequestsWarn, 1)
	if t.OutstandingRequestsCrit <= t.OutstandingRequestsWarn {
		d.fail(p+"outstanding_requests_crit", "must be greater than outstanding_requests_warn (%d), got %d", t.OutstandingRequestsWarn, t.OutstandingRequestsCrit)
	}
	d.ratio(p+"connections_ratio_warn", t.ConnectionsRatioWarn)
	d.ratio(p+"fd_ratio_warn", t.FDRatioWarn)
	d.atLeast(p+"znode_count_warn", t.ZnodeCountWarn, 1)
	d.atLeast(p+"replicated_tables_warn", t.ReplicatedTablesWarn, 1)
	if t.ZxidWarnShare <= 0 || t.ZxidWarnShare >= 1 {
		d.fail(p+"zxid_warn_share", "must be greater than 0 and less than 1, got %g", t.ZxidWarnShare)
	}
}

func (d *decoder) validateClusters(cs []Cluster) {
	if len(cs) == 0 {
		d.fail("clusters", "at least one cluster is required")
		return
	}
	names := map[string]string{} // name → path of first use
	defaultCluster := ""
	for i := range cs {
		c := &cs[i]
		p := fmt.Sprintf("clusters[%d]", i)
		d.checkName(p+".name", c.Name, "cluster", names)
		c.Matchers = d.matchers(p+".match", c.Match)
		if len(c.Match) == 0 {
			if defaultCluster != "" {
				d.fail(p+".match", "only one cluster may have an empty match (the default cluster); %s already has one", defaultCluster)
			} else {
				defaultCluster = p
			}
		}
		d.checkChannel(p+".slack_channel", c.SlackChannel, false)

		ch := c.ClickHouse
		pc := p + ".clickhouse"
		if ch.User == "" {
			d.fail(pc+".user", "must not be empty")
		}
		if ch.Database == "" {
			d.fail(pc+".database", "must not be empty")
		}
		if ch.Discover && ch.ClusterName == "" {
			d.fail(pc+".cluster_name", "is required when discover is true")
		}
		if len(ch.Nodes) == 0 {
			d.fail(pc+".nodes", "at least one node is required")
		}
		nodeNames := map[string]string{}
		for j, n := range ch.Nodes {
			pn := fmt.Sprintf("%s.nodes[%d]", pc, j)
			d.checkName(pn+".name", n.Name, "node", nodeNames)
			d.checkNodeAddress(pn+".address", n.Address)
			d.atLeast(pn+".shard", n.Shard, 1)
		}

		k := c.Keeper
		pk := p + ".keeper"
		if k.Kind != KeeperKindZooKeeper && k.Kind != KeeperKindClickHouseKeeper {
			d.fail(pk+".kind", "must be one of %s, %s (got %q)", KeeperKindZooKeeper, KeeperKindClickHouseKeeper, k.Kind)
		}
		if len(k.Nodes) == 0 {
			d.fail(pk+".nodes", "at least one node is required")
		}
		keeperNames := map[string]string{}
		for j, n := range k.Nodes {
			pn := fmt.Sprintf("%s.nodes[%d]", pk, j)
			d.checkName(pn+".name", n.Name, "node", keeperNames)
			d.checkNodeAddress(pn+".address", n.Address)
		}
		if len(k.Commands) == 0 {
			d.fail(pk+".commands", "at least one command is required")
		}
		for j, cmd := range k.Commands {
			pcmd := fmt.Sprintf("%s.commands[%d]", pk, j)
			switch {
			case !slices.Contains(keeperCommands, cmd):
				d.fail(pcmd, "unknown command %q (allowed: %s)", cmd, strings.Join(keeperCommands, ", "))
			case slices.Index(k.Commands, cmd) < j:
				d.fail(pcmd, "duplicate command %q", cmd)
			}
		}
		d.validateActions(p+".actions", &c.Actions)
		d.validateDDLFreeze(p+".actions.ddl_freeze", c)
	}
}

func (d *decoder) validateSlack(s *Slack) {
	if s.BotToken.IsSet() && s.Channel == "" {
		d.fail("slack.channel", "is required when a bot token is set")
	}
	d.checkChannel("slack.channel", s.Channel, false)
	if msg := checkHTTPURL(s.APIURL); msg != "" {
		d.fail("slack.api_url", "%s", msg)
	}
	for i := range s.Routes {
		r := &s.Routes[i]
		p := fmt.Sprintf("slack.routes[%d]", i)
		if len(r.Match) == 0 {
			d.fail(p+".match", "at least one matcher is required")
		}
		r.Matchers = d.matchers(p+".match", r.Match)
		d.checkChannel(p+".channel", r.Channel, true)
	}
	d.atLeast("slack.storm_threshold", s.StormThreshold, 1)
	d.positive("slack.storm_window", s.StormWindow)
	d.validateSlackInteractivity(s)
	d.nonNegative("slack.refire_window", s.RefireWindow)
	d.validateSlackCommands(&s.Commands)
	d.validateSlackStorm(s)
}

// secretGiven reports whether any of the keys of the secret at path (path,
// path_file, path_env) appears in the file, so that a secret that failed to
// resolve is not also reported as missing.
func (d *decoder) secretGiven(path string) bool {
	for _, p := range []string{path, path + "_file", path + "_env"} {
		if _, ok := d.nodes[p]; ok {
			return true
		}
	}
	return false
}

func (d *decoder) matchers(path string, ms []string) []*labels.Matcher {
	var out []*labels.Matcher
	for i, s := range ms {
		m, err := labels.ParseMatcher(s)
		if err != nil {
			d.fail(fmt.Sprintf("%s[%d]", path, i), "invalid matcher %q: %v", s, err)
			continue
		}
		out = append(out, m)
	}
	return out
}

// checkName checks a required, unique name; seen maps names to the path of
// their first use.
func (d *decoder) checkName(path, name, what string, seen map[string]string) {
	switch {
	case name == "":
		d.fail(path, "is required")
	case !nameRE.MatchString(name):
		d.fail(path, "invalid %s name %q (use letters, digits, '_', '.' and '-')", what, name)
	case seen[name] != "":
		d.fail(path, "duplicate %s name %q (first used at line %d)", what, name, d.nodeFor(seen[name]).Line)
	default:
		seen[name] = path
	}
}

func (d *decoder) checkNodeAddress(path, addr string) {
	if addr == "" {
		d.fail(path, "is required")
		return
	}
	if msg := checkAddress(addr, false); msg != "" {
		d.fail(path, "%s", msg)
	}
}

func (d *decoder) checkChannel(path, ch string, required bool) {
	if ch == "" {
		if required {
			d.fail(path, "is required")
		}
		return
	}
	if strings.ContainsAny(ch, " \t\r\n,") {
		d.fail(path, "invalid Slack channel %q", ch)
	}
}

// checkAddress validates host:port; it returns a message or "".
func checkAddress(addr string, emptyHostOK bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("invalid address %q: want host:port", addr)
	}
	if host == "" && !emptyHostOK {
		return fmt.Sprintf("invalid address %q: host is empty", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("invalid address %q: port must be a number between 1 and 65535", addr)
	}
	return ""
}

// checkHTTPURL validates an absolute http or https URL; it returns a message
// or "".
func checkHTTPURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("invalid URL %q: want an absolute http or https URL", s)
	}
	return ""
}

func (d *decoder) positive(path string, v time.Duration) {
	if v <= 0 {
		d.fail(path, "must be greater than 0, got %s", fmtDuration(v))
	}
}

func (d *decoder) nonNegative(path string, v time.Duration) {
	if v < 0 {
		d.fail(path, "must not be negative, got %s", fmtDuration(v))
	}
}

func (d *decoder) between(path string, v, lo, hi int) {
	if v < lo || v > hi {
		d.fail(path, "must be between %d and %d, got %d", lo, hi, v)
	}
}

func (d *decoder) atLeast(path string, v, lo int) {
	if v < lo {
		d.fail(path, "must be at least %d, got %d", lo, v)
	}
}

func (d *decoder) ratio(path string, v float64) {
	if v <= 0 || v > 1 {
		d.fail(path, "must be greater than 0 and at most 1, got %g", v)
	}
}

// fmtDuration formats d like time.Duration.String without the trailing
// zero units: "5m" rather than "5m0s", "1h30m" rather than "1h30m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
