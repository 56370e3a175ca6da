package keeper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Defaults used by a zero Client.
const (
	DefaultTimeout          = 2 * time.Second
	DefaultMaxResponseBytes = 4 << 20
)

// Sentinel errors. A *Error returned by [Client.Command] unwraps to exactly
// one of these (or to context.Canceled), plus the underlying cause.
var (
	// ErrInvalidCommand: the word is not one this package agrees to send.
	// Nothing was sent.
	ErrInvalidCommand = errors.New("command not allowed")
	// ErrInvalidAddress: the address is not host:port. Nothing was sent.
	ErrInvalidAddress = errors.New("invalid address")
	// ErrUnreachable: the TCP connection could not be established
	// (refused, no route, DNS failure, or the connect itself timed out).
	ErrUnreachable = errors.New("node unreachable")
	// ErrTimeout: the server accepted the connection but did not finish
	// answering in time (a hung or overloaded server).
	ErrTimeout = errors.New("timed out waiting for the answer")
	// ErrNotWhitelisted: ZooKeeper refused the word because it is not in
	// 4lw.commands.whitelist.
	ErrNotWhitelisted = errors.New("command not in the server's four-letter-word whitelist")
	// ErrNotServing: the process is up but not serving requests (typically
	// no quorum / no leader).
	ErrNotServing = errors.New("server is not currently serving requests")
	// ErrNoAnswer: the server closed the connection without sending a byte.
	ErrNoAnswer = errors.New("server closed the connection without answering")
	// ErrResponseTooLarge: the answer exceeded Client.MaxResponseBytes; the
	// truncated text is returned with it.
	ErrResponseTooLarge = errors.New("response too large")
	// ErrMalformed: a parser could not make sense of the text.
	ErrMalformed = errors.New("malformed four-letter-word output")
	// ErrSkipped: Snapshot did not run the command because the node had
	// already proved unreachable or hung (or the context ended).
	ErrSkipped = errors.New("skipped")
)

// Error is the error type returned by [Client.Command].
type Error struct {
	Addr string // the node, host:port
	Cmd  string // the four-letter word
	Kind error  // one of the sentinels above, or context.Canceled
	Err  error  // underlying cause (net error, ...); may be nil
	Msg  string // human explanation for an on-call engineer
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("keeper: ")
	b.WriteString(e.Cmd)
	if e.Addr != "" {
		b.WriteString(" on ")
		b.WriteString(e.Addr)
	}
	b.WriteString(": ")
	if e.Msg != "" {
		b.WriteString(e.Msg)
	} else if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	}
	if e.Err != nil && e.Err != e.Kind {
		b.WriteString(" (")
		b.WriteString(e.Err.Error())
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap lets errors.Is match both the sentinel and the underlying cause.
func (e *Error) Unwrap() []error {
	var out []error
	if e.Kind != nil {
		out = append(out, e.Kind)
	}
	if e.Err != nil && e.Err != e.Kind {
		out = append(out, e.Err)
	}
	return out
}

// supported lists the words this package sends: read-only and cheap
// (bounded by the number of connections at worst, for cons and stat).
var supported = []string{"ruok", "mntr", "srvr", "stat", "cons", "wchs", "isro", "dirs", "conf", "envi"}

// refused explains why well-known words are never sent.
var refused = map[string]string{
	"wchc": "wchc lists every watch by session; on a big server it is slow, holds the watch manager lock and can print megabytes",
	"wchp": "wchp lists every watch by path; on a big server it is slow, holds the watch manager lock and can print megabytes",
	"dump": "dump lists every session and ephemeral node; on a big server it is slow and huge",
	"srst": "srst resets the server statistics (it changes state)",
	"crst": "crst resets the connection statistics (it changes state)",
	"stmk": "stmk changes the trace mask (it changes state)",
	"gtmk": "gtmk is not useful for diagnosis",
	"kill": "kill stops old servers",
	"rcvr": "rcvr forces ClickHouse Keeper into recovery mode (it changes state)",
	"csnp": "csnp makes ClickHouse Keeper write a snapshot (it changes state and costs I/O)",
	"ydld": "ydld makes a ClickHouse Keeper leader yield leadership (it changes state)",
	"rqld": "rqld requests leadership on ClickHouse Keeper (it changes state)",
	"rclc": "rclc recalculates ClickHouse Keeper storage stats (expensive)",
	"clrs": "clrs cleans ClickHouse Keeper resources (it changes state)",
	"jmst": "jemalloc words are for developers",
	"jmfp": "jemalloc words are for developers",
	"jmep": "jemalloc words are for developers",
	"jmdp": "jemalloc words are for developers",
}

// SupportedCommands returns the four-letter words [Client.Command] agrees to
// send.
func SupportedCommands() []string { return slices.Clone(supported) }

// DefaultSnapshotCommands returns the words [Client.Snapshot] runs when given
// none: cheapest and most telling first, cons (size grows with the number
// of clients) last.
func DefaultSnapshotCommands() []string {
	return []string{"ruok", "srvr", "mntr", "isro", "conf", "wchs", "dirs", "cons"}
}

// ValidateCommand reports whether cmd is a word this package sends; the
// error explains why not (unwraps to [ErrInvalidCommand]).
func ValidateCommand(cmd string) error {
	if why := commandProblem(cmd); why != "" {
		return fmt.Errorf("%w: %s", ErrInvalidCommand, why)
	}
	return nil
}

func commandProblem(cmd string) string {
	if slices.Contains(supported, cmd) {
		return ""
	}
	if why, ok := refused[cmd]; ok {
		return fmt.Sprintf("%q is never sent: %s", cmd, why)
	}
	return fmt.Sprintf("%q is not one of %s", cmd, strings.Join(supported, ", "))
}

// Client sends four-letter words. The zero value is ready to use.
type Client struct {
	// Timeout bounds one command (connect + write + read). Default 2s.
	// The context deadline also applies, whichever is sooner.
	Timeout time.Duration
	// MaxResponseBytes bounds the answer; a longer one is truncated and
	// returned with ErrResponseTooLarge. Default 4 MiB.
	MaxResponseBytes int64
	// Dial opens the TCP connection. Default: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

func (c *Client) timeout() time.Duration {
	if c == nil || c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout
}

func (c *Client) maxBytes() int64 {
	if c == nil || c.MaxResponseBytes <= 0 {
		return DefaultMaxResponseBytes
	}
	return c.MaxResponseBytes
}

func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if c != nil && c.Dial != nil {
		return c.Dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// aLongTimeAgo is a deadline in the past, used to abort blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// Command sends one four-letter word to addr (host:port) over a fresh TCP
// connection and returns everything the server wrote before closing it.
//
// On error the returned text holds whatever was received (the refusal
// message for ErrNotWhitelisted / ErrNotServing, the truncated text for
// ErrResponseTooLarge, a partial answer for ErrTimeout).
func (c *Client) Command(ctx context.Context, addr, cmd string) (string, error) {
	fail := func(kind, cause error, msg string) *Error {
		return &Error{Addr: addr, Cmd: cmd, Kind: kind, Err: cause, Msg: msg}
	}
	if why := commandProblem(cmd); why != "" {
		return "", fail(ErrInvalidCommand, nil, why)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", fail(ErrInvalidAddress, err, "address must be host:port")
	}
	if err := ctx.Err(); err != nil {
		return "", fail(err, nil, "not sent: "+err.Error())
	}

	timeout := c.timeout()
	limit := timeout
	if dl, ok := ctx.Deadline(); ok {
		if rem := time.Until(dl); rem < limit {
			limit = rem
		}
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	within := roundDuration(limit)

	conn, err := c.dial(cctx, "tcp", addr)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return "", fail(context.Canceled, err, "canceled while connecting")
		}
		return "", fail(ErrUnreachable, err, dialMessage(err, cctx, within))
	}
	defer conn.Close()

	if dl, ok := cctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(cctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer stop()

	if _, err := conn.Write([]byte(cmd)); err != nil {
		if k, m, ok := ctxFailure(ctx, cctx, err, within, 0); ok {
			return "", fail(k, err, m)
		}
		return "", fail(ErrNoAnswer, err, "connection closed before the command could be sent"+noAnswerHint(cmd))
	}

	max := c.maxBytes()
	var buf bytes.Buffer
	_, rerr := buf.ReadFrom(io.LimitReader(conn, max+1))
	if int64(buf.Len()) > max {
		buf.Truncate(int(max))
		return buf.String(), fail(ErrResponseTooLarge, nil,
			fmt.Sprintf("answer exceeds %d bytes; truncated", max))
	}
	text := buf.String()
	if rerr != nil {
		if k, m, ok := ctxFailure(ctx, cctx, rerr, within, buf.Len()); ok {
			return text, fail(k, rerr, m)
		}
		if buf.Len() == 0 {
			return "", fail(ErrNoAnswer, rerr, "connection reset without an answer"+noAnswerHint(cmd))
		}
		// A reset after some data: keep what arrived, let the caller judge.
		return text, fail(ErrNoAnswer, rerr, fmt.Sprintf("connection reset after %d bytes", buf.Len()))
	}
	if err := classifyReply(cmd, text); err != nil {
		var msg string
		switch {
		case errors.Is(err, ErrNotWhitelisted):
			msg = fmt.Sprintf("not in 4lw.commands.whitelist (server said %q)", strings.TrimSpace(text))
		case errors.Is(err, ErrNotServing):
			msg = fmt.Sprintf("process is up but not serving requests, usually no quorum/leader (server said %q)", strings.TrimSpace(text))
		case errors.Is(err, ErrNoAnswer):
			msg = "server closed the connection without answering" + noAnswerHint(cmd)
		}
		return text, fail(errKind(err), nil, msg)
	}
	return text, nil
}

// ctxFailure maps an I/O error caused by the deadline or by cancellation.
// The connection deadline equals the context deadline, so the I/O timeout
// can be seen a moment before the context reports it: both count.
func ctxFailure(parent, cctx context.Context, err error, within time.Duration, got int) (error, string, bool) {
	if errors.Is(parent.Err(), context.Canceled) {
		return context.Canceled, "canceled while waiting for the answer", true
	}
	var ne net.Error
	if cctx.Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) && !(errors.As(err, &ne) && ne.Timeout()) {
		return nil, "", false
	}
	if got == 0 {
		return ErrTimeout, fmt.Sprintf("no answer within %s: server accepted the connection but did not reply", within), true
	}
	return ErrTimeout, fmt.Sprintf("answer incomplete after %s: received %d bytes, then the server stopped sending", within, got), true
}

func dialMessage(err error, cctx context.Context, within time.Duration) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens on that port (process down, or wrong port)"
	case errors.Is(cctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return fmt.Sprintf("could not connect within %s (host down, firewalled, or network partition)", within)
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	default:
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return "cannot resolve host name"
		}
		return "cannot connect"
	}
}

func noAnswerHint(cmd string) string {
	if cmd == "ruok" {
		return " (ruok gets no answer when the server is in an error state; ZooKeeper also drops connections beyond maxClientCnxns per client IP)"
	}
	return " (ClickHouse Keeper does this for a word missing from four_letter_word_white_list; ZooKeeper does it when this client IP already holds maxClientCnxns connections)"
}

func errKind(err error) error {
	for _, k := range []error{ErrNotWhitelisted, ErrNotServing, ErrNoAnswer, ErrMalformed} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

// roundDuration makes a duration readable in messages ("2s", "200ms").
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d <= 0:
		return 0
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

const (
	whitelistSuffix = "is not executed because it is not in the whitelist."
	zkNotServing    = "This ZooKeeper instance is not currently serving requests"
	chkNotServing   = "This instance is not currently serving requests"
)

// classifyReply recognises the refusals servers print instead of an answer.
// It returns nil for an ordinary answer.
func classifyReply(cmd, text string) error {
	t := strings.TrimSpace(text)
	switch {
	case t == "":
		return ErrNoAnswer
	case strings.HasSuffix(t, whitelistSuffix) && len(t) < 128:
		return fmt.Errorf("%w: %s", ErrNotWhitelisted, t)
	case t == zkNotServing || t == chkNotServing:
		return fmt.Errorf("%w: %s", ErrNotServing, t)
	case cmd == "isro" && t == "null":
		return fmt.Errorf("%w: isro answered null", ErrNotServing)
	}
	return nil
}
