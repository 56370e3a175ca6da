package keeper

import (
	"fmt"
	"strings"
)

// Wchs is the parsed output of "wchs".
type Wchs struct {
	Connections  int64 // sessions holding at least one watch
	Paths        int64 // watched paths
	TotalWatches int64
}

// ParseWchs parses "N connections watching M paths\nTotal watches:K".
func ParseWchs(s string) (Wchs, error) {
	if err := refusal("wchs", s); err != nil {
		return Wchs{}, err
	}
	var w Wchs
	var sawSummary, sawTotal bool
	for _, ln := range lines(s) {
		t := strings.TrimSpace(ln)
		if rest, ok := strings.CutPrefix(t, "Total watches:"); ok {
			if n, ok := parseInt(rest); ok {
				w.TotalWatches, sawTotal = n, true
			}
			continue
		}
		f := strings.Fields(t)
		if len(f) == 5 && f[1] == "connections" && f[2] == "watching" && f[4] == "paths" {
			c, ok1 := parseInt(f[0])
			p, ok2 := parseInt(f[3])
			if ok1 && ok2 {
				w.Connections, w.Paths, sawSummary = c, p, true
			}
		}
	}
	if !sawSummary && !sawTotal {
		return Wchs{}, fmt.Errorf("%w: unrecognised wchs output", ErrMalformed)
	}
	return w, nil
}

// Dirs is the parsed output of "dirs" (ZooKeeper 3.5+, ClickHouse Keeper).
type Dirs struct {
	Flavor    Flavor
	DataBytes int64 // ZooKeeper datadir_size (snapshots) / ClickHouse Keeper snapshot_dir_size
	LogBytes  int64 // ZooKeeper logdir_size (transaction logs) / ClickHouse Keeper log_dir_size
}

// ParseDirs parses "dirs" output.
func ParseDirs(s string) (Dirs, error) {
	if err := refusal("dirs", s); err != nil {
		return Dirs{}, err
	}
	var d Dirs
	var seen int
	for _, ln := range lines(s) {
		k, v, ok := strings.Cut(strings.TrimSpace(ln), ":")
		if !ok {
			continue
		}
		n, ok := parseInt(v)
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "datadir_size":
			d.DataBytes, d.Flavor = n, FlavorZooKeeper
		case "logdir_size":
			d.LogBytes, d.Flavor = n, FlavorZooKeeper
		case "snapshot_dir_size":
			d.DataBytes, d.Flavor = n, FlavorClickHouseKeeper
		case "log_dir_size":
			d.LogBytes, d.Flavor = n, FlavorClickHouseKeeper
		default:
			continue
		}
		seen++
	}
	if seen == 0 {
		return Dirs{}, fmt.Errorf("%w: unrecognised dirs output", ErrMalformed)
	}
	return d, nil
}

// ParseIsro parses "isro": "ro" → true, "rw" → false. ZooKeeper answers
// "null" when it is not serving (ErrNotServing).
func ParseIsro(s string) (readOnly bool, err error) {
	if err := refusal("isro", s); err != nil {
		return false, err
	}
	switch strings.TrimSpace(s) {
	case "ro":
		return true, nil
	case "rw":
		return false, nil
	}
	return false, fmt.Errorf("%w: isro answered %q", ErrMalformed, clip(strings.TrimSpace(s), 64))
}

// ParseRuok returns nil when the answer is "imok". ZooKeeper says imok as
// long as the process runs, even without quorum: it proves liveness only.
func ParseRuok(s string) error {
	t := strings.TrimSpace(s)
	if t == "imok" {
		return nil
	}
	if t == "" {
		return fmt.Errorf("%w: no imok (ruok gets no answer when the server is in an error state)", ErrNoAnswer)
	}
	if err := refusal("ruok", s); err != nil {
		return err
	}
	return fmt.Errorf("%w: ruok answered %q", ErrMalformed, clip(t, 64))
}

// ParseEnvi parses "envi" ("Environment:" then key=value lines).
func ParseEnvi(s string) (map[string]string, error) {
	if err := refusal("envi", s); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, ln := range lines(s) {
		k, v, ok := strings.Cut(strings.TrimSpace(ln), "=")
		if ok && strings.TrimSpace(k) != "" {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: envi output has no key=value line", ErrMalformed)
	}
	return out, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
