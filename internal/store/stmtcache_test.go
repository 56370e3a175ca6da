package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// TestStatementCache: a statement run again is not prepared again on its
// connection; a statement used twice at once on one connection (its rows
// open while it runs again, in one transaction) gets a second preparation
// and both give their own results; scripts still run whole.
func TestStatementCache(t *testing.T) {
	s, _ := openCounted(t, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if err := insertPair(ctx, s, fmt.Sprintf("k%d", i), false); err != nil {
			t.Fatal(err)
		}
	}
	const q = `SELECT part FROM pairs WHERE k = ? ORDER BY part`
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for round := 0; round < 50; round++ {
			var parts []int
			rows, err := tx.QueryContext(ctx, q, "k1")
			if err != nil {
				return err
			}
			for rows.Next() {
				var p int
				if err := rows.Scan(&p); err != nil {
					return err
				}
				parts = append(parts, p)
				// The same statement while its rows are open.
				var n int
				if err := tx.QueryRowContext(ctx, q, "k2").Scan(&n); err != nil || n != 1 {
					return fmt.Errorf("nested run: %d %v", n, err)
				}
			}
			rows.Close()
			if len(parts) != 2 || parts[0] != 1 || parts[1] != 2 {
				return fmt.Errorf("round %d: parts %v", round, parts)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var cached int
	conn.Raw(func(dc any) error {
		cc := dc.(*countingConn).Conn.(*cachingConn)
		cached = len(cc.stmts)
		if cs := cc.stmts[q]; cs != nil && cs.busy {
			t.Errorf("the statement is still marked in use after its rows closed")
		}
		return nil
	})
	if cached == 0 {
		t.Errorf("no statement cached on the connection")
	}
	// A script runs every statement, uncached.
	if _, err := s.db.ExecContext(ctx, `INSERT INTO pairs (k, part) VALUES ('s', 1); INSERT INTO pairs (k, part) VALUES ('s', 2)`); err != nil {
		t.Fatal(err)
	}
	if n := pairRows(t, s)["s"]; n != 2 {
		t.Errorf("script: %d rows, want 2", n)
	}
}
