package keeper

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

func TestLiveness(t *testing.T) {
	srvr := fixture(t, "zk38-real-srvr.txt")
	words := []string{"ruok", "srvr", "mntr"}
	tests := []struct {
		name    string
		handle  func(net.Conn, string)
		dead    bool // nothing listens
		kind    Flavor
		alive   bool
		by      string
		refused []string
	}{
		{name: "zookeeper whitelist srvr only", kind: FlavorZooKeeper, alive: true, by: "srvr", refused: []string{"ruok", "mntr"},
			handle: func(c net.Conn, w string) {
				if w == "srvr" {
					_, _ = io.WriteString(c, srvr)
					return
				}
				_, _ = io.WriteString(c, w+" is not executed because it is not in the whitelist.\n")
			}},
		{name: "clickhouse keeper closes on words outside its list", kind: FlavorClickHouseKeeper, alive: true, by: "srvr", refused: []string{"ruok", "mntr"},
			handle: func(c net.Conn, w string) {
				if w == "srvr" {
					_, _ = io.WriteString(c, fixture(t, "chk25-srvr-observer.txt"))
				}
			}},
		{name: "zookeeper silence is no refusal", kind: FlavorZooKeeper, alive: true, by: "srvr",
			handle: func(c net.Conn, w string) {
				if w == "srvr" {
					_, _ = io.WriteString(c, srvr)
				}
			}},
		{name: "zookeeper silent on every word", kind: FlavorZooKeeper, handle: func(net.Conn, string) {}},
		{name: "only refusals", kind: FlavorZooKeeper, alive: true, by: "ruok", refused: []string{"ruok", "srvr", "mntr"},
			handle: func(c net.Conn, w string) {
				_, _ = io.WriteString(c, w+" is not executed because it is not in the whitelist.\n")
			}},
		{name: "connection refused", dead: true, kind: FlavorZooKeeper},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := refusedAddr(t)
			if !tt.dead {
				addr = newFakeServer(t, tt.handle).addr()
			}
			c := &Client{Timeout: time.Second}
			s := c.Snapshot(context.Background(), addr, words)
			l := s.Liveness(tt.kind)
			if l.Alive != tt.alive || l.AnsweredBy != tt.by || !slices.Equal(l.Refused, tt.refused) {
				t.Errorf("liveness = %+v, want alive %v by %q refused %v", l, tt.alive, tt.by, tt.refused)
			}
			for _, r := range s.All {
				if !r.Skipped && (r.Started.IsZero() || r.Duration <= 0) {
					t.Errorf("%s: started %v, duration %v", r.Cmd, r.Started, r.Duration)
				}
			}
		})
	}
	if got := (Snapshot{All: []CommandResult{{Cmd: "ruok"}, {Cmd: "nope", Err: &Error{Kind: ErrInvalidCommand}}}}).Requested(); !slices.Equal(got, []string{"ruok"}) {
		t.Errorf("Requested = %v", got)
	}
	if ParseFlavor("clickhouse-keeper") != FlavorClickHouseKeeper || ParseFlavor("zookeeper") != FlavorZooKeeper || ParseFlavor("x") != FlavorUnknown {
		t.Error("ParseFlavor")
	}
}
