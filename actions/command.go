package actions

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"time"

	"github.com/chmedic/chmedic/internal/config"
)

// The command mechanism every action shares (collect_logs' log commands,
// later rolling_restart's restart command): an argv template from the
// config, rendered per node, run directly (never through a shell, so a
// field value can never become shell syntax), bounded by a timeout, its
// output captured and capped.

// NodeFields are what a command template sees: the node's fields plus the
// action's own (the window for collect_logs).
type NodeFields = config.CommandFields

// FieldsFor returns the template fields of a ClickHouse node.
func FieldsFor(n config.ClickHouseNode) NodeFields {
	return NodeFields{Host: hostOf(n.Address), Name: n.Name, Shard: n.Shard, Replica: n.Replica}
}

// KeeperFieldsFor returns the template fields of a coordination node.
func KeeperFieldsFor(n config.KeeperNode) NodeFields {
	return NodeFields{Host: hostOf(n.Address), Name: n.Name}
}

// WithWindow sets the window fields: Since/Until as RFC 3339 in UTC, and as
// Unix seconds.
func WithWindow(f NodeFields, since, until time.Time) NodeFields {
	f.Since, f.Until = since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339)
	f.SinceUnix, f.UntilUnix = since.Unix(), until.Unix()
	return f
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// RenderArgv renders each element of an argv template with fields. An
// element stays one argument whatever the field values hold.
func RenderArgv(argv []string, fields NodeFields) ([]string, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	ts, err := config.ParseArgv(argv)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ts))
	var b strings.Builder
	for i, t := range ts {
		b.Reset()
		if err := t.Execute(&b, fields); err != nil {
			return nil, fmt.Errorf("element %d %q: %w", i, argv[i], err)
		}
		out[i] = b.String()
	}
	if out[0] == "" {
		return nil, errors.New("the program renders empty")
	}
	return out, nil
}

// Command is one command to run.
type Command struct {
	// Argv is the rendered command; Argv[0] is looked up in PATH.
	Argv []string
	// Timeout bounds the run (the context's deadline also applies).
	Timeout time.Duration
	// Stdout, when set, receives the standard output as it comes (e.g. a log
	// filter); otherwise it is captured into CommandResult.Output, up to
	// MaxOutput bytes.
	Stdout io.Writer
	// MaxOutput caps the captured standard output (default 1 MiB); the rest
	// is read and counted but dropped.
	MaxOutput int64
	// Stdin, when set, is the command's standard input (ddl_freeze's
	// override file); otherwise it reads nothing.
	Stdin io.Reader
	// OnStart, when set, is called with the pid once the command started
	// (it leads a process group of its own, whose id is the pid):
	// rolling_restart records it, so that a chmedic started after a crash
	// can find a command still running and enforce its timeout.
	OnStart func(pid int)
}

// CommandResult is what a command did.
type CommandResult struct {
	Argv      []string      `json:"argv"`
	ExitCode  int           `json:"exit_code"`
	Output    []byte        `json:"-"`
	Stderr    string        `json:"stderr,omitempty"`
	Bytes     int64         `json:"bytes"`     // standard output bytes read
	Truncated bool          `json:"truncated"` // Output holds only the first MaxOutput bytes
	Duration  time.Duration `json:"duration"`
	TimedOut  bool          `json:"timed_out,omitempty"`
}

// CommandRunner runs commands. ExecRunner is the real one; tests may
// substitute it.
type CommandRunner interface {
	Run(ctx context.Context, cmd Command) (CommandResult, error)
}

// ExecRunner runs commands as child processes with os/exec, each in a
// process group of its own (on unix), killed whole when it times out or
// its context ends.
type ExecRunner struct{}

const (
	defaultMaxOutput = 1 << 20
	maxStderr        = 8 << 10
)

// Run runs cmd. The error says why it did not succeed: it could not start,
// it timed out (the process is killed), or it exited non-zero (with the
// start of its standard error).
func (ExecRunner) Run(ctx context.Context, cmd Command) (CommandResult, error) {
	res := CommandResult{Argv: cmd.Argv}
	if len(cmd.Argv) == 0 || cmd.Argv[0] == "" {
		return res, errors.New("empty command")
	}
	if cmd.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cmd.Timeout)
		defer cancel()
	}
	limit := cmd.MaxOutput
	if limit <= 0 {
		limit = defaultMaxOutput
	}
	c := exec.CommandContext(ctx, cmd.Argv[0], cmd.Argv[1:]...)
	c.WaitDelay = 2 * time.Second // a child holding the pipes open cannot hang us
	// Its own process group, killed whole on timeout: no child outlives it.
	inOwnProcessGroup(c)
	var out capWriter
	if cmd.Stdout != nil {
		out.w = cmd.Stdout
	} else {
		out.buf, out.limit = &bytes.Buffer{}, limit
	}
	stderr := &capWriter{buf: &bytes.Buffer{}, limit: maxStderr}
	c.Stdout, c.Stderr = &out, stderr
	c.Stdin = cmd.Stdin
	start := time.Now()
	err := c.Start()
	if err == nil {
		if cmd.OnStart != nil {
			cmd.OnStart(c.Process.Pid)
		}
		err = c.Wait()
	}
	res.Duration = time.Since(start)
	res.Bytes, res.Truncated = out.n, out.dropped
	if out.buf != nil {
		res.Output = out.buf.Bytes()
	}
	res.Stderr = strings.TrimSpace(stderr.buf.String())
	if c.ProcessState != nil {
		res.ExitCode = c.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		res.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		return res, fmt.Errorf("command %s: %w after %s", res.Argv[0], ctx.Err(), res.Duration.Round(time.Millisecond))
	}
	if out.err != nil {
		return res, fmt.Errorf("command %s: output: %w", res.Argv[0], out.err)
	}
	if err != nil {
		msg := err.Error()
		if res.Stderr != "" {
			msg += ": " + firstLine(res.Stderr, 300)
		}
		return res, fmt.Errorf("command %s: %s", res.Argv[0], msg)
	}
	return res, nil
}

// capWriter forwards to w, or keeps the first limit bytes in buf; it counts
// everything.
type capWriter struct {
	w       io.Writer
	buf     *bytes.Buffer
	limit   int64
	n       int64
	dropped bool
	err     error
}

func (c *capWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	if c.w != nil {
		if c.err != nil {
			return len(p), nil // keep draining so the child does not block
		}
		if _, err := c.w.Write(p); err != nil {
			c.err = err
		}
		return len(p), nil
	}
	room := c.limit - int64(c.buf.Len())
	if room < int64(len(p)) {
		c.dropped = true
		if room > 0 {
			c.buf.Write(p[:room])
		}
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}

func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
