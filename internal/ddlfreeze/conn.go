// Package ddlfreeze holds the node-level building blocks of the ddl_freeze
// action: choosing the method for a node (Detect: SQL grants where access
// control answers, the users.d profile override otherwise), a connection
// that can run statements (Conn, NativeConn), and the grants method's steps
// on one node (ReadSnapshots, ApplyFreeze, ApplyRestore), which use the pure
// computations of internal/grants. The profile method lives in
// internal/ddlfreeze/profile.
//
// Every statement goes to one node directly, never ON CLUSTER, with its own
// timeout: distributed DDL is what hangs when the coordination service
// chokes.
package ddlfreeze

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"net"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/chmedic/chmedic/internal/clickhouse"
)

// Conn is what the freeze needs from one node. Errors keep the server's
// exception (clickhouse.ErrorCode works on them).
type Conn interface {
	// Exec runs a statement that returns no rows (REVOKE, GRANT, DDL).
	Exec(ctx context.Context, stmt string) error
	// QueryStrings runs a query and returns its first column as strings
	// (SHOW GRANTS, SELECT name FROM ...).
	QueryStrings(ctx context.Context, query string) ([]string, error)
	// Name is the node's name, for errors and reports.
	Name() string
}

// DefaultStatementTimeout bounds one statement when the context has no
// earlier deadline.
const DefaultStatementTimeout = 10 * time.Second

// NativeConn is a Conn over the native protocol (clickhouse-go), with the
// node's credentials (the cluster's actions user for the grants method).
// clickhouse.Node is read-only by design, and its Query returns EOF for DDL
// on 18.16 although the statement ran; NativeConn uses the driver's Exec,
// which works there.
type NativeConn struct {
	cfg     clickhouse.NodeConfig
	conn    driver.Conn
	timeout time.Duration
}

// DialNative prepares a connection to one node (it dials on first use).
// MaxConns defaults to 1; timeout is the per-statement bound (default
// DefaultStatementTimeout).
func DialNative(cfg clickhouse.NodeConfig, timeout time.Duration) (*NativeConn, error) {
	if cfg.Addr == "" {
		return nil, fmt.Errorf("clickhouse node %q: no address", cfg.Name)
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		cfg.Addr = net.JoinHostPort(cfg.Addr, clickhouse.DefaultPort)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Addr
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = clickhouse.DefaultDialTimeout
	}
	if timeout <= 0 {
		timeout = DefaultStatementTimeout
	}
	var tlsCfg *tls.Config
	if cfg.Secure {
		host, _, _ := net.SplitHostPort(cfg.Addr)
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	}
	conn, err := ch.Open(&ch.Options{
		Protocol:        ch.Native,
		Addr:            []string{cfg.Addr},
		Auth:            ch.Auth{Database: cfg.Database, Username: cfg.User, Password: cfg.Password},
		TLS:             tlsCfg,
		DialTimeout:     cfg.DialTimeout,
		MaxOpenConns:    cfg.MaxConns,
		MaxIdleConns:    cfg.MaxConns,
		ConnMaxLifetime: 10 * time.Minute,
		ReadTimeout:     timeout + 30*time.Second,
		ClientInfo:      ch.ClientInfo{Products: []struct{ Name, Version string }{{Name: "chmedic", Version: "1"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse node %q (%s): %w", cfg.Name, cfg.Addr, err)
	}
	return &NativeConn{cfg: cfg, conn: conn, timeout: timeout}, nil
}

// Name is the node's name.
func (c *NativeConn) Name() string { return c.cfg.Name }

// Close closes the node's connections.
func (c *NativeConn) Close() error { return c.conn.Close() }

// bound gives the statement its timeout and max_execution_time (whole
// seconds, at least 1), and hides the deadline from the driver, which would
// otherwise send its own max_execution_time.
func (c *NativeConn) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	dl, _ := ctx.Deadline()
	secs := int(math.Ceil(time.Until(dl).Seconds()))
	if secs < 1 {
		secs = 1
	}
	return ch.Context(noDeadline{ctx}, ch.WithSettings(ch.Settings{"max_execution_time": secs})), cancel
}

func (c *NativeConn) wrap(err error) error {
	if err == nil {
		return nil
	}
	return &clickhouse.NodeError{Node: c.cfg.Name, Addr: c.cfg.Addr, Err: err}
}

// Exec runs one statement.
func (c *NativeConn) Exec(ctx context.Context, stmt string) error {
	qctx, cancel := c.bound(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.conn.Exec(qctx, stmt) }()
	select {
	case err := <-done:
		return c.wrap(err)
	case <-qctx.Done():
		return c.wrap(fmt.Errorf("no answer: %w", context.DeadlineExceeded))
	}
}

// QueryStrings runs a query and returns its first column.
func (c *NativeConn) QueryStrings(ctx context.Context, query string) ([]string, error) {
	qctx, cancel := c.bound(ctx)
	defer cancel()
	type result struct {
		out []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		rows, err := c.conn.Query(qctx, query)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				done <- result{nil, fmt.Errorf("scan: %w", err)}
				return
			}
			out = append(out, s)
		}
		done <- result{out, rows.Err()}
	}()
	select {
	case r := <-done:
		return r.out, c.wrap(r.err)
	case <-qctx.Done():
		return nil, c.wrap(fmt.Errorf("no answer: %w", context.DeadlineExceeded))
	}
}

// noDeadline is a context without its deadline (cancellation kept).
type noDeadline struct{ context.Context }

func (noDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }
