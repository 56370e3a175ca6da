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
// sign of a dead or hung node). They send nothing themselves; each reports
// the real start and duration of its word's exchange.

// Attributes every keeper probe may set.
const (
	// AttrKeeperKind is the kind the answers were read as: "zookeeper" or
	// "clickhouse-keeper" (clusters[].keeper.kind).
	AttrKeeperKind = "keeper_kind"
	// AttrRefusedWord is set on a result whose word the server's
	// whitelist refused; the result is then not available, not a finding.
	AttrRefusedWord = "refused_word"
	// AttrRequestedWords lists, comma-separated, every word chmedic asked
	// the node for (what the whitelist should allow).
	AttrRequestedWords = "requested_words"
)

// KeeperKind is the kind a probe reads the node's answers as: the
// configured kind, else what the server says it is, else ZooKeeper.
func KeeperKind(t *Target) keeper.Flavor {
	if t.KeeperKind != keeper.FlavorUnknown {
		return t.KeeperKind
	}
	if f := detectedFlavor(t.Keeper); f != keeper.FlavorUnknown {
		return f
	}
	return keeper.FlavorZooKeeper
}

// detectedFlavor is what the node's srvr or mntr answer says it is.
func detectedFlavor(s *keeper.Snapshot) keeper.Flavor {
	if s == nil {
		return keeper.FlavorUnknown
	}
	if s.Srvr != nil && s.Srvr.Err == nil && s.Srvr.Value.Flavor != keeper.FlavorUnknown {
		return s.Srvr.Value.Flavor
	}
	if s.Mntr != nil && s.Mntr.Err == nil && s.Mntr.Value.Flavor != keeper.FlavorUnknown {
		return s.Mntr.Value.Flavor
	}
	return keeper.FlavorUnknown
}

// kindName is the product name of a kind, for messages.
func kindName(k keeper.Flavor) string {
	if k == keeper.FlavorClickHouseKeeper {
		return "ClickHouse Keeper"
	}
	return "ZooKeeper"
}

// WhitelistAdvice says how to allow words on a server of kind k.
func WhitelistAdvice(k keeper.Flavor, words []string) string {
	list := strings.Join(words, ",")
	if k == keeper.FlavorClickHouseKeeper {
		return fmt.Sprintf("allow them in the Keeper config: <keeper_server><four_letter_word_white_list>%s</four_letter_word_white_list> (named four_letter_word_allow_list in newer releases), then restart Keeper", list)
	}
	return fmt.Sprintf("allow them in zoo.cfg: 4lw.commands.whitelist=%s (ZooKeeper 3.5+ allows only srvr by default), then restart ZooKeeper", list)
}

// keeperAnswer returns the raw answer to cmd, or a Result saying why there
// is none (not requested, skipped, refused, failed). Either way the result
// carries the exchange's real start and duration.
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
	kind := KeeperKind(t)
	if cr.Err != nil {
		r := &Result{Error: cr.Err.Error()}
		exchange(r, cr)
		r.SetAttr(AttrKeeperKind, string(kind))
		switch {
		case cr.Refused(kind):
			r.Status = Unknown
			r.Summary = fmt.Sprintf("%s refused by %s's four-letter-word whitelist", cmd, kindName(kind))
			r.SetAttr(AttrUnavailable, "refused by the four-letter-word whitelist")
			r.SetAttr(AttrRefusedWord, cmd)
			r.SetAttr(AttrRequestedWords, strings.Join(t.Keeper.Requested(), ","))
		case errors.Is(cr.Err, keeper.ErrNoAnswer):
			r.Status = Unknown
			r.Summary = fmt.Sprintf("%s: ZooKeeper closed the connection without answering (this client IP may hold maxClientCnxns connections, or the server is in an error state)", cmd)
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

// keeperResult starts the result of a word that was answered: the
// exchange's timing and the kind it is read as.
func keeperResult(t *Target, cmd string) Result {
	var r Result
	if cr, ok := keeperCommand(t.Keeper, cmd); ok {
		exchange(&r, cr)
	}
	r.SetAttr(AttrKeeperKind, string(KeeperKind(t)))
	return r
}

// exchange copies the real timing of one four-letter-word exchange.
func exchange(r *Result, cr keeper.CommandResult) {
	r.Started, r.Duration = cr.Started, cr.Duration
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

// answeredMntr is the node's parsed mntr answer, when it gave one.
func answeredMntr(t *Target) (keeper.Mntr, bool) {
	if t.Keeper == nil || t.Keeper.Mntr == nil || t.Keeper.Mntr.Err != nil {
		return keeper.Mntr{}, false
	}
	return t.Keeper.Mntr.Value, true
}
