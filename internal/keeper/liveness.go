package keeper

import (
	"errors"
	"strings"
)

// ParseFlavor reads a configured kind ("zookeeper", "clickhouse-keeper");
// anything else is FlavorUnknown.
func ParseFlavor(kind string) Flavor {
	switch Flavor(kind) {
	case FlavorZooKeeper:
		return FlavorZooKeeper
	case FlavorClickHouseKeeper:
		return FlavorClickHouseKeeper
	}
	return FlavorUnknown
}

// Answered reports whether the server sent anything in reply to the
// command: an answer, a refusal text ("... is not in the whitelist."), a
// "not currently serving" notice, even an unparsable or oversized one. Any
// of these proves the process is up.
func (r CommandResult) Answered() bool {
	return !r.Skipped && strings.TrimSpace(r.Raw) != ""
}

// Refused reports whether the server refused the word because its
// four-letter-word whitelist does not allow it. ZooKeeper says so in words
// ("<cmd> is not executed because it is not in the whitelist."); ClickHouse
// Keeper accepts the connection and closes it without a byte, which on
// ZooKeeper instead means the server is in an error state (ruok) or the
// client holds maxClientCnxns connections. So the kind decides how an empty
// answer reads.
func (r CommandResult) Refused(kind Flavor) bool {
	if r.Skipped || r.Err == nil {
		return false
	}
	if errors.Is(r.Err, ErrNotWhitelisted) {
		return true
	}
	return kind == FlavorClickHouseKeeper && errors.Is(r.Err, ErrNoAnswer) && strings.TrimSpace(r.Raw) == ""
}

// Liveness is what a snapshot proves about the process.
type Liveness struct {
	// Alive: at least one word was answered (a refusal counts), or, on
	// ClickHouse Keeper, refused by its whitelist after accepting the
	// connection.
	Alive bool
	// AnsweredBy is the first word that got a real answer, else the first
	// one refused ("" when not alive).
	AnsweredBy string
	// Tried counts the words actually sent (not skipped, not invalid).
	Tried int
	// Refused lists the words the whitelist refused, in order.
	Refused []string
}

// Liveness reads the snapshot for proof of life. A node is down only when
// every word tried failed to connect, timed out or got nothing back (and,
// on ZooKeeper, an empty answer is not a refusal).
func (s Snapshot) Liveness(kind Flavor) Liveness {
	var l Liveness
	firstRefused := false // AnsweredBy is a refused word
	for _, r := range s.All {
		if r.Skipped || errors.Is(r.Err, ErrInvalidCommand) {
			continue
		}
		l.Tried++
		refused := r.Refused(kind)
		if refused {
			l.Refused = append(l.Refused, r.Cmd)
		}
		switch {
		case !refused && r.Answered() && (!l.Alive || firstRefused):
			// A real answer names the liveness better than a refusal.
			l.Alive, l.AnsweredBy, firstRefused = true, r.Cmd, false
		case refused && !l.Alive:
			l.Alive, l.AnsweredBy, firstRefused = true, r.Cmd, true
		}
	}
	return l
}

// Requested lists the valid words the snapshot was asked for, in order.
func (s Snapshot) Requested() []string {
	var out []string
	for _, r := range s.All {
		if !errors.Is(r.Err, ErrInvalidCommand) {
			out = append(out, r.Cmd)
		}
	}
	return out
}
