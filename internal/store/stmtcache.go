package store

import (
	"context"
	"database/sql/driver"
	"strings"
)

// Prepared statements, cached per connection.
//
// database/sql prepares, runs and finalizes every ExecContext and
// QueryContext that is not on a prepared *sql.Stmt, so SQLite parses and
// plans each statement every time it runs: a fifth of the CPU of a storm,
// most of it inside the single writer that every commit waits for. Each
// pooled connection keeps its statements prepared instead, by query text,
// and runs them again with new arguments (the driver resets a cached
// statement after each run). A statement that is in use on the
// connection (its rows still open) is prepared afresh for a second use at
// the same time; scripts (several statements, with ";") and statements
// beyond maxCachedStmts are never cached. SQLite re-prepares a cached
// statement by itself when the schema changes (a migration).

const maxCachedStmts = 256

// cachingConn runs ExecContext and QueryContext through the connection's
// cached prepared statements.
type cachingConn struct {
	driver.Conn
	stmts map[string]*cachedStmt
}

type cachedStmt struct {
	ds   driver.Stmt
	busy bool // rows of it are open
}

func newCachingConn(c driver.Conn) *cachingConn {
	return &cachingConn{Conn: c, stmts: map[string]*cachedStmt{}}
}

// stmt returns q prepared, and what to call once its run (and its rows)
// are done.
func (c *cachingConn) stmt(ctx context.Context, q string) (driver.Stmt, func(), error) {
	if cs, ok := c.stmts[q]; ok && !cs.busy {
		cs.busy = true
		return cs.ds, func() { cs.busy = false }, nil
	}
	ds, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	if _, ok := c.stmts[q]; !ok && len(c.stmts) < maxCachedStmts && !strings.Contains(q, ";") {
		cs := &cachedStmt{ds: ds, busy: true}
		c.stmts[q] = cs
		return ds, func() { cs.busy = false }, nil
	}
	return ds, func() { ds.Close() }, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	ds, done, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	defer done()
	return ds.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	ds, done, err := c.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := ds.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		done()
		return nil, err
	}
	return &releasingRows{Rows: rows, done: done}, nil
}

func (c *cachingConn) Close() error {
	for q, cs := range c.stmts {
		cs.ds.Close()
		delete(c.stmts, q)
	}
	return c.Conn.Close()
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// releasingRows gives its statement back when closed.
type releasingRows struct {
	driver.Rows
	done func()
}

func (r *releasingRows) Close() error {
	err := r.Rows.Close()
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return err
}
