package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/actions"
	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/incident"
	"github.com/chmedic/chmedic/internal/keeper"
	chslack "github.com/chmedic/chmedic/internal/slack"
	"github.com/chmedic/chmedic/playbooks"
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
	"github.com/chmedic/chmedic/playbooks/report"
)

// PlaybookValidator checks playbook probes and actions against what this
// binary implements.
func PlaybookValidator() playbooks.Validator {
	probes := probe.Builtin()
	return playbooks.Validator{
		Probe:  func(name string) bool { _, ok := probes[name]; return ok },
		Action: actions.Validate,
	}
}

// Thresholds converts the config's thresholds for the probes.
func Thresholds(cfg *config.Config) probe.Thresholds { return probe.FromConfig(cfg.Diagnosis) }

// BuildEngine opens bounded (lazy) connections to every configured node and
// returns the diagnosis engine and a function closing them. Nothing is
// dialled here: an unreachable cluster is a finding later, not a start-up
// failure. reg may be nil.
func BuildEngine(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*diagnose.Engine, func() error, error) {
	e, _, closeAll, err := buildEngine(cfg, log, reg)
	return e, closeAll, err
}

// buildEngine is BuildEngine that also returns the clusters (the digests
// read through the same bounded connections).
func buildEngine(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*diagnose.Engine, []*diagnose.Cluster, func() error, error) {
	var nodes []*clickhouse.Node
	closeAll := func() error {
		var errs []error
		for _, n := range nodes {
			errs = append(errs, n.Close())
		}
		return errors.Join(errs...)
	}
	var sent *prometheus.CounterVec
	if reg != nil {
		sent = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_clickhouse_queries_total", Help: "Queries sent to ClickHouse nodes by the probes, by node.",
		}, []string{"node"})
		reg.MustRegister(sent)
	}
	var clusters []*diagnose.Cluster
	var discoverers []*discoverer
	for _, c := range cfg.Clusters {
		dc := &diagnose.Cluster{Name: c.Name, KeeperCommands: c.Keeper.Commands, KeeperKind: c.Keeper.Kind}
		open := func(name, addr string) (*clickhouse.Node, error) {
			opts := []clickhouse.Option{}
			if sent != nil {
				opts = append(opts, clickhouse.WithQueryCounter(func(node string) { sent.WithLabelValues(node).Inc() }))
			}
			return clickhouse.Open(clickhouse.NodeConfig{
				Name: name, Addr: addr, User: c.ClickHouse.User, Password: c.ClickHouse.Password.Value(),
				Database: c.ClickHouse.Database, Secure: c.ClickHouse.Secure, DialTimeout: cfg.Diagnosis.ProbeTimeout,
				MaxConns: cfg.Diagnosis.MaxConcurrentPerNode, MaxExecutionTime: cfg.Diagnosis.MaxExecutionTime,
			}, opts...)
		}
		var seeds []*clickhouse.Node
		known := map[string]bool{}
		for _, n := range c.ClickHouse.Nodes {
			node, err := open(n.Name, n.Address)
			if err != nil {
				closeAll()
				return nil, nil, nil, fmt.Errorf("cluster %q node %s: %w", c.Name, n.Name, err)
			}
			nodes = append(nodes, node)
			seeds = append(seeds, node)
			known[n.Address] = true
			dc.ClickHouse = append(dc.ClickHouse, diagnose.ClickHouseNode{Name: n.Name, Addr: n.Address, Conn: node, Shard: n.Shard, Replica: n.Replica})
		}
		if c.ClickHouse.Discover {
			d := &discoverer{cluster: c.ClickHouse.ClusterName, seeds: seeds, known: known, open: open, now: time.Now, conns: map[string]*clickhouse.Node{}}
			discoverers = append(discoverers, d)
			dc.Discover = d.Discover
		}
		for _, k := range c.Keeper.Nodes {
			dc.Keeper = append(dc.Keeper, diagnose.KeeperNode{Name: k.Name, Addr: k.Address})
		}
		clusters = append(clusters, dc)
	}
	closeNodes := closeAll
	closeAll = func() error {
		for _, d := range discoverers {
			d.Close()
		}
		return closeNodes()
	}
	ttl := cfg.Diagnosis.CacheTTL
	if ttl == 0 {
		ttl = -1 // cache_ttl: 0 disables the cache; the engine reads 0 as "default"
	}
	engine := diagnose.New(clusters, diagnose.Options{
		ProbeTimeout: cfg.Diagnosis.ProbeTimeout,
		Budget:       cfg.Diagnosis.Budget,
		CacheTTL:     ttl,
		Thresholds:   Thresholds(cfg),
		Keeper:       &keeper.Client{Timeout: cfg.Diagnosis.ProbeTimeout},
		Log:          log,
		Registerer:   reg,
	})
	return engine, clusters, closeAll, nil
}

// RenderProcessor builds a processor for `chmedic render` (no store).
func RenderProcessor(cfg *config.Config, log *slog.Logger, offline bool) (*incident.Processor, func() error, error) {
	pbs, err := playbooks.Load(cfg.Playbooks.Dir, PlaybookValidator())
	if err != nil {
		return nil, nil, err
	}
	p := &incident.Processor{Config: cfg, Playbooks: pbs, Log: log}
	if offline {
		return p, func() error { return nil }, nil
	}
	engine, closeEngine, err := BuildEngine(cfg, log, nil)
	if err != nil {
		return nil, nil, err
	}
	p.Diagnoser = engine
	return p, closeEngine, nil
}

// RenderBlocksJSON is the Block Kit payload of a report, indented.
func RenderBlocksJSON(r *report.Report) ([]byte, error) {
	msg := chslack.Render(r)
	return json.MarshalIndent(struct {
		Text   string `json:"text"`
		Blocks any    `json:"blocks"`
	}{msg.Text, msg.Blocks}, "", "  ")
}
