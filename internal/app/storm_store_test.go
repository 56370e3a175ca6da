package app

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/chmedic/chmedic/internal/childtest"
	"github.com/chmedic/chmedic/internal/store"
)

// sendStorm posts groups [from, to) of the storm (alerts each) from 8
// senders, retrying 503s as Alertmanager does, and returns how many were
// answered 200 (a connection refused after a kill ends a sender).
func sendStorm(tb testing.TB, addr string, from, to, alerts int, stopOnError bool) int {
	var next atomic.Int64
	next.Store(int64(from))
	var ok atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for s := 0; s < 8; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= to {
					return
				}
				body := stormGroup(i, alerts)
				for {
					resp, err := client.Post("http://"+addr+"/webhook", "application/json", bytes.NewReader(body))
					if err != nil {
						if !stopOnError {
							tb.Error(err)
						}
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	return int(ok.Load())
}

// waitProcessed waits until n notifications are finished (done, failed
// or stale) and fails on a failed one.
func waitProcessed(tb testing.TB, st *store.Store, n int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		c, err := st.NotificationCounts(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		if c[store.StateDone]+c[store.StateFailed]+c[store.StateStale] >= n {
			if c[store.StateFailed] > 0 {
				tb.Errorf("%d notifications failed", c[store.StateFailed])
			}
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d notifications not processed after 5 minutes: %v", n, c)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// maxTxPerNotification bounds the store's write transactions per
// notification of a storm, whatever its size: its share of the webhook's
// batch (at most 1), the start of its processing, its routing, and one
// transaction for its message, offers, report and outcome.
const maxTxPerNotification = 4

// TestStormStoreTransactionsPerNotification: in a storm of one cluster
// (every group after the first two folded into the incident), each
// notification costs at most maxTxPerNotification write transactions of
// the store, with 100 groups as with 400 (the count does not grow with
// the storm), and the group commit syncs fewer times than that: commits
// (WAL syncs) never outnumber transactions. Before, a notification cost 8
// (its webhook batch share, start, routing, two offers, the report, the
// message, the outcome), each its own sync.
func TestStormStoreTransactionsPerNotification(t *testing.T) {
	measure := func(groups int) (tx, commits float64) {
		var c store.Counters
		a := startStormAppIn(t, t.TempDir(), true, store.WithCounters(&c))
		tx0, c0 := c.BatchedTx.Load(), c.Commits.Load()
		if n := sendStorm(t, a.Addr(), 0, groups, 3, false); n != groups {
			t.Fatalf("%d of %d groups accepted", n, groups)
		}
		waitProcessed(t, a.Store, groups)
		return float64(c.BatchedTx.Load()-tx0) / float64(groups), float64(c.Commits.Load()-c0) / float64(groups)
	}
	tx100, commits100 := measure(100)
	tx400, commits400 := measure(400)
	t.Logf("per notification: %.2f transactions, %.2f commits with 100 groups; %.2f, %.2f with 400", tx100, commits100, tx400, commits400)
	for _, m := range []struct {
		groups      int
		tx, commits float64
	}{{100, tx100, commits100}, {400, tx400, commits400}} {
		// A little slack for the background writers (heartbeats, digests).
		if m.tx > maxTxPerNotification+0.1 {
			t.Errorf("%d groups: %.2f store transactions per notification, want at most %d", m.groups, m.tx, maxTxPerNotification)
		}
		if m.commits > m.tx+0.1 {
			t.Errorf("%d groups: %.2f commits per notification for %.2f transactions: the group commit adds syncs", m.groups, m.commits, m.tx)
		}
	}
	if tx400 > tx100+0.25 {
		t.Errorf("transactions per notification grew with the storm: %.2f with 100 groups, %.2f with 400", tx100, tx400)
	}
}

// TestHelperStormServer is not a test: run by TestKill9DuringStormProcessing
// as a child process, it runs chmedic (outbox off) on the store in
// $CHMEDIC_STORM_DIR until it is killed.
func TestHelperStormServer(t *testing.T) {
	dir := os.Getenv("CHMEDIC_STORM_DIR")
	if dir == "" {
		t.Skip("helper process of TestKill9DuringStormProcessing")
	}
	a := startStormAppIn(t, dir, true)
	fmt.Println("ADDR", a.Addr())
	select {}
}

// TestKill9DuringStormProcessing: chmedic is killed with SIGKILL while it
// processes a storm (group commits of several workers' transactions under
// way), restarted on the same store, and sent the rest of the storm. Once
// everything is processed, nothing accepted is lost and nothing is counted
// twice: every notification answered 200 is done, every group is in the
// incident or has its own message, once; the incident's incremental counts
// equal its groups; every done notification's offers were recorded once;
// each thread has one post and its report.
func TestKill9DuringStormProcessing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	const groups = 600
	dir := t.TempDir()
	child := childtest.Start(t, "TestHelperStormServer", "CHMEDIC_STORM_DIR="+dir)
	addr := child.Expect(t, "ADDR ")
	child.Discard()
	sent := sendStorm(t, addr, 0, groups/2, 3, false)

	// Kill once some are processed, while the rest are.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "chmedic.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var done int
		db.QueryRow(`SELECT COUNT(*) FROM notifications WHERE state = 'done'`).Scan(&done)
		if done >= groups/6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	db.Close()
	child.Kill9(t)
	child.Wait()

	db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "chmedic.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	var done, left int
	db.QueryRow(`SELECT COUNT(*) FROM notifications WHERE state = 'done'`).Scan(&done)
	db.QueryRow(`SELECT COUNT(*) FROM notifications WHERE state IN ('pending', 'processing')`).Scan(&left)
	db.Close()
	t.Logf("killed with %d notifications done, %d left to replay", done, left)
	if left == 0 {
		t.Error("killed after the processing: the crash proves nothing")
	}
	a := startStormAppIn(t, dir, true)
	sent += sendStorm(t, a.Addr(), groups/2, groups, 3, false)
	if sent != groups {
		t.Fatalf("%d of %d groups answered 200", sent, groups)
	}
	waitProcessed(t, a.Store, groups)

	st := a.Store
	ctx := context.Background()
	counts, _ := st.NotificationCounts(ctx)
	if counts[store.StateDone] != groups {
		t.Errorf("notifications by state %v, want %d done", counts, groups)
	}
	db, err = sql.Open("sqlite", "file:"+filepath.Join(dir, "chmedic.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	one := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := db.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	own := one(`SELECT COUNT(*) FROM slack_threads WHERE thread_key LIKE 'group:%'`)
	members := one(`SELECT COUNT(*) FROM incident_groups`)
	if own+members != groups || one(`SELECT COUNT(*) FROM incidents`) != 1 {
		t.Errorf("%d groups with their own message + %d in incidents (%d incidents), want %d in all and 1 incident",
			own, members, one(`SELECT COUNT(*) FROM incidents`), groups)
	}
	if g, o := one(`SELECT groups FROM incidents`), one(`SELECT open_groups FROM incidents`); g != members || o != members {
		t.Errorf("the incident counts %d groups (%d open), it has %d", g, o, members)
	}
	if n := one(`SELECT COALESCE(SUM(groups), 0) FROM incident_titles`); n != members {
		t.Errorf("the incident's titles count %d groups, it has %d", n, members)
	}
	if n := one(`SELECT COUNT(*) FROM (SELECT thread_key FROM outbox WHERE kind = 'post' GROUP BY thread_key HAVING COUNT(*) > 1)`); n != 0 {
		t.Errorf("%d threads posted more than once", n)
	}
	if n, th := one(`SELECT COUNT(*) FROM thread_reports`), one(`SELECT COUNT(*) FROM slack_threads`); n != th {
		t.Errorf("%d thread reports for %d threads", n, th)
	}
	// Every notification's offers (its message's buttons) are recorded, and
	// the ones its message carries now are the thread's offered ones.
	if n := one(`SELECT COUNT(DISTINCT substr(offer_key, 1, instr(offer_key, '/') - 1)) FROM action_requests`); n != groups {
		t.Errorf("offers recorded for %d of %d notifications", n, groups)
	}
	if n := one(`SELECT COUNT(*) FROM (SELECT thread_key FROM action_requests WHERE state = 'offered'
		GROUP BY thread_key HAVING COUNT(DISTINCT substr(offer_key, 1, instr(offer_key, '/') - 1)) > 1)`); n != 0 {
		t.Errorf("%d threads with offers of several notifications still offered: older messages' offers not superseded", n)
	}
	if n := one(`SELECT COUNT(*) FROM notification_groups`); n != groups {
		t.Errorf("%d group marks for %d groups", n, groups)
	}
	t.Logf("%d groups: %d with their own message, %d in the incident", groups, own, members)
}
