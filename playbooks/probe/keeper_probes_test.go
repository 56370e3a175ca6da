package probe

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/keeper"
)

// The keeper probes are tested against a fake four-letter-word server on
// 127.0.0.1 read by the real keeper.Client, with answers from
// internal/keeper/testdata (real servers' output, or written from the
// servers' source).

const (
	closeSilently = "<close>" // accept, read the word, close without a byte (ClickHouse Keeper's refusal)
	zkRefusal     = "%s is not executed because it is not in the whitelist.\n"
)

func kfixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "keeper", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fake4lw answers each word with replies[word] (zkRefusal for a word it
// does not know, as ZooKeeper 3.5+ does for one outside its whitelist),
// after delay.
func fake4lw(t *testing.T, replies map[string]string, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 4)
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				time.Sleep(delay)
				text, ok := replies[string(buf)]
				if !ok {
					text = fmt.Sprintf(zkRefusal, buf)
				}
				if text != closeSilently {
					_, _ = io.WriteString(c, text)
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func snapshot(t *testing.T, addr string, words ...string) *keeper.Snapshot {
	t.Helper()
	if len(words) == 0 {
		words = keeper.DefaultSnapshotCommands()
	}
	c := &keeper.Client{Timeout: time.Second}
	s := c.Snapshot(context.Background(), addr, words)
	return &s
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type keeperCase struct {
	name    string
	replies map[string]string // nil: nothing listens
	words   []string          // default: DefaultSnapshotCommands
	kind    keeper.Flavor
	th      func(*Thresholds)

	status      Status
	unavailable bool // the result is listed as not available, not scored
	facts       map[string]float64
	noFacts     []string
	attrs       map[string]string
	summary     []string
}

func runKeeperCases(t *testing.T, spec Spec, cases []keeperCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := closedAddr(t)
			if c.replies != nil {
				addr = fake4lw(t, c.replies, 0)
			}
			tg := &Target{Cluster: "c", Node: "zk-1", Addr: addr, Keeper: snapshot(t, addr, c.words...), KeeperKind: c.kind,
				Thresholds: DefaultThresholds(), Now: time.Now}
			if c.th != nil {
				c.th(&tg.Thresholds)
			}
			r := spec.Run(context.Background(), tg)
			if r.Status != c.status {
				t.Errorf("status = %s, want %s (summary %q, error %q)", r.Status, c.status, r.Summary, r.Error)
			}
			if r.IsUnavailable() != c.unavailable {
				t.Errorf("unavailable = %v, want %v (attrs %v)", r.IsUnavailable(), c.unavailable, r.Attrs)
			}
			for k, want := range c.facts {
				if got, ok := r.Fact(k); !ok || !approx(got, want) {
					t.Errorf("fact %s = %v (present %v), want %v; facts %v", k, got, ok, want, r.Facts)
				}
			}
			for _, k := range c.noFacts {
				if v, ok := r.Fact(k); ok {
					t.Errorf("fact %s = %v, want absent", k, v)
				}
			}
			for k, want := range c.attrs {
				if got := r.Attrs[k]; got != want {
					t.Errorf("attr %s = %q, want %q", k, got, want)
				}
			}
			for _, s := range c.summary {
				if !strings.Contains(r.Summary, s) {
					t.Errorf("summary %q lacks %q", r.Summary, s)
				}
			}
			if strings.Contains(r.Summary, "\n") {
				t.Errorf("summary is not one line: %q", r.Summary)
			}
		})
	}
}

// replace returns s with each old → new pair substituted.
func replace(s string, pairs ...string) string { return strings.NewReplacer(pairs...).Replace(s) }

func TestKeeperRuok(t *testing.T) {
	srvr := kfixture(t, "zk38-real-srvr.txt")
	runKeeperCases(t, keeperRuok(), []keeperCase{
		{name: "imok", replies: map[string]string{"ruok": "imok"}, words: []string{"ruok"},
			status: OK, facts: map[string]float64{"ok": 1}, summary: []string{"imok"}},
		// ZooKeeper 3.5+ default whitelist: only srvr. The refusal is
		// itself an answer, and srvr answers: the node is up.
		{name: "zookeeper whitelist srvr only", replies: map[string]string{"srvr": srvr},
			status: OK, facts: map[string]float64{"ok": 1}, attrs: map[string]string{"alive_by": "srvr", AttrRefusedWord: "ruok"},
			summary: []string{"alive: srvr answered (ruok is refused by the whitelist)"}},
		{name: "every word refused", replies: map[string]string{}, words: []string{"ruok", "srvr"},
			status: OK, facts: map[string]float64{"ok": 1}, attrs: map[string]string{"alive_by": "ruok"},
			summary: []string{"alive: ruok was refused by the whitelist, which only a running server does"}},
		// Liveness does not need ruok among the configured words.
		{name: "ruok not asked", replies: map[string]string{"srvr": srvr}, words: []string{"srvr", "mntr"},
			status: OK, facts: map[string]float64{"ok": 1}, attrs: map[string]string{"alive_by": "srvr"}, summary: []string{"alive: srvr answered"}},
		// ClickHouse Keeper closes the connection on a word outside its
		// four_letter_word_white_list: with the kind known, that is a refusal.
		{name: "clickhouse keeper refuses ruok", kind: keeper.FlavorClickHouseKeeper,
			replies: map[string]string{"ruok": closeSilently, "srvr": kfixture(t, "chk25-srvr-observer.txt")}, words: []string{"ruok", "srvr"},
			status: OK, facts: map[string]float64{"ok": 1}, attrs: map[string]string{AttrRefusedWord: "ruok", AttrKeeperKind: "clickhouse-keeper"},
			summary: []string{"alive"}},
		// On ZooKeeper silence is not a refusal: the node answers srvr but
		// not ruok, which is worth a warning.
		{name: "zookeeper silent on ruok only", kind: keeper.FlavorZooKeeper,
			replies: map[string]string{"ruok": closeSilently, "srvr": srvr}, words: []string{"ruok", "srvr"},
			status: Warn, facts: map[string]float64{"ok": 1}, attrs: map[string]string{"alive_by": "srvr"}, summary: []string{"alive: srvr answered, but ruok did not"}},
		{name: "silent on every word", kind: keeper.FlavorZooKeeper,
			replies: map[string]string{"ruok": closeSilently, "srvr": closeSilently}, words: []string{"ruok", "srvr"},
			status: Crit, facts: map[string]float64{"ok": 0}, summary: []string{"none of the 2 words tried got an answer"}},
		{name: "connection refused", status: Crit, facts: map[string]float64{"ok": 0}, summary: []string{"unreachable", "connection refused"}},
	})
}

func TestKeeperMntr(t *testing.T) {
	zk := kfixture(t, "zk38-real-mntr.txt") // avg 3.1538 ms, 44 of 20000 fds
	chk := kfixture(t, "chk25-mntr-observer.txt")
	mntr := func(text string) map[string]string { return map[string]string{"mntr": text} }
	runKeeperCases(t, keeperMntr(), []keeperCase{
		{name: "healthy zookeeper", replies: mntr(zk), status: OK,
			facts: map[string]float64{"avg_latency_ms": 3.1538, "open_fds": 44, "max_fds": 20000, "fd_ratio": 44.0 / 20000, "outstanding_requests": 0},
			attrs: map[string]string{"server_state": "standalone", "flavor": "zookeeper"}},
		{name: "outstanding below warn", replies: mntr(replace(zk, "zk_outstanding_requests\t0", "zk_outstanding_requests\t9")), status: OK,
			facts: map[string]float64{"outstanding_requests": 9}},
		{name: "outstanding warn", replies: mntr(replace(zk, "zk_outstanding_requests\t0", "zk_outstanding_requests\t10")), status: Warn,
			summary: []string{"10 outstanding requests"}},
		{name: "outstanding crit", replies: mntr(replace(zk, "zk_outstanding_requests\t0", "zk_outstanding_requests\t100")), status: Crit,
			summary: []string{"100 outstanding requests"}},
		{name: "outstanding thresholds from the target", replies: mntr(replace(zk, "zk_outstanding_requests\t0", "zk_outstanding_requests\t10")),
			th: func(th *Thresholds) { th.OutstandingRequestsWarn, th.OutstandingRequestsCrit = 20, 40 }, status: OK},
		{name: "fd ratio below warn", replies: mntr(replace(zk, "zk_open_file_descriptor_count\t44", "zk_open_file_descriptor_count\t15999")),
			status: OK, facts: map[string]float64{"fd_ratio": 15999.0 / 20000}},
		{name: "fd ratio warn", replies: mntr(replace(zk, "zk_open_file_descriptor_count\t44", "zk_open_file_descriptor_count\t16000")),
			status: Warn, facts: map[string]float64{"fd_ratio": 0.8}, summary: []string{"16000 of 20000 file descriptors open"}},
		{name: "fd ratio threshold from the target", replies: mntr(replace(zk, "zk_open_file_descriptor_count\t44", "zk_open_file_descriptor_count\t16000")),
			th: func(th *Thresholds) { th.FDRatioWarn = 0.9 }, status: OK},
		{name: "latency warn", replies: mntr(replace(zk, "zk_avg_latency\t3.1538", "zk_avg_latency\t12.5")), status: Warn,
			summary: []string{"average latency 12.5 ms (stressed above 10ms)"}},
		{name: "latency crit", replies: mntr(replace(zk, "zk_avg_latency\t3.1538", "zk_avg_latency\t250")), status: Crit},
		// Point 2: ClickHouse Keeper prints an unsigned 2^64-1 for "no limit".
		{name: "clickhouse keeper without fd limit", replies: mntr(chk), kind: keeper.FlavorClickHouseKeeper, status: OK,
			facts: map[string]float64{"open_fds": 143}, noFacts: []string{"max_fds", "fd_ratio"},
			attrs: map[string]string{"max_fds": "unlimited", "server_state": "observer", "flavor": "clickhouse-keeper"}},
		{name: "refused by the whitelist", replies: map[string]string{}, words: []string{"srvr", "mntr"},
			status: Unknown, unavailable: true, attrs: map[string]string{AttrRefusedWord: "mntr", AttrRequestedWords: "srvr,mntr"},
			summary: []string{"mntr refused by ZooKeeper's four-letter-word whitelist"}},
		{name: "not serving", replies: mntr(kfixture(t, "zk38-mntr-notserving.txt")), status: Crit,
			attrs: map[string]string{"server_state": "not serving"}},
	})
}

func TestKeeperSrvr(t *testing.T) {
	zk := kfixture(t, "zk38-real-srvr.txt") // standalone, 0/3.1538/19, 3 connections, 9 nodes, zxid 0x6
	srvrOnly := func(text string) map[string]string { return map[string]string{"srvr": text} }
	withMntr := func(text string) map[string]string {
		return map[string]string{"srvr": text, "mntr": kfixture(t, "zk38-real-mntr.txt")}
	}
	runKeeperCases(t, keeperSrvr(), []keeperCase{
		{name: "mode and figures", replies: srvrOnly(zk), status: OK,
			facts: map[string]float64{"latency_avg_ms": 3.1538, "latency_max_ms": 19, "connections": 3, "node_count": 9,
				"zxid_epoch": 0, "zxid_counter": 6, "zxid_counter_share": 6.0 / (1 << 32)},
			attrs:   map[string]string{"mode": "standalone", "flavor": "zookeeper"},
			summary: []string{"standalone", "avg 3.2 ms / max 19 ms", "3 connections", "9 znodes"}},
		// Without mntr, srvr's figures are held against the thresholds.
		{name: "latency crit from srvr when mntr is refused", replies: srvrOnly(replace(zk, "0/3.1538/19", "1/180/900")), status: Crit,
			summary: []string{"average latency 180.0 ms (severe above 100ms)"}},
		{name: "outstanding warn from srvr when mntr is refused", replies: srvrOnly(replace(zk, "Outstanding: 0", "Outstanding: 12")), status: Warn,
			summary: []string{"12 outstanding requests"}},
		{name: "srvr leaves latency to mntr when it answers", replies: withMntr(replace(zk, "0/3.1538/19", "1/180/900")), status: OK},
		// Point 6: the counter nears 2^32.
		{name: "zxid counter below the warn share", replies: srvrOnly(replace(zk, "Zxid: 0x6", "Zxid: 0x5e6000000")), status: OK,
			facts: map[string]float64{"zxid_epoch": 5, "zxid_counter_share": float64(0xe6000000) / (1 << 32)}},
		{name: "zxid counter at 93.75% of 2^32", replies: srvrOnly(replace(zk, "Zxid: 0x6", "Zxid: 0x5f0000000")), status: Warn,
			facts:   map[string]float64{"zxid_epoch": 5, "zxid_counter": 0xf0000000, "zxid_counter_share": 0.9375},
			summary: []string{"zxid counter at 93.8% of 2^32", "new epoch"}},
		{name: "zxid warn share from the target", replies: srvrOnly(replace(zk, "Zxid: 0x6", "Zxid: 0x5f0000000")),
			th: func(th *Thresholds) { th.ZxidWarnShare = 0.95 }, status: OK},
		{name: "clickhouse keeper has no zxid counter limit", kind: keeper.FlavorClickHouseKeeper,
			replies: srvrOnly(kfixture(t, "chk25-srvr-observer.txt")), status: OK,
			noFacts: []string{"zxid_epoch", "zxid_counter_share"}, attrs: map[string]string{"mode": "observer"}},
		{name: "configured kind contradicted", kind: keeper.FlavorClickHouseKeeper, replies: srvrOnly(zk), status: Warn,
			summary: []string{"clusters[].keeper.kind is clickhouse-keeper but this node answers as ZooKeeper"}},
		{name: "refused", replies: map[string]string{"srvr": fmt.Sprintf(zkRefusal, "srvr")}, status: Unknown, unavailable: true},
	})
}

func TestKeeperIsro(t *testing.T) {
	chkMntr := kfixture(t, "chk25-mntr-observer.txt")
	runKeeperCases(t, keeperIsro(), []keeperCase{
		{name: "read-write", replies: map[string]string{"isro": "rw"}, status: OK, facts: map[string]float64{"read_only": 0}},
		{name: "zookeeper read-only mode", replies: map[string]string{"isro": "ro"}, kind: keeper.FlavorZooKeeper,
			status: Crit, facts: map[string]float64{"read_only": 1}, summary: []string{"read-only mode", "writes are refused"}},
		// Point 3: on ClickHouse Keeper ro means an observer.
		{name: "clickhouse keeper observer, mntr agrees", kind: keeper.FlavorClickHouseKeeper,
			replies: map[string]string{"isro": kfixture(t, "chk25-isro-observer.txt"), "mntr": chkMntr},
			status:  OK, facts: map[string]float64{"read_only": 0, "observer": 1}, summary: []string{"observer", "mntr zk_server_state agrees"}},
		{name: "clickhouse keeper observer, not cross-checked", kind: keeper.FlavorClickHouseKeeper,
			replies: map[string]string{"isro": "ro", "mntr": closeSilently, "srvr": closeSilently},
			status:  OK, facts: map[string]float64{"read_only": 0, "observer": 1}, summary: []string{"not cross-checked"}},
		{name: "clickhouse keeper ro but mntr says follower", kind: keeper.FlavorClickHouseKeeper,
			replies: map[string]string{"isro": "ro", "mntr": replace(chkMntr, "observer", "follower")},
			status:  Warn, facts: map[string]float64{"read_only": 0}, summary: []string{"mntr zk_server_state says follower"}},
		{name: "kind from the answers when not configured",
			replies: map[string]string{"isro": "ro", "mntr": chkMntr, "srvr": kfixture(t, "chk25-srvr-observer.txt")},
			status:  OK, facts: map[string]float64{"read_only": 0, "observer": 1}},
		{name: "not serving", replies: map[string]string{"isro": "null"}, status: Crit},
	})
}

func TestKeeperCons(t *testing.T) {
	conf := kfixture(t, "zk38-real-conf.txt") // maxClientCnxns=60
	cons := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, " /10.0.0.7:%d[1](queued=0,recved=5,sent=5,sid=0x1000%04x,lop=PING,est=1795463651250,to=30000,lcxid=0x2,lzxid=0x6,lresp=1031662,llat=1,minlat=0,avglat=0,maxlat=1)\n", 40000+i, i)
		}
		return b.String() + "\n"
	}
	runKeeperCases(t, keeperCons(), []keeperCase{
		{name: "below the ratio", replies: map[string]string{"conf": conf, "cons": cons(47)}, words: []string{"conf", "cons"}, status: OK,
			facts: map[string]float64{"connections": 47, "max_per_ip": 47, "max_per_ip_ratio": 47.0 / 60}, attrs: map[string]string{"top_ip": "10.0.0.7"}},
		{name: "at the ratio", replies: map[string]string{"conf": conf, "cons": cons(48)}, words: []string{"conf", "cons"}, status: Warn,
			facts: map[string]float64{"max_per_ip_ratio": 0.8}, summary: []string{"10.0.0.7 holds 48 connections of maxClientCnxns 60 (80%)"}},
		{name: "ratio from the target", replies: map[string]string{"conf": conf, "cons": cons(48)}, words: []string{"conf", "cons"},
			th: func(th *Thresholds) { th.ConnectionsRatioWarn = 0.9 }, status: OK},
		{name: "no limit known without conf", replies: map[string]string{"cons": cons(59)}, words: []string{"cons"}, status: OK,
			noFacts: []string{"max_per_ip_ratio"}},
	})
}

func TestKeeperWchsDirsConf(t *testing.T) {
	runKeeperCases(t, keeperWchs(), []keeperCase{
		{name: "wchs", replies: map[string]string{"wchs": kfixture(t, "zk38-real-wchs.txt")}, status: OK,
			facts: map[string]float64{"watches": 3, "watch_paths": 2, "watch_connections": 2}},
	})
	runKeeperCases(t, keeperDirs(), []keeperCase{
		{name: "dirs", replies: map[string]string{"dirs": kfixture(t, "zk38-real-dirs.txt")}, status: OK,
			facts: map[string]float64{"data_bytes": 67109337, "log_bytes": 67109337}, summary: []string{"64.0 MiB"}},
	})
	runKeeperCases(t, keeperConf(), []keeperCase{
		{name: "conf", replies: map[string]string{"conf": kfixture(t, "zk38-real-conf.txt")}, status: OK,
			facts: map[string]float64{"max_client_cnxns": 60, "min_session_timeout_ms": 4000, "max_session_timeout_ms": 40000}},
		{name: "clickhouse keeper refuses conf", kind: keeper.FlavorClickHouseKeeper, replies: map[string]string{"conf": closeSilently, "srvr": "Mode: follower\n"},
			words: []string{"srvr", "conf"}, status: Unknown, unavailable: true,
			summary: []string{"conf refused by ClickHouse Keeper's four-letter-word whitelist"}},
	})
}

// Point 5: each keeper probe reports the real time of its word's exchange.
func TestKeeperProbesReportTheExchangeTime(t *testing.T) {
	const delay = 30 * time.Millisecond
	addr := fake4lw(t, map[string]string{"ruok": "imok", "srvr": kfixture(t, "zk38-real-srvr.txt"), "mntr": kfixture(t, "zk38-real-mntr.txt")}, delay)
	snap := snapshot(t, addr, "ruok", "srvr", "mntr")
	tg := &Target{Node: "zk-1", Addr: addr, Keeper: snap, Thresholds: DefaultThresholds(), Now: time.Now}
	for _, spec := range []Spec{keeperRuok(), keeperSrvr(), keeperMntr()} {
		r := spec.Run(context.Background(), tg)
		if r.Duration < delay || r.Duration > 2*time.Second {
			t.Errorf("%s duration %s, want the exchange's (≥ %s)", spec.Name, r.Duration, delay)
		}
		if r.Started.IsZero() || r.Started.Before(snap.Start) {
			t.Errorf("%s started %s, before the snapshot's start %s", spec.Name, r.Started, snap.Start)
		}
	}
}
