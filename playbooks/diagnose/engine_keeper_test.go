package diagnose_test

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
	"github.com/chmedic/chmedic/playbooks/diagnose"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// These tests run real rounds over fake four-letter-word servers on
// 127.0.0.1 (answers from internal/keeper/testdata), read by the real
// keeper.Client, with no ClickHouse node.

const silent = "<close>" // accept, read the word, close without a byte

// fakeKeeper answers each word with its reply; a word it has no reply for
// gets ZooKeeper 3.5+'s whitelist refusal.
type fakeKeeper struct {
	ln    net.Listener
	delay time.Duration
	mu    sync.Mutex
	reply map[string]string
}

func newFakeKeeper(t *testing.T, replies map[string]string, delay time.Duration) *fakeKeeper {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeKeeper{ln: ln, delay: delay, reply: replies}
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
				time.Sleep(f.delay)
				f.mu.Lock()
				text, ok := f.reply[string(buf)]
				f.mu.Unlock()
				if !ok {
					text = string(buf) + " is not executed because it is not in the whitelist.\n"
				}
				if text != silent {
					_, _ = io.WriteString(c, text)
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return f
}

func (f *fakeKeeper) set(word, text string) {
	f.mu.Lock()
	f.reply[word] = text
	f.mu.Unlock()
}

func (f *fakeKeeper) addr() string { return f.ln.Addr().String() }

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "internal", "keeper", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func keeperEngine(addrs ...string) *diagnose.Engine {
	c := &diagnose.Cluster{Name: "k", KeeperCommands: keeper.DefaultSnapshotCommands()}
	for i, a := range addrs {
		c.Keeper = append(c.Keeper, diagnose.KeeperNode{Name: fmt.Sprintf("zk-%d", i+1), Addr: a})
	}
	return diagnose.New([]*diagnose.Cluster{c}, diagnose.Options{CacheTTL: -1, Keeper: &keeper.Client{Timeout: time.Second}})
}

func roundOf(t *testing.T, e *diagnose.Engine) *diagnose.Diagnosis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := e.Diagnose(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func resultOf(t *testing.T, d *diagnose.Diagnosis, probeName, node string) probe.Result {
	t.Helper()
	for _, r := range d.Results {
		if r.Probe == probeName && r.Node == node {
			return r
		}
	}
	t.Fatalf("no %s result on %s", probeName, node)
	return probe.Result{}
}

func causeOf(d *diagnose.Diagnosis, name string) (diagnose.Cause, bool) {
	for _, c := range d.Causes {
		if c.Name == name {
			return c, true
		}
	}
	return diagnose.Cause{}, false
}

// Point 1: ZooKeeper 3.5+'s default whitelist allows only srvr. The refusals
// prove the servers are up; the verdict is not "down", it has the mode and
// figures from srvr, and it says what was refused and how to allow it.
func TestWhitelistRefusalIsNotADeadServer(t *testing.T) {
	srvr := fixture(t, "zk38-real-srvr.txt")
	a := newFakeKeeper(t, map[string]string{"srvr": srvr}, 0)
	b := newFakeKeeper(t, map[string]string{"srvr": strings.Replace(srvr, "Mode: standalone", "Mode: follower", 1)}, 0)
	d := roundOf(t, keeperEngine(a.addr(), b.addr()))
	if top, ok := d.Top(); ok && top.Name == "keeper_down" {
		t.Errorf("top cause %q (%v) on servers that answer srvr", top.Title, top.For)
	}
	if c, _ := causeOf(d, "keeper_down"); c.Likelihood != diagnose.Unlikely {
		t.Errorf("keeper_down is %s: %v", c.Likelihood, c.For)
	}
	if strings.Contains(d.Verdict, "does not answer") {
		t.Errorf("verdict %q", d.Verdict)
	}
	if d.Status != probe.OK {
		t.Errorf("status %s, verdict %q, findings %+v", d.Status, d.Verdict, d.Findings)
	}
	for _, node := range []string{"zk-1", "zk-2"} {
		ruok := resultOf(t, d, "keeper.ruok", node)
		if ok, _ := ruok.Fact("ok"); ok != 1 {
			t.Errorf("%s: ruok ok = %v, want 1 (alive)", node, ok)
		}
		s := resultOf(t, d, "keeper.srvr", node)
		for fact, want := range map[string]float64{"latency_avg_ms": 3.1538, "connections": 3, "node_count": 9} {
			if got, _ := s.Fact(fact); got != want {
				t.Errorf("%s: srvr %s = %v, want %v", node, fact, got, want)
			}
		}
	}
	if m := resultOf(t, d, "keeper.srvr", "zk-2").Attrs["mode"]; m != "follower" {
		t.Errorf("zk-2 mode %q", m)
	}
	na := strings.Join(d.NotAvailable, "\n")
	for _, want := range []string{"ruok, mntr, isro, conf, wchs, dirs, cons", "refused by ZooKeeper's whitelist on zk-1, zk-2",
		"4lw.commands.whitelist=ruok,srvr,mntr,isro,conf,wchs,dirs,cons"} {
		if !strings.Contains(na, want) {
			t.Errorf("not-available list lacks %q:\n%s", want, na)
		}
	}
}

// Point 1, ClickHouse Keeper: a word outside four_letter_word_white_list is
// answered by closing the connection; with the kind configured that is a
// refusal of a live server, and the advice names Keeper's setting.
func TestKeeperKindDecidesRefusalAndAdvice(t *testing.T) {
	f := newFakeKeeper(t, map[string]string{"ruok": silent, "mntr": silent, "isro": silent, "conf": silent, "wchs": silent, "dirs": silent, "cons": silent,
		"srvr": fixture(t, "chk25-srvr-observer.txt")}, 0)
	c := &diagnose.Cluster{Name: "k", KeeperCommands: keeper.DefaultSnapshotCommands(), KeeperKind: "clickhouse-keeper",
		Keeper: []diagnose.KeeperNode{{Name: "keeper-1", Addr: f.addr()}}}
	e := diagnose.New([]*diagnose.Cluster{c}, diagnose.Options{CacheTTL: -1, Keeper: &keeper.Client{Timeout: time.Second}})
	d := roundOf(t, e)
	ruok := resultOf(t, d, "keeper.ruok", "keeper-1")
	if ok, _ := ruok.Fact("ok"); ok != 1 {
		t.Errorf("ruok ok = %v, want 1", ok)
	}
	na := strings.Join(d.NotAvailable, "\n")
	if !strings.Contains(na, "refused by ClickHouse Keeper's whitelist") || !strings.Contains(na, "four_letter_word_white_list") ||
		strings.Contains(na, "4lw.commands.whitelist") {
		t.Errorf("advice for ClickHouse Keeper:\n%s", na)
	}
	if c, _ := causeOf(d, "jvm_gc"); !strings.Contains(strings.Join(c.Against, ";"), "not JVM-based") {
		t.Errorf("jvm_gc against: %v", c.Against)
	}
	if c, _ := causeOf(d, "zxid_overflow"); c.Likelihood != diagnose.Unlikely {
		t.Errorf("zxid_overflow on ClickHouse Keeper: %+v", c)
	}
}

// Point 2: ClickHouse Keeper's unsigned 2^64-1 ("no limit") does not cost
// the open file descriptor count.
func TestKeeperUnlimitedFileDescriptors(t *testing.T) {
	f := newFakeKeeper(t, map[string]string{"mntr": fixture(t, "chk25-mntr-observer.txt"), "ruok": "imok"}, 0)
	d := roundOf(t, keeperEngine(f.addr()))
	m := resultOf(t, d, "keeper.mntr", "zk-1")
	if open, ok := m.Fact("open_fds"); !ok || open != 143 {
		t.Errorf("open_fds = %v (present %v), want 143; result %+v", open, ok, m)
	}
	if _, ok := m.Fact("fd_ratio"); ok {
		t.Errorf("fd_ratio against an unlimited maximum: %v", m.Facts)
	}
}

// Point 3: on ClickHouse Keeper isro answers ro for an observer, a normal
// member: no "read-only", no quorum loss.
func TestKeeperObserverIsNotReadOnly(t *testing.T) {
	leader := newFakeKeeper(t, map[string]string{"ruok": "imok", "isro": "rw", "mntr": fixture(t, "chk24-mntr-leader.txt")}, 0)
	f := newFakeKeeper(t, map[string]string{"ruok": "imok", "isro": "ro", "mntr": fixture(t, "chk25-mntr-observer.txt"),
		"srvr": fixture(t, "chk25-srvr-observer.txt")}, 0)
	d := roundOf(t, keeperEngine(leader.addr(), f.addr()))
	isro := resultOf(t, d, "keeper.isro", "zk-2")
	if isro.Status == probe.Crit || strings.Contains(isro.Summary, "no quorum") {
		t.Errorf("isro on a Keeper observer: %s %q", isro.Status, isro.Summary)
	}
	c, _ := causeOf(d, "keeper_down")
	if strings.Contains(strings.Join(c.For, ";"), "read-only") {
		t.Errorf("keeper_down counts the observer: %v", c.For)
	}
	if c.Likelihood != diagnose.Unlikely {
		t.Errorf("keeper_down %s: %v", c.Likelihood, c.For)
	}
}

// Point 5: every four-letter-word probe reports the real time of its
// exchange, not 0s.
func TestKeeperProbeDurationsAreReal(t *testing.T) {
	const delay = 25 * time.Millisecond
	f := newFakeKeeper(t, map[string]string{"ruok": "imok", "srvr": fixture(t, "zk38-real-srvr.txt"), "mntr": fixture(t, "zk38-real-mntr.txt"),
		"isro": "rw", "conf": fixture(t, "zk38-real-conf.txt"), "wchs": fixture(t, "zk38-real-wchs.txt"),
		"dirs": fixture(t, "zk38-real-dirs.txt"), "cons": fixture(t, "zk38-real-cons.txt")}, delay)
	d := roundOf(t, keeperEngine(f.addr()))
	n := 0
	for _, r := range d.Results {
		if !strings.HasPrefix(r.Probe, "keeper.") {
			continue
		}
		n++
		if r.Duration < delay || r.Duration > 2*time.Second {
			t.Errorf("%s duration %s, want its exchange's (≥ %s)", r.Probe, r.Duration, delay)
		}
	}
	if n != 8 {
		t.Errorf("%d keeper results, want 8", n)
	}
}

// Point 6: the zxid counter's share of 2^32 is reported and warns near the
// end; when the next round sees a new epoch after a counter at the end, the
// overflow is ranked as the cause.
func TestZxidOverflowAcrossRounds(t *testing.T) {
	srvr := fixture(t, "zk38-real-srvr.txt")
	f := newFakeKeeper(t, map[string]string{"ruok": "imok", "srvr": strings.Replace(srvr, "Zxid: 0x6", "Zxid: 0x5fffff000", 1)}, 0)
	e := keeperEngine(f.addr())
	d := roundOf(t, e)
	s := resultOf(t, d, "keeper.srvr", "zk-1")
	if share, _ := s.Fact("zxid_counter_share"); share < 0.9999 || share >= 1 {
		t.Errorf("zxid_counter_share = %v", share)
	}
	if s.Status != probe.Warn || !strings.Contains(s.Summary, "of 2^32") {
		t.Errorf("srvr near the overflow: %s %q", s.Status, s.Summary)
	}
	if c, _ := causeOf(d, "zxid_overflow"); c.Likelihood == diagnose.Likely {
		t.Errorf("zxid_overflow likely before any wrap: %+v", c)
	}

	f.set("srvr", strings.Replace(srvr, "Zxid: 0x6", "Zxid: 0x600000010", 1))
	d = roundOf(t, e)
	c, ok := causeOf(d, "zxid_overflow")
	if !ok || c.Likelihood != diagnose.Likely || !strings.Contains(strings.Join(c.For, ";"), "went from 5 to 6") {
		t.Errorf("after the wrap: %+v", c)
	}
	if top, _ := d.Top(); top.Name != "zxid_overflow" {
		t.Errorf("top cause %q", top.Name)
	}
}
