package playbooks

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// knownProbes are the probes chmedic ships (the real list lives in
// playbooks/probe; the loader only sees it through Validator.Probe).
var knownProbes = []string{
	"clickhouse.ping", "clickhouse.keeper_latency", "clickhouse.keeper_sessions",
	"clickhouse.replicas", "clickhouse.replication_queue", "clickhouse.ddl_queue",
	"clickhouse.keeper_errors", "clickhouse.ddl_storm", "clickhouse.metadata",
	"clickhouse.interserver",
	"keeper.ruok", "keeper.mntr", "keeper.srvr", "keeper.isro", "keeper.cons",
	"keeper.wchs", "keeper.dirs", "keeper.conf",
}

// testValidator accepts the known probes and validates the three action
// kinds the way the actions package documents them.
func testValidator() Validator {
	return Validator{
		Probe:  func(name string) bool { return slices.Contains(knownProbes, name) },
		Action: validateAction,
	}
}

func validateAction(kind string, params map[string]string) error {
	var allowed map[string]func(string) error
	switch kind {
	case "ddl_freeze":
		allowed = map[string]func(string) error{
			"duration": durationUpTo(24 * time.Hour),
			"users":    commaList(nil),
		}
	case "rolling_restart":
		allowed = map[string]func(string) error{
			"max_unavailable": func(s string) error {
				n, err := strconv.Atoi(s)
				if err != nil || n < 1 {
					return fmt.Errorf("want a positive integer, got %q", s)
				}
				return nil
			},
			"wait_healthy": durationUpTo(time.Hour),
			"require_keeper_healthy": func(s string) error {
				if s != "true" && s != "false" {
					return fmt.Errorf("want true or false, got %q", s)
				}
				return nil
			},
		}
	case "collect_logs":
		allowed = map[string]func(string) error{
			"window":  durationUpTo(24 * time.Hour),
			"sources": commaList([]string{"clickhouse", "keeper"}),
		}
	default:
		return fmt.Errorf("unknown action kind %q", kind)
	}
	var errs []error
	for _, k := range sortedKeys(params) {
		check, ok := allowed[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown parameter %q", kind, k))
			continue
		}
		if err := check(params[k]); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %w", kind, k, err))
		}
	}
	return errors.Join(errs...)
}

func durationUpTo(limit time.Duration) func(string) error {
	return func(s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("want a duration like 30m, got %q", s)
		}
		if d <= 0 || d > limit {
			return fmt.Errorf("%s is out of range (0, %s]", d, limit)
		}
		return nil
	}
}

func commaList(allowed []string) func(string) error {
	return func(s string) error {
		for _, it := range strings.Split(s, ",") {
			it = strings.TrimSpace(it)
			if it == "" {
				return fmt.Errorf("empty item in %q", s)
			}
			if allowed != nil && !slices.Contains(allowed, it) {
				return fmt.Errorf("%q is not one of %s", it, strings.Join(allowed, ", "))
			}
		}
		return nil
	}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// mustBuiltins loads the built-in playbooks only.
func mustBuiltins(t *testing.T) *Set {
	t.Helper()
	s, err := Load("", testValidator())
	if err != nil {
		t.Fatalf("built-in playbooks do not load:\n%v", err)
	}
	return s
}

// loadErrors loads an override FS and returns the error lines.
func loadErrors(t *testing.T, s *Set, err error) []string {
	t.Helper()
	if err == nil {
		t.Fatalf("want errors, loaded %d playbooks", len(s.All()))
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("error is %T, want Errors: %v", err, err)
	}
	return strings.Split(err.Error(), "\n")
}
