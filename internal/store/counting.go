package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync/atomic"
)

// Counters count the statements the store sends to SQLite and the rows
// they return, for tests and benchmarks that check the cost of an operation
// (e.g. that processing one notification does not read more as an
// incident grows). A Store opened WithCounters counts into it.
type Counters struct {
	Statements atomic.Int64
	Rows       atomic.Int64
	// Commits counts the durable commits: transactions committed and
	// writing statements run outside a transaction (SQLite commits each
	// alone). Under synchronous=FULL each is one sync of the WAL.
	Commits atomic.Int64
	// Batches counts the store's write transactions as committed by the
	// group commit (txbatch.go), BatchedTx the callers' transactions they
	// carried.
	Batches   atomic.Int64
	BatchedTx atomic.Int64
}

// WithCounters makes the store count its statements and rows into c.
func WithCounters(c *Counters) Option { return func(s *Store) { s.counters = c } }

// openDB opens the database, its connections caching their prepared
// statements (stmtcache.go), counting through c when it is set.
func openDB(dsn string, c *Counters) (*sql.DB, error) {
	probe, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	d := probe.Driver()
	probe.Close()
	return sql.OpenDB(countingConnector{d: d, dsn: dsn, c: c}), nil
}

type countingConnector struct {
	d   driver.Driver
	dsn string
	c   *Counters
}

func (cc countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := cc.d.Open(cc.dsn)
	if err != nil {
		return nil, err
	}
	if cc.c == nil {
		return newCachingConn(conn), nil
	}
	return &countingConn{Conn: newCachingConn(conn), c: cc.c}, nil
}

func (cc countingConnector) Driver() driver.Driver { return cc.d }

// countingConn forwards to the SQLite connection, counting.
type countingConn struct {
	driver.Conn
	c    *Counters
	inTx bool // a transaction of this connection is open
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.inTx = true
	return &countingTx{Tx: tx, conn: c}, nil
}

// countingTx counts its commit.
type countingTx struct {
	driver.Tx
	conn *countingConn
}

func (t *countingTx) Commit() error {
	t.conn.inTx = false
	err := t.Tx.Commit()
	if err == nil {
		t.conn.c.Commits.Add(1)
	}
	return err
}

func (t *countingTx) Rollback() error {
	t.conn.inTx = false
	return t.Tx.Rollback()
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	switch q {
	case checkpointStatement: // the background checkpoint is no operation's cost
		return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
	case savepointStatement, rollbackToStatement, releaseStatement: // the group commit's, not the operation's
	default:
		c.c.Statements.Add(1)
	}
	res, err := c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
	if err == nil && !c.inTx {
		c.c.Commits.Add(1) // SQLite committed it alone
	}
	return res, err
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.c.Statements.Add(1)
	r, err := c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
	if err != nil {
		return nil, err
	}
	return &countingRows{Rows: r, c: c.c}, nil
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

type countingRows struct {
	driver.Rows
	c *Counters
}

func (r *countingRows) Next(dest []driver.Value) error {
	err := r.Rows.Next(dest)
	if err == nil {
		r.c.Rows.Add(1)
	}
	return err
}
