// Package actions owns chmedic's remediation actions: which kinds exist,
// their parameters and how disruptive they are (this file), and — as the
// approval work lands — each action's read-only plan, idempotent execution
// and verification gate.
package actions

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind describes one action kind.
type Kind struct {
	Name  string
	Label string // default button text
	// Danger actions disrupt service while they run; the button asks for
	// confirmation and is styled as dangerous.
	Danger  bool
	Confirm string
	Doc     string
	Params  []Param
}

// Param is one parameter of an action kind.
type Param struct {
	Name    string
	Default string
	Doc     string
	check   func(string) error
}

// Catalog returns the action kinds by name.
func Catalog() map[string]Kind {
	kinds := []Kind{
		{
			Name: "ddl_freeze", Label: "Freeze DDL",
			Doc:     "Forbid CREATE/ALTER/DROP for the cluster's application users (reversible; lifted automatically after the duration).",
			Confirm: "DDL (CREATE/ALTER/DROP) will be refused for the configured users until the freeze is lifted or expires. Inserts and selects keep working.",
			Params: []Param{
				{Name: "duration", Default: "30m", Doc: "how long the freeze lasts (at most 24h)", check: durationUpTo(24 * time.Hour)},
				{Name: "users", Doc: "comma-separated users to freeze (default: all configured application users)", check: userList},
			},
		},
		{
			Name: "ddl_unfreeze", Label: "Unfreeze DDL",
			Doc:     "Lift the cluster's active DDL freeze: give back exactly what it took, on every node, verified.",
			Confirm: "DDL will be allowed again for the frozen users.",
		},
		{
			Name: "rolling_restart", Label: "Rolling restart", Danger: true,
			Doc:     "Restart ClickHouse nodes one replica at a time, waiting for each to be healthy; refuses to start while the coordination service is degraded.",
			Confirm: "ClickHouse nodes will be restarted one at a time. Queries on a restarting node fail. Do not do this while the coordination service is still recovering.",
			Params: []Param{
				{Name: "max_unavailable", Default: "1", Doc: "nodes restarted at once: 1 (one node at a time, so never two replicas of a shard; restarting nodes of different shards together is not implemented)", check: intRange(1, 1)},
				{Name: "wait_healthy", Default: "5m", Doc: "bound on each wait after a node's restart (to answer, its tables writable, caught up) before stopping the rollout; caps actions.rolling_restart.timeouts.up/tables/catch_up", check: durationUpTo(time.Hour)},
				{Name: "require_keeper_healthy", Default: "true", Doc: "refuse to start unless the coordination service is healthy (latency below the stress threshold, quorum, no reconnection herd within herd_window)", check: boolean},
				{Name: "alert_node", Doc: "the ClickHouse node the alert is about: restarted last (or first, per actions.rolling_restart.order)", check: userList},
			},
		},
		{
			Name: "collect_logs", Label: "Collect logs",
			Doc:     "Gather ClickHouse and coordination logs for a window around the alert and attach them to the thread.",
			Confirm: "",
			Params: []Param{
				{Name: "window", Default: "10m", Doc: "collect from window before to window after the alert started", check: durationUpTo(6 * time.Hour)},
				{Name: "sources", Default: "clickhouse,keeper", Doc: "comma list of clickhouse, keeper", check: oneOf("clickhouse", "keeper")},
				{Name: "around", Doc: "RFC 3339 time the window is centred on (default: the alert group's earliest startsAt)", check: rfc3339},
			},
		},
	}
	m := make(map[string]Kind, len(kinds))
	for _, k := range kinds {
		m[k.Name] = k
	}
	return m
}

// Names lists the kinds, sorted.
func Names() []string {
	var ns []string
	for n := range Catalog() {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Validate checks an action's parameters against its kind.
func Validate(kind string, params map[string]string) error {
	k, ok := Catalog()[kind]
	if !ok {
		return fmt.Errorf("unknown action kind %q (known: %s)", kind, strings.Join(Names(), ", "))
	}
	known := map[string]Param{}
	for _, p := range k.Params {
		known[p.Name] = p
	}
	var names []string
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p, ok := known[n]
		if !ok {
			return fmt.Errorf("%s: unknown parameter %q", kind, n)
		}
		if p.check != nil {
			if err := p.check(params[n]); err != nil {
				return fmt.Errorf("%s: parameter %s: %w", kind, n, err)
			}
		}
	}
	return nil
}

// WithDefaults returns params completed with the kind's defaults.
func WithDefaults(kind string, params map[string]string) map[string]string {
	out := map[string]string{}
	if k, ok := Catalog()[kind]; ok {
		for _, p := range k.Params {
			if p.Default != "" {
				out[p.Name] = p.Default
			}
		}
	}
	for n, v := range params {
		out[n] = v
	}
	return out
}

func durationUpTo(maxD time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration: %q", s)
		}
		if d <= 0 || d > maxD {
			return fmt.Errorf("%s out of range (0, %s]", d, maxD)
		}
		return nil
	}
}

func intRange(lo, hi int) func(string) error {
	return func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%q: want an integer in [%d, %d]", s, lo, hi)
		}
		return nil
	}
}

func boolean(s string) error {
	if _, err := strconv.ParseBool(s); err != nil {
		return fmt.Errorf("%q: want true or false", s)
	}
	return nil
}

func rfc3339(s string) error {
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		return fmt.Errorf("%q: want an RFC 3339 time such as 2026-12-01T08:00:00Z", s)
	}
	return nil
}

func userList(s string) error {
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			return fmt.Errorf("empty user name in %q", s)
		}
	}
	return nil
}

func oneOf(allowed ...string) func(string) error {
	return func(s string) error {
		for _, v := range strings.Split(s, ",") {
			v = strings.TrimSpace(v)
			ok := false
			for _, a := range allowed {
				ok = ok || v == a
			}
			if !ok {
				return fmt.Errorf("%q: want a comma list of %s", v, strings.Join(allowed, ", "))
			}
		}
		return nil
	}
}
