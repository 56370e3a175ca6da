// Package clickhouse owns chmedic's connections to ClickHouse nodes: one
// bounded, lazily dialled native-protocol client per node (clickhouse-go/v2),
// plus the cached metadata (server version, which system tables and columns
// exist) that lets probes pick a query the server understands.
//
// Every query is bounded three ways: by its context deadline (a default one
// is applied when the caller gave none), by max_execution_time sent to the
// server, and by a per-node limit on queries in flight. A node that accepts
// TCP connections and never answers costs a caller at most its deadline.
//
// The package never writes: no PrepareBatch and no INSERT ... VALUES, which
// are broken against old servers such as 18.16.
package clickhouse

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Defaults for NodeConfig and the query context.
const (
	DefaultMaxConns     = 2
	DefaultDialTimeout  = 2 * time.Second
	DefaultQueryTimeout = 2 * time.Second
	DefaultPort         = "9000"
	DefaultMetadataTTL  = 10 * time.Minute
	// missingTableTTL bounds how long "no such system table" is believed.
	missingTableTTL = time.Minute
)

// NodeConfig says how to reach one ClickHouse node over the native protocol.
type NodeConfig struct {
	// Name identifies the node in errors and query counts (e.g. "ch-1").
	Name string
	// Addr is host:port of the native protocol (port 9000, or 9440 with TLS).
	Addr     string
	User     string
	Password string
	Database string
	// Secure dials TLS (server name from Addr; see WithTLSConfig).
	Secure bool
	// DialTimeout bounds the TCP connect and the protocol handshake
	// (default 2 s; the TCP connect also ends with the query context).
	DialTimeout time.Duration
	// MaxConns (K) is both the connection pool size and the number of
	// queries in flight on this node; the (K+1)th waits (default 2).
	MaxConns int
	// MaxExecutionTime caps the server-side max_execution_time of every
	// query. The setting sent is the smaller of this and the time left
	// before the context deadline, rounded up to whole seconds (at least 1).
	// Zero means: the context deadline alone decides.
	MaxExecutionTime time.Duration
}

// Option tunes a Node.
type Option func(*options)

type options struct {
	counter        func(node string)
	defaultTimeout time.Duration
	tlsConfig      *tls.Config
	metadataTTL    time.Duration
	now            func() time.Time
}

// WithQueryCounter calls fn with the node name each time a query is handed
// to the driver (metadata look-ups included), e.g. to increment a Prometheus
// counter vector.
func WithQueryCounter(fn func(node string)) Option {
	return func(o *options) { o.counter = fn }
}

// WithDefaultTimeout sets the deadline applied to a query whose context has
// none (default DefaultQueryTimeout).
func WithDefaultTimeout(d time.Duration) Option {
	return func(o *options) { o.defaultTimeout = d }
}

// WithMetadataTTL sets how long ServerVersion, HasTable and HasColumn
// answers are kept (default DefaultMetadataTTL): a node upgraded in place
// shows its new version and tables after at most this long. A system table
// found missing is looked for again after at most a minute, since some
// appear only after the server first writes to them (query_log).
func WithMetadataTTL(d time.Duration) Option {
	return func(o *options) { o.metadataTTL = d }
}

// WithTLSConfig sets the TLS configuration used when NodeConfig.Secure is
// set (e.g. a private CA). It is cloned.
func WithTLSConfig(c *tls.Config) Option {
	return func(o *options) { o.tlsConfig = c.Clone() }
}

// Node is a bounded client of one ClickHouse node. It is safe for
// concurrent use.
type Node struct {
	cfg  NodeConfig
	opts options
	conn driver.Conn
	// slots holds one token per query in flight (capacity MaxConns).
	slots chan struct{}
	sent  atomic.Int64

	mu      sync.Mutex
	version *Version
	tables  map[string]tableSet // database → its tables
	columns map[string]columnSet
	closed  bool
	// metaEpoch is when the cached metadata was first read; all of it is
	// dropped after metadataTTL.
	metaEpoch time.Time
}

type tableSet struct {
	read   time.Time
	full   bool // the whole database was listed (system)
	exists map[string]bool
}

type columnSet struct {
	exists map[string]bool
}

// Open prepares a client for one node. It does not dial: the first query
// does.
func Open(cfg NodeConfig, opts ...Option) (*Node, error) {
	if cfg.Addr == "" {
		return nil, fmt.Errorf("clickhouse node %q: no address", cfg.Name)
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		cfg.Addr = net.JoinHostPort(cfg.Addr, DefaultPort)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Addr
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxExecutionTime < 0 {
		cfg.MaxExecutionTime = 0
	}
	o := options{defaultTimeout: DefaultQueryTimeout, metadataTTL: DefaultMetadataTTL, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.defaultTimeout <= 0 {
		o.defaultTimeout = DefaultQueryTimeout
	}
	if o.metadataTTL <= 0 {
		o.metadataTTL = DefaultMetadataTTL
	}
	var tlsCfg *tls.Config
	if cfg.Secure {
		tlsCfg = o.tlsConfig
		if tlsCfg == nil {
			tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if tlsCfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(cfg.Addr)
			tlsCfg.ServerName = host
		}
	}
	dialTimeout := cfg.DialTimeout
	conn, err := ch.Open(&ch.Options{
		Protocol: ch.Native, // HTTP fails on old servers (18.16)
		Addr:     []string{cfg.Addr},
		Auth:     ch.Auth{Database: cfg.Database, Username: cfg.User, Password: cfg.Password},
		// The driver's own dialer ignores the context; this one does not,
		// and it ends a handshake the query's context outlives (see dialWatch).
		DialContext: func(ctx context.Context, addr string) (net.Conn, error) {
			d := &net.Dialer{Timeout: dialTimeout}
			var conn net.Conn
			var err error
			if tlsCfg != nil {
				conn, err = (&tls.Dialer{NetDialer: d, Config: tlsCfg}).DialContext(ctx, "tcp", addr)
			} else {
				conn, err = d.DialContext(ctx, "tcp", addr)
			}
			if err != nil {
				return nil, err
			}
			if w, ok := ctx.Value(dialWatchKey{}).(*dialWatch); ok {
				w.watch(conn)
			}
			return conn, nil
		},
		DialTimeout:     dialTimeout,
		MaxOpenConns:    cfg.MaxConns,
		MaxIdleConns:    cfg.MaxConns,
		ConnMaxLifetime: 10 * time.Minute,
		// A socket read never waits longer than this even if a context
		// were somehow ignored; contexts normally end reads much sooner.
		ReadTimeout: readTimeout(cfg, o),
		ClientInfo:  ch.ClientInfo{Products: []struct{ Name, Version string }{{Name: "chmedic", Version: "1"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse node %q (%s): %w", cfg.Name, cfg.Addr, err)
	}
	return &Node{
		cfg:     cfg,
		opts:    o,
		conn:    conn,
		slots:   make(chan struct{}, cfg.MaxConns),
		tables:  map[string]tableSet{},
		columns: map[string]columnSet{},
	}, nil
}

func readTimeout(cfg NodeConfig, o options) time.Duration {
	d := o.defaultTimeout
	if cfg.MaxExecutionTime > d {
		d = cfg.MaxExecutionTime
	}
	return d + 30*time.Second
}

// Name is the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// Addr is the node's host:port.
func (n *Node) Addr() string { return n.cfg.Addr }

// QueriesSent counts the queries handed to the driver so far.
func (n *Node) QueriesSent() int64 { return n.sent.Load() }

// Close closes the node's connections. Queries after Close fail.
func (n *Node) Close() error {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	return n.conn.Close()
}

// Query runs one read-only statement and returns all its rows. Positional
// ? arguments are bound by the driver. Errors name the node:
// `clickhouse node "ch-1" (127.0.0.1:9000): ...`; server exceptions keep
// their code (see ErrorCode).
func (n *Node) Query(ctx context.Context, query string, args ...any) ([]Row, error) {
	ctx, cancel := n.bound(ctx)
	defer cancel()
	if err := n.acquire(ctx); err != nil {
		return nil, n.wrap(err)
	}
	mxt := n.maxExecutionSeconds(ctx)
	n.sent.Add(1)
	if n.opts.counter != nil {
		n.opts.counter(n.cfg.Name)
	}
	type result struct {
		rows []Row
		err  error
	}
	done := make(chan result, 1)
	go func() {
		// The slot is freed only when the driver call has really ended, so
		// at most MaxConns queries are ever in flight on the node.
		defer n.release()
		rows, err := n.run(ctx, mxt, query, args...)
		done <- result{rows, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			if ctx.Err() != nil && !errors.Is(r.err, ctx.Err()) && Exception(r.err) == nil {
				r.err = fmt.Errorf("%w (%v)", ctx.Err(), r.err)
			}
			return nil, n.wrap(r.err)
		}
		return r.rows, nil
	case <-ctx.Done():
		// The driver may still be in its handshake, which only DialTimeout
		// bounds; do not wait for it.
		select {
		case r := <-done:
			if r.err == nil {
				return r.rows, nil
			}
		default:
		}
		return nil, n.wrap(fmt.Errorf("no answer: %w", ctx.Err()))
	}
}

// bound gives ctx a deadline when it has none.
func (n *Node) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.opts.defaultTimeout)
}

func (n *Node) acquire(ctx context.Context) error {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return ch.ErrConnectionClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case n.slots <- struct{}{}:
		// A slot freed just as the deadline passed: both cases were ready
		// and select chose this one. Do not send a query that is already
		// too late.
		if err := ctx.Err(); err != nil {
			n.release()
			return fmt.Errorf("%w (%d queries in flight): %w", ErrNoSlot, cap(n.slots), err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (%d queries in flight): %w", ErrNoSlot, cap(n.slots), ctx.Err())
	}
}

func (n *Node) release() { <-n.slots }

// maxExecutionSeconds is the max_execution_time sent with a query: the time
// left before the deadline, capped by MaxExecutionTime, in whole seconds
// (the setting's unit; 0 would mean unlimited, so at least 1).
func (n *Node) maxExecutionSeconds(ctx context.Context) int {
	left := n.opts.defaultTimeout
	if dl, ok := ctx.Deadline(); ok {
		left = time.Until(dl)
	}
	if m := n.cfg.MaxExecutionTime; m > 0 && m < left {
		left = m
	}
	secs := int(math.Ceil(left.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return secs
}

// run executes the query through the driver. The driver sees a context
// without a deadline (but cancelled with ctx): clickhouse-go would otherwise
// overwrite max_execution_time with "seconds left + 5" for any deadline over
// 1 s (context.go queryOptions), and we want to send our own value.
func (n *Node) run(ctx context.Context, maxExec int, query string, args ...any) ([]Row, error) {
	w := &dialWatch{query: ctx}
	qctx := ch.Context(context.WithValue(hideDeadline{ctx}, dialWatchKey{}, w), ch.WithSettings(ch.Settings{
		"max_execution_time": maxExec,
	}))
	rows, err := n.conn.Query(qctx, query, args...)
	w.stop() // the handshake, if any, is over
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	names := rows.Columns()
	var out []Row
	for rows.Next() {
		dest := make([]any, len(types))
		for i, t := range types {
			st := t.ScanType()
			if st == nil {
				var v any
				dest[i] = &v
				continue
			}
			dest[i] = reflect.New(st).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		row := make(Row, len(names))
		for i, name := range names {
			row[name] = deref(dest[i])
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func (n *Node) wrap(err error) error {
	return &NodeError{Node: n.cfg.Name, Addr: n.cfg.Addr, Err: err}
}

// NodeError is every error a Node returns: the node it concerns and the
// cause (a server exception, a network error, a context error).
type NodeError struct {
	Node, Addr string
	Err        error
}

func (e *NodeError) Error() string {
	return fmt.Sprintf("clickhouse node %q (%s): %v", e.Node, e.Addr, e.Err)
}

func (e *NodeError) Unwrap() error { return e.Err }

// Cause is err without the "clickhouse node ... :" prefix of a NodeError,
// for messages that already name the node.
func Cause(err error) string {
	var ne *NodeError
	if errors.As(err, &ne) && ne.Err != nil {
		return ne.Err.Error()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// dialWatch ends the handshake of a connection dialled for a query when
// that query's context ends: the driver bounds its handshake by DialTimeout
// only, so a server that accepts and never answers would otherwise hold the
// query's slot past the caller's deadline.
type dialWatch struct {
	query context.Context
	mu    sync.Mutex
	stops []func() bool
	done  bool
}

type dialWatchKey struct{}

func (w *dialWatch) watch(conn net.Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.stops = append(w.stops, context.AfterFunc(w.query, func() {
		_ = conn.SetDeadline(time.Now())
	}))
}

// stop disarms the watch once the driver has the query's first answer (or
// gave up): from then on the driver itself follows the context.
func (w *dialWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	for _, s := range w.stops {
		s()
	}
	w.stops = nil
}

// hideDeadline is ctx (values, cancellation, Err) without a deadline.
type hideDeadline struct{ context.Context }

func (hideDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }
