package keeper

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CommandResult is what one command of a Snapshot produced.
type CommandResult struct {
	Cmd      string
	Raw      string        // the text received (possibly partial or a refusal)
	Err      error         // transport error, refusal, parse error, or ErrSkipped
	Started  time.Time     // when the exchange began (zero when skipped)
	Duration time.Duration // the real time of the exchange, connect to close; 0 when skipped
	Skipped  bool          // not sent, see Err
}

// Result is a CommandResult plus the parsed value (the zero value when Err
// is set, except that parse errors leave whatever could not be parsed).
type Result[T any] struct {
	CommandResult
	Value T
}

// Snapshot is what [Client.Snapshot] learned about one node. A field is nil
// when its command was not requested.
type Snapshot struct {
	Addr     string
	Start    time.Time
	Duration time.Duration

	Ruok *Result[bool] // Value: the node said imok
	Mntr *Result[Mntr]
	Srvr *Result[Srvr]
	Stat *Result[Stat]
	Cons *Result[[]Conn]
	Wchs *Result[Wchs]
	Isro *Result[bool] // Value: read-only
	Dirs *Result[Dirs]
	Conf *Result[Conf]
	Envi *Result[map[string]string]

	// All lists every requested command in the order it was handled,
	// including invalid ones (Err wraps ErrInvalidCommand).
	All []CommandResult

	// Unreachable is set when the node could not be connected to or did not
	// answer in time; the commands after that one were skipped.
	Unreachable bool
}

// Err returns the first error of a command that was actually attempted, so
// a caller can tell "all fine" at a glance; nil if every command succeeded.
func (s Snapshot) Err() error {
	for _, r := range s.All {
		if r.Err != nil && !r.Skipped {
			return r.Err
		}
	}
	return nil
}

// Snapshot runs cmds (DefaultSnapshotCommands when empty) against one node,
// sequentially, one connection at a time: this tool must not add load to a
// struggling ensemble. Once the node proves unreachable or hung (connect
// failure or no answer in time) the remaining commands are skipped and
// recorded as "skipped: node unreachable", so a dead node costs one
// timeout. Any other per-command failure (not whitelisted, not serving,
// too large, unparsable) is recorded and the next command runs. Duplicate
// commands run once.
func (c *Client) Snapshot(ctx context.Context, addr string, cmds []string) Snapshot {
	if len(cmds) == 0 {
		cmds = DefaultSnapshotCommands()
	}
	snap := Snapshot{Addr: addr, Start: time.Now()}
	seen := map[string]bool{}
	var stopErr error // set once the node is written off

	for _, cmd := range cmds {
		if seen[cmd] {
			continue
		}
		seen[cmd] = true
		var r CommandResult
		r.Cmd = cmd
		switch {
		case commandProblem(cmd) != "":
			r.Err = &Error{Addr: addr, Cmd: cmd, Kind: ErrInvalidCommand, Msg: commandProblem(cmd)}
		case stopErr != nil:
			r.Skipped = true
			r.Err = stopErr
		default:
			r.Started = time.Now()
			r.Raw, r.Err = c.Command(ctx, addr, cmd)
			r.Duration = time.Since(r.Started)
			if e := skipReason(ctx, r.Err); e != "" {
				why := r.Err.Error()
				var kerr *Error
				if errors.As(r.Err, &kerr) && kerr.Msg != "" {
					why = kerr.Msg
				}
				stopErr = fmt.Errorf("%w: %s (%s: %s)", ErrSkipped, e, cmd, why)
				snap.Unreachable = snap.Unreachable || e == "node unreachable"
			}
		}
		snap.store(r)
	}
	snap.Duration = time.Since(snap.Start)
	return snap
}

// skipReason says why the remaining commands must not be sent, or "".
func skipReason(ctx context.Context, err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrUnreachable), errors.Is(err, ErrTimeout):
		if ctx.Err() != nil {
			return "context " + ctx.Err().Error()
		}
		return "node unreachable"
	case errors.Is(err, context.Canceled), ctx.Err() != nil:
		return "context " + context.Cause(ctx).Error()
	}
	return ""
}

// store parses r into its typed slot. A transport error or refusal leaves
// the value zero; a parse error is recorded in Err.
func (s *Snapshot) store(r CommandResult) {
	parse := func(f func(string) error) {
		if r.Err == nil && !r.Skipped {
			if err := f(r.Raw); err != nil {
				r.Err = fmt.Errorf("parse %s from %s: %w", r.Cmd, s.Addr, err)
			}
		}
	}
	switch r.Cmd {
	case "ruok":
		res := &Result[bool]{}
		parse(func(t string) error { err := ParseRuok(t); res.Value = err == nil; return err })
		res.CommandResult = r
		s.Ruok = res
	case "mntr":
		res := &Result[Mntr]{}
		parse(func(t string) (err error) { res.Value, err = ParseMntr(t); return })
		res.CommandResult = r
		s.Mntr = res
	case "srvr":
		res := &Result[Srvr]{}
		parse(func(t string) (err error) { res.Value, err = ParseSrvr(t); return })
		res.CommandResult = r
		s.Srvr = res
	case "stat":
		res := &Result[Stat]{}
		parse(func(t string) (err error) { res.Value, err = ParseStat(t); return })
		res.CommandResult = r
		s.Stat = res
	case "cons":
		res := &Result[[]Conn]{}
		parse(func(t string) (err error) { res.Value, err = ParseCons(t); return })
		res.CommandResult = r
		s.Cons = res
	case "wchs":
		res := &Result[Wchs]{}
		parse(func(t string) (err error) { res.Value, err = ParseWchs(t); return })
		res.CommandResult = r
		s.Wchs = res
	case "isro":
		res := &Result[bool]{}
		parse(func(t string) (err error) { res.Value, err = ParseIsro(t); return })
		res.CommandResult = r
		s.Isro = res
	case "dirs":
		res := &Result[Dirs]{}
		parse(func(t string) (err error) { res.Value, err = ParseDirs(t); return })
		res.CommandResult = r
		s.Dirs = res
	case "conf":
		res := &Result[Conf]{}
		parse(func(t string) (err error) { res.Value, err = ParseConf(t); return })
		res.CommandResult = r
		s.Conf = res
	case "envi":
		res := &Result[map[string]string]{}
		parse(func(t string) (err error) { res.Value, err = ParseEnvi(t); return })
		res.CommandResult = r
		s.Envi = res
	}
	s.All = append(s.All, r)
}
