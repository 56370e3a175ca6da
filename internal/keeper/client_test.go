package keeper

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeServer is a 4lw server on 127.0.0.1:0. For every connection it reads
// the 4-byte word and calls handle, which writes (or not) the answer; the
// connection is closed when handle returns, as ZooKeeper does.
type fakeServer struct {
	ln      net.Listener
	conns   atomic.Int32 // connections accepted
	active  atomic.Int32 // connections open right now
	maxConc atomic.Int32 // most connections open at once
	mu      sync.Mutex
	words   []string
	done    chan struct{}
	wg      sync.WaitGroup
}

func newFakeServer(t *testing.T, handle func(c net.Conn, word string)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			n := s.active.Add(1)
			for {
				m := s.maxConc.Load()
				if n <= m || s.maxConc.CompareAndSwap(m, n) {
					break
				}
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				defer s.active.Add(-1) // before Close: the client moves on at EOF
				// Close the connection when the test ends, even if handle
				// blocks (the "hung server" case).
				go func() { <-s.done; c.Close() }()
				buf := make([]byte, 4)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				_ = c.SetReadDeadline(time.Time{})
				s.mu.Lock()
				s.words = append(s.words, string(buf))
				s.mu.Unlock()
				handle(c, string(buf))
			}()
		}
	}()
	t.Cleanup(func() {
		close(s.done)
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.words...)
}

func reply(text string) func(net.Conn, string) {
	return func(c net.Conn, _ string) { _, _ = io.WriteString(c, text) }
}

// hang accepts, reads the word and never answers until the test ends.
func hang(done <-chan struct{}) func(net.Conn, string) {
	return func(net.Conn, string) { <-done }
}

func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCommand(t *testing.T) {
	mntr := fixture(t, "zk38-real-mntr.txt")
	tests := []struct {
		name     string
		cmd      string
		handle   func(net.Conn, string)
		wantText string
		wantErr  error
		errHas   string
	}{
		{name: "normal answer", cmd: "mntr", handle: reply(mntr), wantText: mntr},
		{name: "no trailing newline", cmd: "ruok", handle: reply("imok"), wantText: "imok"},
		{name: "isro", cmd: "isro", handle: reply("rw"), wantText: "rw"},
		{name: "whitelist rejection", cmd: "cons", handle: reply("cons is not executed because it is not in the whitelist.\n"),
			wantText: "cons is not executed because it is not in the whitelist.\n", wantErr: ErrNotWhitelisted, errHas: "cons"},
		{name: "zookeeper not serving", cmd: "mntr", handle: reply("This ZooKeeper instance is not currently serving requests\n"),
			wantText: "This ZooKeeper instance is not currently serving requests\n", wantErr: ErrNotServing, errHas: "quorum"},
		{name: "clickhouse keeper not serving", cmd: "srvr", handle: reply("This instance is not currently serving requests"),
			wantText: "This instance is not currently serving requests", wantErr: ErrNotServing},
		{name: "isro null", cmd: "isro", handle: reply("null"), wantText: "null", wantErr: ErrNotServing},
		{name: "closed without a byte", cmd: "mntr", handle: func(net.Conn, string) {}, wantErr: ErrNoAnswer,
			errHas: "four_letter_word_white_list"},
		{name: "reset without a byte", cmd: "conf", handle: func(c net.Conn, _ string) {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST instead of FIN
			}
		}, wantErr: ErrNoAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newFakeServer(t, tt.handle)
			c := &Client{Timeout: 2 * time.Second}
			text, err := c.Command(context.Background(), s.addr(), tt.cmd)
			if text != tt.wantText {
				t.Errorf("text = %q, want %q", clip(text, 80), clip(tt.wantText, 80))
			}
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.errHas != "" && !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %q does not mention %q", err, tt.errHas)
			}
			var kerr *Error
			if err != nil && (!errors.As(err, &kerr) || kerr.Cmd != tt.cmd || kerr.Addr != s.addr()) {
				t.Errorf("error is not a *Error naming cmd and addr: %#v", err)
			}
			if got := s.seen(); len(got) != 1 || got[0] != tt.cmd {
				t.Errorf("server saw %q, want exactly [%s]", got, tt.cmd)
			}
		})
	}
}

func TestCommandRefused(t *testing.T) {
	c := &Client{Timeout: time.Second}
	_, err := c.Command(context.Background(), refusedAddr(t), "ruok")
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("err = %v, want ErrUnreachable wrapping ECONNREFUSED", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("message %q", err)
	}
}

func TestCommandHungServer(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	s := newFakeServer(t, hang(done))
	c := &Client{Timeout: 200 * time.Millisecond}
	text, err := c.Command(context.Background(), s.addr(), "mntr")
	if !errors.Is(err, ErrTimeout) || text != "" {
		t.Fatalf("text=%q err = %v, want ErrTimeout", text, err)
	}
	if !strings.Contains(err.Error(), "no answer within 200ms: server accepted the connection but did not reply") {
		t.Errorf("message %q", err)
	}
}

func TestCommandPartialThenHang(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	s := newFakeServer(t, func(c net.Conn, _ string) {
		_, _ = io.WriteString(c, "zk_version\t3.4.14\n")
		<-done
	})
	c := &Client{Timeout: 200 * time.Millisecond}
	text, err := c.Command(context.Background(), s.addr(), "mntr")
	if !errors.Is(err, ErrTimeout) || text != "zk_version\t3.4.14\n" {
		t.Fatalf("text=%q err=%v", text, err)
	}
	if !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("message %q", err)
	}
}

func TestCommandTooLarge(t *testing.T) {
	big := strings.Repeat("zk_x\t1\n", 10000) // 70 kB
	s := newFakeServer(t, reply(big))
	c := &Client{Timeout: 2 * time.Second, MaxResponseBytes: 1024}
	text, err := c.Command(context.Background(), s.addr(), "mntr")
	if !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if len(text) != 1024 || text != big[:1024] {
		t.Errorf("got %d bytes, want the first 1024", len(text))
	}
	// Exactly at the limit is fine.
	s2 := newFakeServer(t, reply(big[:1024]))
	if text, err := c.Command(context.Background(), s2.addr(), "mntr"); err != nil || len(text) != 1024 {
		t.Errorf("at limit: %d bytes, %v", len(text), err)
	}
}

func TestCommandContext(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	s := newFakeServer(t, hang(done))
	c := &Client{Timeout: 10 * time.Second}

	t.Run("canceled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := c.Command(ctx, s.addr(), "srvr")
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("already canceled", func(t *testing.T) {
		before := s.conns.Load()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Command(ctx, s.addr(), "srvr")
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if s.conns.Load() != before {
			t.Error("a canceled context must not open a connection")
		}
	})
	t.Run("context deadline sooner than Timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		_, err := c.Command(ctx, s.addr(), "srvr")
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})
}

func TestCommandValidation(t *testing.T) {
	s := newFakeServer(t, reply("x"))
	c := &Client{}
	for _, cmd := range []string{"wchc", "wchp", "dump", "srst", "rcvr", "MNTR", "", "mntrx", "abcd"} {
		_, err := c.Command(context.Background(), s.addr(), cmd)
		if !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("%q: err = %v", cmd, err)
		}
	}
	_, err := c.Command(context.Background(), s.addr(), "wchc")
	if !strings.Contains(err.Error(), "expensive") && !strings.Contains(err.Error(), "slow") {
		t.Errorf("wchc refusal should say why: %v", err)
	}
	if _, err := c.Command(context.Background(), "no-port", "ruok"); !errors.Is(err, ErrInvalidAddress) {
		t.Errorf("bad address: %v", err)
	}
	if n := s.conns.Load(); n != 0 {
		t.Errorf("invalid commands opened %d connections", n)
	}
	for _, cmd := range SupportedCommands() {
		if ValidateCommand(cmd) != nil {
			t.Errorf("%s should be valid", cmd)
		}
	}
}

func TestCustomDial(t *testing.T) {
	s := newFakeServer(t, reply("imok"))
	var dialed []string
	c := &Client{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, network+" "+addr)
		var d net.Dialer
		return d.DialContext(ctx, network, s.addr()) // e.g. a tunnel
	}}
	text, err := c.Command(context.Background(), "zk1.internal:2181", "ruok")
	if err != nil || text != "imok" || len(dialed) != 1 || dialed[0] != "tcp zk1.internal:2181" {
		t.Fatalf("text=%q err=%v dialed=%v", text, err, dialed)
	}
}

// zk38Answers answers like the real ZooKeeper 3.8 captured in testdata,
// with "cons" missing from the whitelist.
func zk38Answers(t *testing.T) func(net.Conn, string) {
	answers := map[string]string{}
	for _, w := range []string{"ruok", "srvr", "mntr", "isro", "conf", "wchs", "dirs", "stat", "envi"} {
		answers[w] = fixture(t, "zk38-real-"+w+".txt")
	}
	answers["cons"] = "cons is not executed because it is not in the whitelist.\n"
	return func(c net.Conn, w string) {
		time.Sleep(5 * time.Millisecond) // widen the window a parallel client would need
		_, _ = io.WriteString(c, answers[w])
	}
}

func TestSnapshot(t *testing.T) {
	s := newFakeServer(t, zk38Answers(t))
	c := &Client{Timeout: 2 * time.Second}
	snap := c.Snapshot(context.Background(), s.addr(), nil)

	if got, want := strings.Join(s.seen(), ","), strings.Join(DefaultSnapshotCommands(), ","); got != want {
		t.Errorf("server saw %s, want %s (in order)", got, want)
	}
	if m := s.maxConc.Load(); m != 1 {
		t.Errorf("at most %d connections were open at once, want 1 (sequential)", m)
	}
	if snap.Unreachable {
		t.Error("node marked unreachable")
	}
	if snap.Ruok == nil || !snap.Ruok.Value || snap.Ruok.Err != nil {
		t.Errorf("ruok: %+v", snap.Ruok)
	}
	if snap.Srvr == nil || snap.Srvr.Value.Mode != "standalone" || snap.Srvr.Value.Zxid != 6 {
		t.Errorf("srvr: %+v", snap.Srvr)
	}
	if snap.Mntr == nil || snap.Mntr.Value.ZnodeCount != 9 || snap.Mntr.Raw == "" || snap.Mntr.Duration <= 0 {
		t.Errorf("mntr: %+v", snap.Mntr)
	}
	if snap.Isro == nil || snap.Isro.Value || snap.Isro.Err != nil {
		t.Errorf("isro: %+v", snap.Isro)
	}
	if snap.Conf == nil || snap.Conf.Value.MaxClientCnxns != 60 {
		t.Errorf("conf: %+v", snap.Conf)
	}
	if snap.Wchs == nil || snap.Wchs.Value.TotalWatches != 3 {
		t.Errorf("wchs: %+v", snap.Wchs)
	}
	if snap.Dirs == nil || snap.Dirs.Value.LogBytes != 67109337 {
		t.Errorf("dirs: %+v", snap.Dirs)
	}
	// cons is not whitelisted: recorded as such, the rest went on.
	if snap.Cons == nil || !errors.Is(snap.Cons.Err, ErrNotWhitelisted) || snap.Cons.Skipped || snap.Cons.Value != nil {
		t.Errorf("cons: %+v", snap.Cons)
	}
	if snap.Stat != nil || snap.Envi != nil {
		t.Error("commands not requested must stay nil")
	}
	if len(snap.All) != len(DefaultSnapshotCommands()) || !errors.Is(snap.Err(), ErrNotWhitelisted) {
		t.Errorf("All = %d entries, Err() = %v", len(snap.All), snap.Err())
	}
}

func TestSnapshotSkipsAfterTimeout(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	s := newFakeServer(t, hang(done))
	c := &Client{Timeout: 200 * time.Millisecond}
	cmds := []string{"ruok", "srvr", "mntr", "cons", "conf", "wchs", "dirs", "isro"}
	snap := c.Snapshot(context.Background(), s.addr(), cmds)

	if n := s.conns.Load(); n != 1 {
		t.Fatalf("the hung server saw %d connections, want exactly 1", n)
	}
	if !snap.Unreachable {
		t.Error("Unreachable not set")
	}
	if len(snap.All) != len(cmds) {
		t.Fatalf("All has %d results, want %d", len(snap.All), len(cmds))
	}
	first := snap.All[0]
	if first.Skipped || !errors.Is(first.Err, ErrTimeout) {
		t.Errorf("first command: %+v", first)
	}
	for _, r := range snap.All[1:] {
		if !r.Skipped || !errors.Is(r.Err, ErrSkipped) || !strings.HasPrefix(r.Err.Error(), "skipped: node unreachable") {
			t.Errorf("%s: skipped=%v err=%v", r.Cmd, r.Skipped, r.Err)
		}
		if r.Duration != 0 || r.Raw != "" {
			t.Errorf("%s: a skipped command has no duration or text", r.Cmd)
		}
	}
	if snap.Mntr == nil || !snap.Mntr.Skipped {
		t.Errorf("typed slot not filled for a skipped command: %+v", snap.Mntr)
	}
}

func TestSnapshotSkipsWhenRefused(t *testing.T) {
	c := &Client{Timeout: time.Second}
	snap := c.Snapshot(context.Background(), refusedAddr(t), []string{"srvr", "mntr", "ruok"})
	if !snap.Unreachable || !errors.Is(snap.Srvr.Err, ErrUnreachable) || !snap.Mntr.Skipped || !snap.Ruok.Skipped {
		t.Fatalf("%+v", snap)
	}
}

func TestSnapshotInvalidAndDuplicate(t *testing.T) {
	s := newFakeServer(t, zk38Answers(t))
	c := &Client{}
	snap := c.Snapshot(context.Background(), s.addr(), []string{"ruok", "wchc", "ruok", "dump", "envi"})
	if got := strings.Join(s.seen(), ","); got != "ruok,envi" {
		t.Errorf("server saw %s, want ruok,envi", got)
	}
	if len(snap.All) != 4 || !errors.Is(snap.All[1].Err, ErrInvalidCommand) || !errors.Is(snap.All[2].Err, ErrInvalidCommand) {
		t.Errorf("All = %+v", snap.All)
	}
	if snap.Envi == nil || snap.Envi.Value["java.version"] != "17.0.15" {
		t.Errorf("envi: %+v", snap.Envi)
	}
}

func TestSnapshotContextCanceled(t *testing.T) {
	done := make(chan struct{})
	defer close(done)
	s := newFakeServer(t, hang(done))
	c := &Client{Timeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	snap := c.Snapshot(ctx, s.addr(), []string{"srvr", "mntr"})
	if s.conns.Load() != 1 || !errors.Is(snap.Srvr.Err, context.Canceled) || !snap.Mntr.Skipped {
		t.Fatalf("conns=%d srvr=%v mntr=%+v", s.conns.Load(), snap.Srvr.Err, snap.Mntr)
	}
	if snap.Unreachable {
		t.Error("a canceled context does not make the node unreachable")
	}
}

func TestSnapshotParseError(t *testing.T) {
	s := newFakeServer(t, reply("this is not mntr output\n"))
	snap := (&Client{}).Snapshot(context.Background(), s.addr(), []string{"mntr", "ruok"})
	if !errors.Is(snap.Mntr.Err, ErrMalformed) || snap.Mntr.Raw == "" {
		t.Errorf("mntr: %+v", snap.Mntr)
	}
	if snap.Ruok.Skipped || !errors.Is(snap.Ruok.Err, ErrMalformed) || snap.Ruok.Value {
		t.Errorf("ruok: %+v", snap.Ruok)
	}
}
