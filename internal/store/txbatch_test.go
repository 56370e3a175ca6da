package store

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/childtest"
)

// openCounted opens a store counting its statements and commits, with a
// table of pairs for the group commit tests.
func openCounted(t *testing.T, path string) (*Store, *Counters) {
	t.Helper()
	var c Counters
	s, err := Open(context.Background(), path, WithCounters(&c))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.db.Exec(`CREATE TABLE IF NOT EXISTS pairs (k TEXT NOT NULL, part INTEGER NOT NULL, PRIMARY KEY (k, part))`); err != nil {
		t.Fatal(err)
	}
	return s, &c
}

// insertPair writes k's two rows in one transaction; fail makes it fail
// after the first.
func insertPair(ctx context.Context, s *Store, k string, fail bool) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO pairs (k, part) VALUES (?, 1)`, k); err != nil {
			return err
		}
		if fail {
			return errors.New("refused")
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO pairs (k, part) VALUES (?, 2)`, k)
		return err
	})
}

func pairRows(t *testing.T, s *Store) map[string]int {
	t.Helper()
	rows, err := s.db.Query(`SELECT k, COUNT(*) FROM pairs GROUP BY k`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	return out
}

// queueBehindCommit starts one goroutine per work while a commit is under
// way (the test holds the writer lock), so that all but the first are in
// the next batch, and returns their outcomes once done.
func queueBehindCommit(t *testing.T, s *Store, works []func() error) []error {
	t.Helper()
	s.wl.lock()
	errs := make([]error, len(works))
	var wg sync.WaitGroup
	for i, w := range works {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = w() }()
		if i == 0 {
			waitPending(t, s, 0) // the first leads: its batch is taken, waiting for the lock
		}
	}
	waitPending(t, s, len(works)-1)
	s.wl.unlock()
	wg.Wait()
	return errs
}

func waitPending(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.batch.mu.Lock()
		p, leading := len(s.batch.pending), s.batch.leading
		s.batch.mu.Unlock()
		if p == n && leading {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d transactions waiting, want %d", p, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommitOneSyncPerBatch: write transactions that arrive while
// another commits share one commit (one sync of the WAL); each keeps its
// own outcome: a failing one is rolled back alone, its neighbours are
// kept, and every caller returns only once its work is committed.
func TestGroupCommitOneSyncPerBatch(t *testing.T) {
	s, c := openCounted(t, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()
	c0 := c.Commits.Load()
	var works []func() error
	for i := 0; i < 10; i++ {
		works = append(works, func() error { return insertPair(ctx, s, fmt.Sprintf("k%d", i), i == 4) })
	}
	errs := queueBehindCommit(t, s, works)
	for i, err := range errs {
		if (err != nil) != (i == 4) {
			t.Errorf("transaction %d: %v", i, err)
		}
	}
	if got := c.Commits.Load() - c0; got != 2 {
		t.Errorf("%d commits for 10 transactions (one alone, nine queued behind it), want 2", got)
	}
	got := pairRows(t, s)
	for i := 0; i < 10; i++ {
		want := 2
		if i == 4 {
			want = 0
		}
		if n := got[fmt.Sprintf("k%d", i)]; n != want {
			t.Errorf("k%d: %d rows, want %d", i, n, want)
		}
	}
}

// TestGroupCommitBrokenBatchRunsEachAlone: when a work breaks the shared
// transaction (here it ends it itself), nothing of the batch is kept and
// every work runs again in a transaction of its own: the others are
// committed once, not lost and not duplicated.
func TestGroupCommitBrokenBatchRunsEachAlone(t *testing.T) {
	s, _ := openCounted(t, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()
	var works []func() error
	for i := 0; i < 6; i++ {
		works = append(works, func() error {
			if i == 3 {
				return s.tx(ctx, func(tx *sql.Tx) error {
					_, err := tx.ExecContext(ctx, `ROLLBACK`)
					return err
				})
			}
			return insertPair(ctx, s, fmt.Sprintf("k%d", i), false)
		})
	}
	errs := queueBehindCommit(t, s, works)
	got := pairRows(t, s)
	for i := 0; i < 6; i++ {
		if i == 3 {
			if errs[i] == nil {
				t.Errorf("the transaction that ended itself reports no error")
			}
			continue
		}
		if errs[i] != nil || got[fmt.Sprintf("k%d", i)] != 2 {
			t.Errorf("k%d: %v, %d rows, want committed once (2 rows)", i, errs[i], got[fmt.Sprintf("k%d", i)])
		}
	}
}

// TestGroupCommitCallerGone: a caller whose context ended before its turn
// gets its context's error and writes nothing; the batch commits the rest.
func TestGroupCommitCallerGone(t *testing.T) {
	s, _ := openCounted(t, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	errs := queueBehindCommit(t, s, []func() error{
		func() error { return insertPair(ctx, s, "a", false) },
		func() error { return insertPair(ctx, s, "b", false) },
		func() error { return insertPair(gone, s, "c", false) },
		func() error { return insertPair(ctx, s, "d", false) },
	})
	got := pairRows(t, s)
	if !errors.Is(errs[2], context.Canceled) || got["c"] != 0 {
		t.Errorf("cancelled caller: %v, %d rows", errs[2], got["c"])
	}
	for _, k := range []string{"a", "b", "d"} {
		if got[k] != 2 {
			t.Errorf("%s: %d rows, want 2", k, got[k])
		}
	}
}

// TestHelperGroupCommitWriter is not a test: run by
// TestKill9DuringGroupCommit as a child process, it writes pairs from
// concurrent goroutines into the store at $CHMEDIC_TXCRASH_STORE, printing
// each key once its transaction returned, until it is killed.
func TestHelperGroupCommitWriter(t *testing.T) {
	path := os.Getenv("CHMEDIC_TXCRASH_STORE")
	if path == "" {
		t.Skip("helper process of TestKill9DuringGroupCommit")
	}
	s, _ := openCounted(t, path)
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				k := fmt.Sprintf("g%d-%d", g, i)
				if err := insertPair(context.Background(), s, k, false); err != nil {
					fmt.Println("ERROR", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(w, "OK", k)
				w.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// TestKill9DuringGroupCommit: a process committing transactions in shared
// batches is killed with SIGKILL; reopened, the store holds every
// transaction that returned, each whole (both rows of a pair, never one)
// and once: a crash between or inside batches loses nothing acknowledged
// and duplicates nothing.
func TestKill9DuringGroupCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	child := childtest.Start(t, "TestHelperGroupCommitWriter", "CHMEDIC_TXCRASH_STORE="+path)
	acked := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	child.Lines(func(line string) bool {
		if k, ok := strings.CutPrefix(line, "OK "); ok {
			acked[k] = true
		} else {
			t.Log(line)
		}
		return len(acked) < 2000 && time.Now().Before(deadline)
	})
	child.Kill9(t)
	// What it printed before dying was acknowledged too.
	child.Lines(func(line string) bool {
		if k, ok := strings.CutPrefix(line, "OK "); ok {
			acked[k] = true
		}
		return true
	})
	child.Wait()
	if len(acked) < 500 {
		t.Fatalf("only %d transactions returned before the kill", len(acked))
	}
	s, c := openCounted(t, path)
	got := pairRows(t, s)
	for k := range acked {
		if got[k] != 2 {
			t.Errorf("%s returned committed, %d of its 2 rows in the store", k, got[k])
		}
	}
	for k, n := range got {
		if n != 2 {
			t.Errorf("%s: %d of its 2 rows in the store (half a transaction)", k, n)
		}
	}
	// Keys are written once per goroutine, in order: a gap would be a lost
	// transaction that a later one of the same writer outlived.
	last := map[string]int{}
	for k := range got {
		g, i, _ := strings.Cut(k, "-")
		n, _ := strconv.Atoi(i)
		last[g] = max(last[g], n+1)
	}
	for g, n := range last {
		for i := 0; i < n; i++ {
			if got[fmt.Sprintf("%s-%d", g, i)] == 0 {
				t.Errorf("%s-%d missing while %s-%d is in the store", g, i, g, n-1)
			}
		}
	}
	t.Logf("%d transactions returned before SIGKILL, %d in the store; commits counted after reopen: %d", len(acked), len(got), c.Commits.Load())
}

// TestGroupCommitSurvivesAPanickingWork: a work that panics (in whichever
// caller leads its batch: net/http recovers a handler's panic and the
// process goes on) rolls its batch back and gives every caller of the
// batch an error instead of leaving them, and every later writer, waiting
// forever; the store keeps committing afterwards.
func TestGroupCommitSurvivesAPanickingWork(t *testing.T) {
	s, _ := openCounted(t, filepath.Join(t.TempDir(), "s.db"))
	ctx := context.Background()
	var works []func() error
	for i := 0; i < 5; i++ {
		works = append(works, func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panicked: %v", r)
				}
			}()
			if i == 3 {
				return s.tx(ctx, func(*sql.Tx) error { panic("boom") })
			}
			return insertPair(ctx, s, fmt.Sprintf("k%d", i), false)
		})
	}
	done := make(chan []error, 1)
	go func() { done <- queueBehindCommit(t, s, works) }()
	var errs []error
	select {
	case errs = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("callers of the batch still waiting after the panic")
	}
	got := pairRows(t, s)
	if errs[0] != nil || got["k0"] != 2 {
		t.Errorf("k0, committed alone before the panicking batch: %v, %d rows", errs[0], got["k0"])
	}
	for i := 1; i < 5; i++ {
		if errs[i] == nil {
			t.Errorf("work %d of the panicking batch reports success", i)
		}
		if i != 3 && got[fmt.Sprintf("k%d", i)] != 0 {
			t.Errorf("k%d: %d rows kept from a rolled-back batch", i, got[fmt.Sprintf("k%d", i)])
		}
	}
	if err := insertPair(ctx, s, "after", false); err != nil || pairRows(t, s)["after"] != 2 {
		t.Errorf("a write after the panic: %v", err)
	}
}

// TestWithoutGroupCommit: with the option, every transaction commits on
// its own (what the ingest benchmark's per-request baseline measures).
func TestWithoutGroupCommit(t *testing.T) {
	var c Counters
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), WithCounters(&c), WithoutGroupCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.db.Exec(`CREATE TABLE pairs (k TEXT NOT NULL, part INTEGER NOT NULL, PRIMARY KEY (k, part))`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c0 := c.Commits.Load()
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); insertPair(ctx, s, fmt.Sprintf("k%d", i), false) }()
	}
	wg.Wait()
	if got := c.Commits.Load() - c0; got != 10 {
		t.Errorf("%d commits for 10 concurrent transactions, want 10 (one each)", got)
	}
}
