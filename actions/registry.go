package actions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/keeper"
	"github.com/chmedic/chmedic/playbooks/diagnose"
)

// Registry is the actions this chmedic can run, by kind.
type Registry map[string]Action

// Deps are what actions need from the process around them.
type Deps struct {
	// OpenClickHouse opens a client of one node with the cluster's ACTIONS
	// credentials (actions.clickhouse); default OpenActionsNode.
	OpenClickHouse ClickHouseOpener
	// Keeper sends four-letter words (default: a zero keeper.Client).
	Keeper *keeper.Client
	// Commands runs command templates (default ExecRunner).
	Commands CommandRunner
	// DataDir is where actions keep files (log bundles under bundles/);
	// required.
	DataDir string
	// Uploader attaches files to Slack threads; nil: nothing is uploaded
	// (the bundle stays in DataDir, and the outcome says so).
	Uploader FileUploader
	// Freezes keeps DDL freezes and their timers (the store); without it
	// ddl_freeze and ddl_unfreeze are not available.
	Freezes FreezeStore
	// FreezeConns opens a node for ddl_freeze (default OpenFreezeConn).
	FreezeConns FreezeConnOpener
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
	// Diagnose returns a diagnosis of a cluster (the engine's shared,
	// bounded round); rolling_restart's coordination gates read it. Nil:
	// those gates refuse.
	Diagnose func(ctx context.Context, cluster string) (*diagnose.Diagnosis, error)
	// Busy reports whether another execution holds the cluster's lease
	// (the Runner's LeaseHolder); nil: not checked at plan time.
	Busy func(ctx context.Context, cluster string) (holder, executionID string, held bool, err error)
	// HTTPClient calls Alertmanager (silences); default http.DefaultClient.
	HTTPClient *http.Client
}

// NodeTuning bounds one action's client of a node.
type NodeTuning struct {
	// MaxConns is the number of queries in flight on the node.
	MaxConns int
	// QueryTimeout is the default deadline of a query and its
	// max_execution_time.
	QueryTimeout time.Duration
}

// ClickHouseOpener opens a ClickHouse client of node for an action.
type ClickHouseOpener func(cl *config.Cluster, node config.ClickHouseNode, tune NodeTuning) (*clickhouse.Node, error)

// OpenActionsNode opens node with the cluster's actions.clickhouse
// credentials (never the probe user's), over the probe section's database
// and TLS setting.
func OpenActionsNode(cl *config.Cluster, node config.ClickHouseNode, tune NodeTuning) (*clickhouse.Node, error) {
	a := cl.Actions.ClickHouse
	if a.User == "" {
		return nil, fmt.Errorf("cluster %q: actions.clickhouse.user is not set", cl.Name)
	}
	return clickhouse.Open(clickhouse.NodeConfig{
		Name:             node.Name,
		Addr:             node.Address,
		User:             a.User,
		Password:         a.Password.Value(),
		Database:         cl.ClickHouse.Database,
		Secure:           cl.ClickHouse.Secure,
		MaxConns:         tune.MaxConns,
		MaxExecutionTime: tune.QueryTimeout,
	}, clickhouse.WithDefaultTimeout(tune.QueryTimeout))
}

// FileUpload is one file to attach to a Slack thread.
type FileUpload struct {
	Path     string // local file
	Name     string // file name shown in Slack
	Title    string
	Channel  string // channel ID
	ThreadTS string // the thread's parent ts
	// Comment is posted with the file (the collection's summary).
	Comment string
}

// FileUploader attaches a file to a thread (Slack's files v2 flow:
// files.getUploadURLExternal, the upload, files.completeUploadExternal).
// internal/slack.Uploader implements it.
type FileUploader interface {
	UploadFile(ctx context.Context, f FileUpload) (fileID string, err error)
}

func (d *Deps) fill() {
	if d.OpenClickHouse == nil {
		d.OpenClickHouse = OpenActionsNode
	}
	if d.Keeper == nil {
		d.Keeper = &keeper.Client{}
	}
	if d.Commands == nil {
		d.Commands = ExecRunner{}
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.FreezeConns == nil {
		d.FreezeConns = OpenFreezeConn
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
}

// NewRegistry returns the actions implemented by this chmedic, configured
// from cfg. A kind in the catalog but not here (ddl_freeze until it
// lands) cannot be requested.
func NewRegistry(cfg *config.Config, deps Deps) (Registry, error) {
	if cfg == nil {
		return nil, errors.New("actions: no config")
	}
	if deps.DataDir == "" {
		return nil, errors.New("actions: no data directory")
	}
	deps.fill()
	reg := Registry{
		CollectLogsKind:    NewCollectLogs(cfg, deps),
		RollingRestartKind: NewRollingRestart(cfg, deps),
	}
	if deps.Freezes != nil {
		reg[DDLFreezeKind], reg[DDLUnfreezeKind] = NewDDLFreeze(cfg, deps), NewDDLUnfreeze(cfg, deps)
	}
	return reg, nil
}

// Need is a config key an action kind requires on a cluster.
type Need struct {
	// Key is under clusters[i].actions, e.g. "clickhouse.user".
	Key string
	// Why says what it is for.
	Why string
}

// needs declares, per action kind, what it requires of a cluster's config.
// A kind not listed needs nothing (or is not implemented yet).
var needs = map[string]func(cl *config.Cluster) []Need{
	CollectLogsKind:    collectLogsNeeds,
	DDLFreezeKind:      ddlFreezeNeeds,
	DDLUnfreezeKind:    ddlFreezeNeeds,
	RollingRestartKind: rollingRestartNeeds,
}

// optIn are the kinds whose needs `chmedic check` checks only once an
// approval policy enables them (the built-in playbooks offer ddl_freeze
// everywhere; a cluster without a freeze configured only gets a button
// that says it has no policy). Their plans refuse without them anyway.
var optIn = map[string]bool{DDLFreezeKind: true, DDLUnfreezeKind: true}

// Needs returns the config keys kind requires on cl that cl lacks.
func Needs(kind string, cl *config.Cluster) []Need {
	f, ok := needs[kind]
	if !ok {
		return nil
	}
	return f(cl)
}

// needsRefusal turns unmet needs into a plan-time refusal.
func needsRefusal(kind string, cl *config.Cluster) error {
	missing := Needs(kind, cl)
	if len(missing) == 0 {
		return nil
	}
	var parts []string
	for _, n := range missing {
		parts = append(parts, fmt.Sprintf("clusters[%s].actions.%s (%s)", cl.Name, n.Key, n.Why))
	}
	return &Refusal{Reason: fmt.Sprintf("%s is not configured on cluster %q: set %s", kind, cl.Name, strings.Join(parts, "; "))}
}

// CheckNeeds checks every cluster against the needs of the action kinds
// the playbooks offer (offeredBy: kind → the playbooks offering it), for
// `chmedic check`. The error is config.Errors, each naming the key.
func CheckNeeds(cfg *config.Config, offeredBy map[string][]string) error {
	kinds := make([]string, 0, len(offeredBy))
	for k := range offeredBy {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var errs config.Errors
	for i := range cfg.Clusters {
		cl := &cfg.Clusters[i]
		for _, kind := range kinds {
			if optIn[kind] {
				if _, ok := cfg.Approvals.Policies.For(kind); !ok {
					continue
				}
			}
			pbs := slices.Clone(offeredBy[kind])
			sort.Strings(pbs)
			pbs = slices.Compact(pbs)
			for _, n := range Needs(kind, cl) {
				path := fmt.Sprintf("clusters[%d].actions.%s", i, n.Key)
				errs = append(errs, cfg.ErrorAt(path, fmt.Sprintf("required by action %s, offered by playbook %s: %s", kind, strings.Join(pbs, ", "), n.Why)))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}
