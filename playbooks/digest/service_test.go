package digest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

type memHistory struct {
	mu   sync.Mutex
	last map[string][]byte
}

func (h *memHistory) Previous(_ context.Context, cluster string) (*Digest, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.last[cluster]
	if !ok {
		return nil, nil
	}
	var d Digest
	return &d, json.Unmarshal(b, &d)
}

func (h *memHistory) Save(_ context.Context, d *Digest) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = map[string][]byte{}
	}
	for _, c := range d.Clusters {
		one := *d
		one.Clusters = []*Cluster{c}
		b, err := json.Marshal(&one)
		if err != nil {
			return err
		}
		h.last[c.Name] = b
	}
	return nil
}

type fakeDiag struct {
	d     func() *diagnose.Diagnosis
	block chan struct{}
	calls int
	mu    sync.Mutex
}

func (f *fakeDiag) Diagnose(ctx context.Context, cluster string) (*diagnose.Diagnosis, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if cluster != "prod" {
		return nil, diagnose.ErrUnknownCluster
	}
	return f.d(), nil
}

func res(p, node string, st probe.Status, facts map[string]float64, attrs map[string]string) probe.Result {
	return probe.Result{Probe: p, Node: node, Status: st, Facts: facts, Attrs: attrs, Summary: p + " on " + node}
}

// healthyRound is a diagnosis as the engine returns it for a two-node
// cluster, with the given replicated table count and znodes.
func healthyRound(start time.Time, tables, znodes float64) *diagnose.Diagnosis {
	return &diagnose.Diagnosis{
		Cluster: "prod", Started: start, Duration: 120 * time.Millisecond, Verdict: "No problem found", Status: probe.OK,
		Results: []probe.Result{
			res("clickhouse.ping", "ch-1", probe.OK, map[string]float64{"up": 1}, map[string]string{"version": "18.16.1"}),
			res("clickhouse.ping", "ch-2", probe.OK, map[string]float64{"up": 1}, map[string]string{"version": "18.16.1"}),
			res("clickhouse.replicas", "ch-1", probe.OK, map[string]float64{"replicated_tables": tables, "readonly_replicas": 0, "max_absolute_delay_seconds": 0, "max_queue_size": 1}, nil),
			res("clickhouse.replicas", "ch-2", probe.OK, map[string]float64{"replicated_tables": tables, "readonly_replicas": 0, "max_absolute_delay_seconds": 3, "max_queue_size": 0}, nil),
			res("clickhouse.replication_queue", "ch-1", probe.OK, map[string]float64{"stuck_entries": 0}, nil),
			res("clickhouse.replication_queue", "ch-2", probe.OK, map[string]float64{"stuck_entries": 0}, nil),
			res("keeper.ruok", "zk-1", probe.OK, map[string]float64{"ok": 1}, nil),
			res("keeper.mntr", "zk-1", probe.OK, map[string]float64{"avg_latency_ms": 0.5, "max_latency_ms": 12, "outstanding_requests": 0,
				"znode_count": znodes, "watch_count": 40, "ephemerals_count": 4, "alive_connections": 3, "open_fds": 60, "max_fds": 4096, "fd_ratio": 60.0 / 4096},
				map[string]string{"server_state": "standalone"}),
		},
	}
}

func TestServiceTrendsVerdictAndText(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	tables, znodes := 100.0, 5000.0
	fd := &fakeDiag{d: func() *diagnose.Diagnosis { return healthyRound(now, tables, znodes) }}
	h := &memHistory{}
	playbooks := func(name string) (string, []PlaybookAction, bool) {
		if name == "keeper-down" {
			return "Keeper down", []PlaybookAction{{Kind: "ddl_freeze", Label: "Freeze DDL", Params: map[string]string{"duration": "30m"}}}, true
		}
		return "", nil, false
	}
	s := New(Options{Diagnoser: fd, History: h, Playbooks: playbooks, Now: clock,
		Growth: map[string]Growth{TrendReplicatedTables: {Percent: 5, Min: 5}}})
	ctx := context.Background()
	d1, err := s.Run(ctx, Request{Name: "morning", Source: SourceScheduled, Clusters: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if d1.Verdict != Healthy || !d1.Stored || d1.Clusters[0].PreviousAt != nil {
		t.Fatalf("first digest: %s stored=%v %+v", d1.Verdict, d1.Stored, d1.Clusters[0].Reasons)
	}
	// A day later: more tables and znodes.
	now = now.Add(24 * time.Hour)
	tables, znodes = 120, 30000
	d2, err := s.Run(ctx, Request{Name: "morning", Source: SourceScheduled, Clusters: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	c := d2.Clusters[0]
	tr := map[string]Trend{}
	for _, x := range c.Trends {
		tr[x.Name] = x
	}
	if x := tr[TrendReplicatedTables]; x.Previous == nil || *x.Previous != 100 || *x.Delta != 20 || !x.Flagged || x.Advice == "" {
		t.Errorf("replicated tables trend: %+v", x)
	}
	if x := tr[TrendZnodes]; *x.Delta != 25000 || !x.Flagged {
		t.Errorf("znodes trend: %+v", x)
	}
	if d2.Verdict != Watch || c.PreviousAt == nil || !c.PreviousAt.Equal(now.Add(-24*time.Hour)) {
		t.Errorf("second digest: %s, previous %v, reasons %+v", d2.Verdict, c.PreviousAt, c.Reasons)
	}
	// A dry look is not stored: the next digest still compares with d2.
	now = now.Add(time.Hour)
	d3, _ := s.Run(ctx, Request{Clusters: []string{"prod"}, Source: SourceCLI, NoStore: true})
	if d3.Stored || !d3.Clusters[0].PreviousAt.Equal(d2.GeneratedAt) {
		t.Errorf("dry look: stored=%v previous %v", d3.Stored, d3.Clusters[0].PreviousAt)
	}
	var buf bytes.Buffer
	if err := WriteText(&buf, d2); err != nil {
		t.Fatal(err)
	}
	golden(t, "digest.txt", buf.Bytes())

	// The coordination node stops answering: act, with the playbook's action.
	fd.d = func() *diagnose.Diagnosis {
		d := healthyRound(now, tables, znodes)
		d.Results[6] = res("keeper.ruok", "zk-1", probe.Crit, map[string]float64{"ok": 0}, nil)
		d.Results[7] = probe.Result{Probe: "keeper.mntr", Node: "zk-1", Status: probe.Unknown, Skipped: "after ruok failed"}
		d.Findings = []diagnose.Finding{{Status: probe.Crit, Probe: "keeper.ruok", Node: "zk-1", Summary: "zk-1 unreachable"}}
		d.Status = probe.Crit
		return d
	}
	d4, _ := s.Run(ctx, Request{Clusters: []string{"prod"}, Source: SourceCLI, NoStore: true})
	if d4.Verdict != Act || len(d4.Clusters[0].Actions) != 1 || d4.Clusters[0].Actions[0].Kind != "ddl_freeze" || d4.Clusters[0].Actions[0].Playbook != "keeper-down" {
		t.Errorf("keeper down: %s %+v %+v", d4.Verdict, d4.Clusters[0].Reasons, d4.Clusters[0].Actions)
	}
	if _, err := s.Run(ctx, Request{Clusters: []string{"nope"}}); !errors.Is(err, diagnose.ErrUnknownCluster) {
		t.Errorf("unknown cluster: %v", err)
	}
}

func TestServiceSkipsRatherThanStacks(t *testing.T) {
	fd := &fakeDiag{d: func() *diagnose.Diagnosis { return healthyRound(time.Now(), 1, 1) }, block: make(chan struct{})}
	s := New(Options{Diagnoser: fd})
	ctx := context.Background()
	first := make(chan error, 1)
	go func() {
		_, err := s.Run(ctx, Request{Name: "morning", Clusters: []string{"prod"}})
		first <- err
	}()
	// Wait until the first run is inside the diagnosis.
	for {
		fd.mu.Lock()
		n := fd.calls
		fd.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := s.Run(ctx, Request{Name: "morning", Clusters: []string{"prod"}}); !errors.Is(err, ErrSkipped) {
		t.Fatalf("second run while the first is going: %v", err)
	}
	close(fd.block)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	d, err := s.Run(ctx, Request{Name: "morning", Clusters: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	if fd.calls != 2 {
		t.Errorf("%d diagnoses, want 2 (the skipped run asked for none)", fd.calls)
	}
	if len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "skipped") {
		t.Errorf("the next digest does not carry the skip note: %q", d.Notes)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./playbooks/digest/ -update)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (rerun with -update and review):\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// TestKeeperStateFromWhatTheNodeAllows: a node whose whitelist refuses
// ruok and mntr but answers srvr (ZooKeeper's default) is up, not down; a
// node that answers nothing readable is "could not be read" (watch), and
// only a failed ruok is down (act).
func TestKeeperStateFromWhatTheNodeAllows(t *testing.T) {
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	refused := func(p string) probe.Result {
		r := res(p, "zk-1", probe.Unknown, nil, nil)
		r.Summary = p + " is not allowed by the server's four-letter-word whitelist"
		if p == "keeper.ruok" {
			r.Facts = map[string]float64{"ok": 0}
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		keeper  []probe.Result
		verdict Verdict
		state   string
	}{
		{"srvr only", []probe.Result{refused("keeper.ruok"), refused("keeper.mntr"),
			res("keeper.srvr", "zk-1", probe.OK, map[string]float64{"latency_avg_ms": 1, "connections": 4, "node_count": 90, "outstanding": 0}, map[string]string{"mode": "standalone"})},
			Healthy, "standalone"},
		{"nothing readable", []probe.Result{refused("keeper.ruok"), refused("keeper.mntr"), refused("keeper.srvr")}, Watch, "unknown"},
		{"ruok fails", []probe.Result{res("keeper.ruok", "zk-1", probe.Crit, map[string]float64{"ok": 0}, nil)}, Act, "down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := healthyRound(start, 1, 1)
			d.Results = append(d.Results[:6], tc.keeper...)
			c := &Cluster{Name: "prod"}
			fromDiagnosis(c, d)
			judge(c, d, nil)
			if c.Verdict != tc.verdict || len(c.Keeper) != 1 || c.Keeper[0].State != tc.state {
				t.Errorf("verdict %s state %q, want %s %q (%+v)", c.Verdict, c.Keeper[0].State, tc.verdict, tc.state, c.Reasons)
			}
			if tc.state == "standalone" && (c.Keeper[0].Znodes == nil || *c.Keeper[0].Znodes != 90 || c.Keeper[0].Connections == nil) {
				t.Errorf("srvr figures not used: %+v", c.Keeper[0])
			}
		})
	}
}

// TestOnDemandDigestsShareOneComputation: fifty on-demand digests of one
// cluster asked for at once cost one diagnosis and one stored record.
func TestOnDemandDigestsShareOneComputation(t *testing.T) {
	fd := &fakeDiag{d: func() *diagnose.Diagnosis { return healthyRound(time.Now(), 1, 1) }, block: make(chan struct{})}
	h := &countingHistory{}
	s := New(Options{Diagnoser: fd, History: h})
	var wg sync.WaitGroup
	out := make([]*Digest, 50)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.Run(context.Background(), Request{Source: SourceSlack, Clusters: []string{"prod"}})
			if err != nil {
				t.Error(err)
			}
			out[i] = d
		}()
	}
	for {
		fd.mu.Lock()
		n := fd.calls
		fd.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the others join
	close(fd.block)
	wg.Wait()
	if fd.calls != 1 || h.saves != 1 {
		t.Errorf("%d diagnoses and %d stored digests for 50 concurrent asks, want 1 and 1", fd.calls, h.saves)
	}
	if out[0] == out[1] || out[0].Verdict != out[1].Verdict {
		t.Error("callers must get their own copies of the shared digest")
	}
}

type countingHistory struct {
	memHistory
	saves int
}

func (h *countingHistory) Save(ctx context.Context, d *Digest) error {
	h.mu.Lock()
	h.saves++
	h.mu.Unlock()
	return h.memHistory.Save(ctx, d)
}

type fakeRejections struct {
	counts  map[string]float64
	started time.Time
}

func (f *fakeRejections) Rejections(context.Context) (map[string]float64, time.Time, bool, error) {
	cp := map[string]float64{}
	for k, v := range f.counts {
		cp[k] = v
	}
	return cp, f.started, true, nil
}

// TestHealthRejectionsSincePreviousDigest: the webhook rejection counters
// are differenced against the previous digest's snapshot while the same
// process counts; after a restart they count since the start, and say so.
func TestHealthRejectionsSincePreviousDigest(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	rej := &fakeRejections{counts: map[string]float64{"unauthorized": 4}, started: now.Add(-time.Hour)}
	s := New(Options{Diagnoser: &fakeDiag{d: func() *diagnose.Diagnosis { return healthyRound(now, 1, 1) }}, History: &memHistory{},
		Rejection: rej, Now: func() time.Time { return now }})
	ctx := context.Background()
	run := func() *Digest {
		d, err := s.Run(ctx, Request{Clusters: []string{"prod"}, Source: SourceCLI})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if d := run(); d.Chmedic.Rejections["unauthorized"] != 4 || !strings.Contains(d.Chmedic.RejectionsNote, "since chmedic started") {
		t.Errorf("first: %+v %q", d.Chmedic.Rejections, d.Chmedic.RejectionsNote)
	}
	now = now.Add(time.Hour)
	rej.counts = map[string]float64{"unauthorized": 6, "queue_full": 2}
	d := run()
	if d.Chmedic.Rejections["unauthorized"] != 2 || d.Chmedic.Rejections["queue_full"] != 2 || d.Chmedic.RejectionsNote != "" || d.Chmedic.Verdict != Watch {
		t.Errorf("second: %+v %q %s", d.Chmedic.Rejections, d.Chmedic.RejectionsNote, d.Chmedic.Verdict)
	}
	// chmedic restarted: the counters start again.
	now = now.Add(time.Hour)
	rej.counts, rej.started = map[string]float64{"bad_payload": 1}, now.Add(-time.Minute)
	d = run()
	if len(d.Chmedic.Rejections) != 1 || d.Chmedic.Rejections["bad_payload"] != 1 || !strings.Contains(d.Chmedic.RejectionsNote, "since chmedic started") {
		t.Errorf("after a restart: %+v %q", d.Chmedic.Rejections, d.Chmedic.RejectionsNote)
	}
}

// TestDownNodeIsOneReason: a ClickHouse node that is down is one act
// reason, not also one "failed check" per probe that could not reach it.
func TestDownNodeIsOneReason(t *testing.T) {
	d := healthyRound(time.Now(), 1, 1)
	d.Results[1] = probe.Result{Probe: "clickhouse.ping", Node: "ch-2", Status: probe.Crit, Facts: map[string]float64{"up": 0}, Summary: "node ch-2 unreachable", Error: "connection refused"}
	for _, p := range []string{"clickhouse.replicas", "clickhouse.replication_queue", "clickhouse.keeper_latency"} {
		r := probe.Result{Probe: p, Node: "ch-2", Status: probe.Unknown, Summary: "node ch-2 unreachable", Error: "connection refused"}
		d.Results = append(d.Results, r)
		d.Findings = append(d.Findings, diagnose.Finding{Status: probe.Unknown, Probe: p, Node: "ch-2", Summary: r.Summary})
	}
	d.Findings = append(d.Findings, diagnose.Finding{Status: probe.Crit, Probe: "clickhouse.ping", Node: "ch-2", Summary: "node ch-2 unreachable"})
	c := &Cluster{Name: "prod"}
	fromDiagnosis(c, d)
	judge(c, d, nil)
	if c.Verdict != Act || len(c.Reasons) != 1 || !strings.Contains(c.Reasons[0].Text, "1 of 2 ClickHouse nodes down (ch-2)") {
		t.Errorf("verdict %s, reasons %+v", c.Verdict, c.Reasons)
	}
}
