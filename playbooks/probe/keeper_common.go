package probe

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/keeper"
)

// Keeper probes evaluate the node's four-letter-word snapshot, which the
// engine takes once per round (sequentially, bounded, stopping at the first
// sign of a dead or hung node). They send nothing themselves.

// keeperAnswer returns the raw answer to cmd, or a Result saying why there
// is none (not requested, skipped, refused, failed).
func keeperAnswer(t *Target, cmd string) (string, *Result) {
	if t.Keeper == nil {
		return "", &Result{Status: Unknown, Summary: "no four-letter-word snapshot was taken"}
	}
	cr, ok := keeperCommand(t.Keeper, cmd)
	if !ok {
		return "", &Result{Status: Unknown, Skipped: fmt.Sprintf("%s is not in clusters[].keeper.commands", cmd)}
	}
	if cr.Skipped {
		return "", &Result{Status: Unknown, Skipped: strings.TrimPrefix(OneLine(cr.Err.Error(), 200), "skipped: ")}
	}
	if cr.Err != nil {
		r := &Result{Error: cr.Err.Error()}
		switch {
		case errors.Is(cr.Err, keeper.ErrNotWhitelisted), errors.Is(cr.Err, keeper.ErrNoAnswer) && cmd != "ruok":
			r.Status = Unknown
			r.Summary = fmt.Sprintf("%s is not allowed by the server's four-letter-word whitelist", cmd)
		case errors.Is(cr.Err, keeper.ErrNotServing):
			r.Status = Crit
			r.Summary = "not serving requests: this node has no quorum"
		case errors.Is(cr.Err, keeper.ErrTimeout):
			r.Status = Crit
			r.Summary = fmt.Sprintf("%s hung: accepted the connection but did not answer %s in time", t.Node, cmd)
		case errors.Is(cr.Err, keeper.ErrUnreachable):
			r.Status = Crit
			r.Summary = fmt.Sprintf("%s unreachable: %s", t.Node, OneLine(cr.Err.Error(), 200))
		default:
			r.Status = Crit
			r.Summary = fmt.Sprintf("%s failed: %s", cmd, OneLine(cr.Err.Error(), 200))
		}
		return cr.Raw, r
	}
	return cr.Raw, nil
}

func parseFailed(cmd string, err error) Result {
	return Result{Status: Unknown, Summary: fmt.Sprintf("could not parse the %s answer", cmd), Error: err.Error()}
}

// ms is a duration in float milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// keeperCommand finds one command's result in a snapshot.
func keeperCommand(s *keeper.Snapshot, cmd string) (keeper.CommandResult, bool) {
	if s == nil {
		return keeper.CommandResult{}, false
	}
	for _, r := range s.All {
		if r.Cmd == cmd {
			return r, true
		}
	}
	return keeper.CommandResult{}, false
}
