package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/childtest"
	"github.com/chmedic/chmedic/internal/store"
)

// TestHelperIngestServer is not a test: run by TestKill9DuringBurst as a
// child process, it serves the webhook (group commit on the store at
// $CHMEDIC_CRASH_STORE) until it is killed.
func TestHelperIngestServer(t *testing.T) {
	path := os.Getenv("CHMEDIC_CRASH_STORE")
	if path == "" {
		t.Skip("helper process of TestKill9DuringBurst")
	}
	st, err := store.Open(context.Background(), path)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	h := &Handler{Auth: Auth{BearerToken: "s3cret"}, MaxBodyBytes: 4 << 20, DedupWindow: 5 * time.Minute,
		Store: NewGroupCommit(st, GroupCommitOptions{}), Queue: &fakeQueue{cap: 1 << 30}, Metrics: NewMetrics(nil),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("ADDR", ln.Addr().String())
	http.Serve(ln, h)
}

// TestKill9DuringBurst: chmedic's webhook in a child process is killed
// with SIGKILL in the middle of a burst of concurrent notifications; every
// notification it answered 200 is in the store when it is reopened, under
// the id it answered.
func TestKill9DuringBurst(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	child := childtest.Start(t, "TestHelperIngestServer", "CHMEDIC_CRASH_STORE="+path)
	addr := child.Expect(t, "ADDR ")
	child.Discard()

	type answered struct {
		id  int64
		key string
	}
	var (
		mu    sync.Mutex
		oks   []answered
		count atomic.Int64
		seq   atomic.Int64
		wg    sync.WaitGroup
	)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for s := 0; s < 16; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for fails := 0; fails < 3; {
				key := fmt.Sprintf("burst-%d", seq.Add(1))
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(groupPayload(t, key, firingAt("a-"+key, 0))))
				req.Header.Set("Authorization", "Bearer s3cret")
				resp, err := client.Do(req)
				if err != nil {
					fails++
					time.Sleep(5 * time.Millisecond)
					continue
				}
				var r response
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					continue // a reply cut by the kill is no promise
				}
				mu.Lock()
				oks = append(oks, answered{r.ID, key})
				mu.Unlock()
				count.Add(1)
			}
		}()
	}
	// Kill in the middle of the burst.
	deadline := time.Now().Add(20 * time.Second)
	for count.Load() < 300 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	child.Kill9(t)
	wg.Wait()
	child.Wait()
	if len(oks) < 300 {
		t.Fatalf("only %d notifications answered 200 before the kill", len(oks))
	}

	st, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	lost := 0
	for _, a := range oks {
		n, err := st.Notification(context.Background(), a.id)
		if err != nil || n.GroupKey != a.key {
			lost++
			if lost <= 5 {
				t.Errorf("answered 200 as id %d for %s, in the store: %q %v", a.id, a.key, n.GroupKey, err)
			}
		}
	}
	counts, _ := st.NotificationCounts(context.Background())
	t.Logf("%d answered 200 before SIGKILL, %d in the store, %d lost", len(oks), counts[store.StatePending], lost)
	if lost > 0 {
		t.Errorf("%d of %d notifications answered 200 are not in the store", lost, len(oks))
	}
}
