package keeper

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// variants returns the fixture as printed plus the shapes a copy-paste or a
// proxy can give it: \r\n line ends, spaces instead of tabs, no final line
// end.
func variants(s string) map[string]string {
	return map[string]string{
		"asis":    s,
		"crlf":    strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"),
		"spaces":  strings.ReplaceAll(s, "\t", "    "),
		"trimmed": strings.TrimRight(s, "\r\n"),
	}
}

func i64(v int64) *int64 { return &v }

func TestParseMntr(t *testing.T) {
	tests := []struct {
		file      string
		version   string
		release   string
		flavor    Flavor
		state     string
		avg       float64
		max       float64
		recv      int64
		sent      int64
		conns     int64
		outst     int64
		znodes    int64
		watches   int64
		ephemeral int64
		dataSize  int64
		openFD    uint64
		maxFD     uint64
		unlimited bool
		followers *int64
		synced    *int64
		pending   *int64
		extra     map[string]float64 // long-tail keys read through Float
		minKeys   int
	}{
		{file: "zk34-mntr-leader.txt", version: "3.4.14-4c25d480e66aadd371de8bd2fd8da255ac140bcf, built on 03/06/2019 16:18 GMT",
			release: "3.4.14", flavor: FlavorZooKeeper, state: "leader", avg: 2, max: 1650, recv: 2110310, sent: 1526598,
			conns: 10, znodes: 12792, watches: 45966, ephemeral: 4, dataSize: 1522220, openFD: 136, maxFD: 1048576,
			followers: i64(2), synced: i64(2), pending: i64(0),
			extra: map[string]float64{"fsync_threshold_exceed_count": 8, "zk_max_proposal_size": 288377}, minKeys: 22},
		{file: "zk34-mntr-follower.txt", release: "3.4.14", flavor: FlavorZooKeeper, state: "follower", max: 412,
			recv: 884215, sent: 884390, conns: 7, outst: 3, znodes: 12792, watches: 45951, ephemeral: 4, dataSize: 1522220,
			openFD: 129, maxFD: 1048576, minKeys: 16},
		{file: "zk35-mntr-leader.txt", release: "3.5.9", flavor: FlavorZooKeeper, state: "leader", avg: 1, max: 233,
			recv: 5530441, sent: 5531022, conns: 24, znodes: 58213, watches: 10422, ephemeral: 96, dataSize: 9861245,
			openFD: 212, maxFD: 65536, followers: i64(2), synced: i64(2), pending: i64(0),
			extra: map[string]float64{"max_client_response_size": 1048575}, minKeys: 24},
		{file: "zk36-mntr-leader.txt", release: "3.6.3", flavor: FlavorZooKeeper, state: "leader", avg: 0.6512, max: 288,
			recv: 4592031, sent: 4593227, conns: 31, znodes: 58213, watches: 10422, ephemeral: 96, dataSize: 9861245,
			openFD: 221, maxFD: 65536, followers: i64(2), synced: i64(2), pending: i64(0),
			extra: map[string]float64{"p99_updatelatency": 27, "avg_fsynctime": 1.2837, "quorum_size": 3}, minKeys: 80},
		{file: "zk38-mntr-leader.txt", version: "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
			release: "3.8.0", flavor: FlavorZooKeeper, state: "leader", avg: 0.4935, max: 412,
			recv: 2291600, sent: 2291830, conns: 58, outst: 12, znodes: 58213, watches: 10422, ephemeral: 96, dataSize: 9861245,
			openFD: 301, maxFD: 524288, followers: i64(2), synced: i64(1), pending: i64(0),
			extra: map[string]float64{"p99_quorum_ack_latency": 18, "avg_clickhouse_read_per_namespace": 90.2}, minKeys: 70},
		{file: "zk38-real-mntr.txt", version: "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
			release: "3.8.0", flavor: FlavorZooKeeper, state: "standalone", avg: 3.1538, max: 19,
			recv: 17, sent: 16, conns: 3, znodes: 9, watches: 5, ephemeral: 1, dataSize: 112, openFD: 44, maxFD: 20000,
			extra: map[string]float64{"p99_readlatency": 2, "avg_fsynctime": 0.5, "uptime": 36250}, minKeys: 250},
		{file: "chk-mntr.txt", version: "v21.11.1.1-prestable-7a4a0b0edef0ad6e0aa662cd3b90c3f4acf796e7",
			release: "21.11.1.1", flavor: FlavorClickHouseKeeper, state: "leader", recv: 68, sent: 68, conns: 1,
			znodes: 4, watches: 1, dataSize: 723, openFD: 310, maxFD: 10240, followers: i64(0), synced: i64(0), minKeys: 17},
		{file: "chk24-mntr-leader.txt", release: "24.8.4.13", flavor: FlavorClickHouseKeeper, state: "leader", avg: 3, max: 1204,
			recv: 98124410, sent: 98124399, conns: 42, outst: 7, znodes: 1820331, watches: 30122, ephemeral: 311,
			dataSize: 624331021, openFD: 188, maxFD: 500000, followers: i64(2), synced: i64(1),
			extra: map[string]float64{"latest_snapshot_size": 201554032}, minKeys: 19},
		{file: "chk24-mntr-follower.txt", release: "24.8.4.13", flavor: FlavorClickHouseKeeper, state: "follower", avg: 1, max: 311,
			recv: 4410233, sent: 4410230, conns: 17, znodes: 1820331, watches: 10110, ephemeral: 311,
			dataSize: 624331021, openFD: 120, maxFD: 500000, minKeys: 17},
		// Written from FourLetterCommand.cpp (MonitorCommand::run): every
		// figure is printed as uint64_t, and getMaxFileDescriptorCount()
		// without a readable limit prints -1, i.e. 2^64-1.
		{file: "chk25-mntr-observer.txt", release: "25.3.2.39", flavor: FlavorClickHouseKeeper, state: "observer", max: 9,
			recv: 18833, sent: 18834, conns: 4, znodes: 88412, watches: 931, ephemeral: 12,
			dataSize: 31188201, openFD: 143, maxFD: 0, unlimited: true, minKeys: 17},
	}
	for _, tt := range tests {
		raw := fixture(t, tt.file)
		base, _ := ParseMntr(raw)
		for vname, in := range variants(raw) {
			t.Run(tt.file+"/"+vname, func(t *testing.T) {
				m, err := ParseMntr(in)
				if err != nil {
					t.Fatal(err)
				}
				if tt.version != "" && m.Version != tt.version {
					t.Errorf("Version = %q, want %q", m.Version, tt.version)
				}
				check := []struct {
					name      string
					got, want any
				}{
					{"Release", m.Release, tt.release}, {"Flavor", m.Flavor, tt.flavor}, {"ServerState", m.ServerState, tt.state},
					{"AvgLatency", m.AvgLatency, tt.avg}, {"MaxLatency", m.MaxLatency, tt.max}, {"MinLatency", m.MinLatency, 0.0},
					{"PacketsReceived", m.PacketsReceived, tt.recv}, {"PacketsSent", m.PacketsSent, tt.sent},
					{"NumAliveConnections", m.NumAliveConnections, tt.conns}, {"OutstandingRequests", m.OutstandingRequests, tt.outst},
					{"ZnodeCount", m.ZnodeCount, tt.znodes}, {"WatchCount", m.WatchCount, tt.watches},
					{"EphemeralsCount", m.EphemeralsCount, tt.ephemeral}, {"ApproximateDataSize", m.ApproximateDataSize, tt.dataSize},
					{"OpenFileDescriptorCount", m.OpenFileDescriptorCount, tt.openFD}, {"MaxFileDescriptorCount", m.MaxFileDescriptorCount, tt.maxFD},
					{"Followers", m.Followers, tt.followers}, {"SyncedFollowers", m.SyncedFollowers, tt.synced}, {"PendingSyncs", m.PendingSyncs, tt.pending},
					{"IsLeader", m.IsLeader(), tt.state == "leader"},
					{"MaxFileDescriptorsUnlimited", m.MaxFileDescriptorsUnlimited, tt.unlimited},
					{"HasFileDescriptors", m.HasFileDescriptors, true},
				}
				for _, c := range check {
					if !reflect.DeepEqual(c.got, c.want) {
						t.Errorf("%s = %v, want %v", c.name, show(c.got), show(c.want))
					}
				}
				for k, want := range tt.extra {
					if got, ok := m.Float(k); !ok || got != want {
						t.Errorf("Float(%q) = %v, %v; want %v", k, got, ok, want)
					}
				}
				if len(m.Raw) < tt.minKeys {
					t.Errorf("Raw has %d keys, want >= %d", len(m.Raw), tt.minKeys)
				}
				if !reflect.DeepEqual(base, m) {
					t.Errorf("variant %s parses differently from the fixture", vname)
				}
			})
		}
	}
}

func show(v any) any {
	if p, ok := v.(*int64); ok {
		if p == nil {
			return "<absent>"
		}
		return *p
	}
	return v
}

func TestParseMntrErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"blank", " \n\r\n", ErrMalformed},
		{"no zk keys", "hello world\nfoo\tbar\n", ErrMalformed},
		{"html", "<html><body>404</body></html>", ErrMalformed},
		{"not whitelisted (real 3.8)", fixture(t, "zk38-real-mntr-notwhitelisted.txt"), ErrNotWhitelisted},
		{"zk not serving", fixture(t, "zk38-mntr-notserving.txt"), ErrNotServing},
		{"chk not serving", fixture(t, "chk-mntr-notserving.txt"), ErrNotServing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMntr(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseMntrTolerance(t *testing.T) {
	// Unknown keys are kept, bad numbers leave the field zero, a missing
	// leader key stays absent, stray non-zk lines are ignored.
	in := "garbage line\nzk_version  3.5.9-abc, built on x\r\nzk_avg_latency\tNaN\nzk_max_latency\tbig\nzk_server_state follower\nzk_brand_new_metric\t42\nzk_followers\n"
	m, err := ParseMntr(in)
	if err != nil {
		t.Fatal(err)
	}
	if m.AvgLatency != 0 || m.MaxLatency != 0 || m.ServerState != "follower" {
		t.Errorf("got %+v", m)
	}
	if v, ok := m.Int("brand_new_metric"); !ok || v != 42 {
		t.Errorf("unknown key: %v %v", v, ok)
	}
	if m.Followers != nil {
		t.Errorf("zk_followers without a value must stay absent, got %v", *m.Followers)
	}
	if !m.Has("zk_followers") {
		t.Error("Raw should still record the key")
	}
}

func TestParseSrvr(t *testing.T) {
	tests := []struct {
		file        string
		versionLine string
		version     string
		release     string
		flavor      Flavor
		min, avg    float64
		max         float64
		recv, sent  int64
		conns, outs int64
		zxid        Zxid
		mode        string
		nodes       int64
		proposals   *ProposalSizes
		readOnly    bool
	}{
		{file: "zk34-srvr-follower.txt", release: "3.4.14", flavor: FlavorZooKeeper, avg: 1, max: 412, recv: 884215, sent: 884390,
			conns: 7, outs: 3, zxid: 0x1100000a7b, mode: "follower", nodes: 12792,
			version: "3.4.14-4c25d480e66aadd371de8bd2fd8da255ac140bcf, built on 03/06/2019 16:18 GMT"},
		{file: "zk34-stat.txt", release: "3.4.14", flavor: FlavorZooKeeper, avg: 1, max: 412, recv: 884216, sent: 884390,
			conns: 3, outs: 2, zxid: 0x1100000a7b, mode: "follower", nodes: 12792},
		{file: "zk35-srvr-leader.txt", release: "3.5.9", flavor: FlavorZooKeeper, avg: 1, max: 233, recv: 5530441, sent: 5531022,
			conns: 24, zxid: 0x30000f8a1, mode: "leader", nodes: 58213, proposals: &ProposalSizes{92, 36, 8402}},
		{file: "zk36-srvr-follower.txt", release: "3.6.3", flavor: FlavorZooKeeper, avg: 0.4167, max: 104, recv: 1203311, sent: 1203498,
			conns: 12, zxid: 0x500012e44, mode: "follower", nodes: 58213,
			version: "3.6.3--6401e4ad2087061bc6b9f80dec2d69f2e3c8660a, built on 04/08/2021 16:35 GMT"},
		{file: "zk38-srvr-leader.txt", release: "3.8.0", flavor: FlavorZooKeeper, avg: 0.4935, max: 412, recv: 2291600, sent: 2291830,
			conns: 58, outs: 12, zxid: 0x700000004, mode: "leader", nodes: 58213, proposals: &ProposalSizes{92, 36, 8402},
			versionLine: "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
			version:     "3.8.0, built on 2024-12-29 17:54 UTC"},
		{file: "zk38-srvr-readonly.txt", release: "3.8.0", flavor: FlavorZooKeeper, recv: 12, sent: 11, conns: 1, mode: "read-only",
			nodes: 5, readOnly: true},
		{file: "zk38-real-srvr.txt", release: "3.8.0", flavor: FlavorZooKeeper, avg: 3.1538, max: 19, recv: 18, sent: 19, conns: 3,
			zxid: 6, mode: "standalone", nodes: 9,
			versionLine: "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC",
			version:     "3.8.0, built on 2024-12-29 17:54 UTC"},
		{file: "zk38-real-stat.txt", release: "3.8.0", flavor: FlavorZooKeeper, avg: 3.0, max: 19, recv: 20, sent: 21, conns: 3,
			zxid: 6, mode: "standalone", nodes: 9},
		{file: "chk-srvr.txt", release: "21.11.1.1", flavor: FlavorClickHouseKeeper, recv: 2, sent: 2, conns: 1, zxid: 34,
			mode: "leader", nodes: 4,
			versionLine: "ClickHouse Keeper version: v21.11.1.1-prestable-7a4a0b0edef0ad6e0aa662cd3b90c3f4acf796e7",
			version:     "v21.11.1.1-prestable-7a4a0b0edef0ad6e0aa662cd3b90c3f4acf796e7"},
		{file: "chk-stat.txt", release: "21.11.1.1", flavor: FlavorClickHouseKeeper, recv: 4, sent: 4, conns: 1, zxid: 36,
			mode: "leader", nodes: 4},
		{file: "chk24-srvr.txt", release: "24.8.4.13", flavor: FlavorClickHouseKeeper, avg: 3, max: 1204, recv: 98124410,
			sent: 98124399, conns: 42, outs: 7, zxid: 0x1b8a3f2, mode: "leader", nodes: 1820331},
	}
	for _, tt := range tests {
		for vname, in := range variants(fixture(t, tt.file)) {
			t.Run(tt.file+"/"+vname, func(t *testing.T) {
				s, err := ParseSrvr(in)
				if err != nil {
					t.Fatal(err)
				}
				if tt.versionLine != "" && s.VersionLine != tt.versionLine {
					t.Errorf("VersionLine = %q, want %q", s.VersionLine, tt.versionLine)
				}
				if tt.version != "" && s.Version != tt.version {
					t.Errorf("Version = %q, want %q", s.Version, tt.version)
				}
				check := []struct {
					name      string
					got, want any
				}{
					{"Release", s.Release, tt.release}, {"Flavor", s.Flavor, tt.flavor},
					{"LatencyMin", s.LatencyMin, tt.min}, {"LatencyAvg", s.LatencyAvg, tt.avg}, {"LatencyMax", s.LatencyMax, tt.max},
					{"Received", s.Received, tt.recv}, {"Sent", s.Sent, tt.sent}, {"Connections", s.Connections, tt.conns},
					{"Outstanding", s.Outstanding, tt.outs}, {"Zxid", s.Zxid, tt.zxid}, {"HasZxid", s.HasZxid, true},
					{"Mode", s.Mode, tt.mode}, {"NodeCount", s.NodeCount, tt.nodes},
					{"ProposalSizes", s.ProposalSizes, tt.proposals}, {"ReadOnly", s.ReadOnly, tt.readOnly},
				}
				for _, c := range check {
					if !reflect.DeepEqual(c.got, c.want) {
						t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
					}
				}
			})
		}
	}
}

func TestZxid(t *testing.T) {
	z := Zxid(0x1100000a7b)
	if z.Epoch() != 0x11 || z.Counter() != 0xa7b || z.String() != "0x1100000a7b" {
		t.Errorf("epoch=%d counter=%d str=%s", z.Epoch(), z.Counter(), z)
	}
}

func TestParseSrvrErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":   "",
		"garbage": "foo\nbar\n",
		"mntr":    fixture(t, "zk34-mntr-leader.txt"),
	} {
		if _, err := ParseSrvr(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	if _, err := ParseSrvr(fixture(t, "zk38-mntr-notserving.txt")); !errors.Is(err, ErrNotServing) {
		t.Errorf("not serving: %v", err)
	}
	if _, err := ParseSrvr("srvr is not executed because it is not in the whitelist.\n"); !errors.Is(err, ErrNotWhitelisted) {
		t.Errorf("whitelist: %v", err)
	}
}

func TestVersionHelpers(t *testing.T) {
	tests := []struct{ in, clean, release string }{
		{"3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC", "3.8.0, built on 2024-12-29 17:54 UTC", "3.8.0"},
		{"3.6.3--6401e4ad2087061bc6b9f80dec2d69f2e3c8660a, built on 04/08/2021 16:35 GMT", "3.6.3--6401e4ad2087061bc6b9f80dec2d69f2e3c8660a, built on 04/08/2021 16:35 GMT", "3.6.3"},
		{"3.4.14-4c25d480e66aadd371de8bd2fd8da255ac140bcf, built on 03/06/2019 16:18 GMT", "3.4.14-4c25d480e66aadd371de8bd2fd8da255ac140bcf, built on 03/06/2019 16:18 GMT", "3.4.14"},
		{"v21.11.1.1-prestable-7a4a0b0e", "v21.11.1.1-prestable-7a4a0b0e", "21.11.1.1"},
		{"${unexpanded}", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := CleanVersion(tt.in); got != tt.clean {
			t.Errorf("CleanVersion(%q) = %q, want %q", tt.in, got, tt.clean)
		}
		if got := ReleaseVersion(tt.in); got != tt.release {
			t.Errorf("ReleaseVersion(%q) = %q, want %q", tt.in, got, tt.release)
		}
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		file    string
		clients []string // Addr of each client, in order
		mode    string
	}{
		{"zk34-stat.txt", []string{"10.20.0.11:41876", "10.20.0.12:50214", "[::1]:52852"}, "follower"},
		{"zk38-real-stat.txt", []string{"127.0.0.1:60998", "127.0.0.1:45296", "127.0.0.1:50758"}, "standalone"},
		{"chk-stat.txt", []string{"192.168.1.1:52852", "192.168.1.1:52042"}, "leader"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			st, err := ParseStat(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range st.Clients {
				got = append(got, c.Addr)
				if c.HasSession {
					t.Errorf("stat clients are brief, got a session on %s", c.Addr)
				}
			}
			if !reflect.DeepEqual(got, tt.clients) || st.Mode != tt.mode {
				t.Errorf("clients = %v mode = %q; want %v %q", got, st.Mode, tt.clients, tt.mode)
			}
		})
	}
}

func TestParseCons(t *testing.T) {
	type want struct {
		addr, ip  string
		port      int
		interest  string
		queued    int64
		recved    int64
		sent      int64
		sid       uint64
		hasSID    bool
		lop       string
		est       int64 // ms epoch
		timeout   time.Duration
		lzxid     uint64
		lresp     int64
		llat, max float64
	}
	tests := []struct {
		file  string
		conns []want
		byIP  map[string]int
	}{
		{file: "zk34-cons.txt", conns: []want{
			{addr: "10.20.0.11:41876", ip: "10.20.0.11", port: 41876, interest: "1", recved: 81231, sent: 81231, sid: 0x26b4e1f6d3a0001, hasSID: true,
				lop: "PING", est: 1565081322213, timeout: 30 * time.Second, lzxid: 0x1100000a7b, lresp: 3209114856, max: 97},
			{addr: "10.20.0.11:41880", ip: "10.20.0.11", port: 41880, interest: "1", recved: 1200, sent: 1203, sid: 0x26b4e1f6d3a0002, hasSID: true,
				lop: "GETD", est: 1565081322950, timeout: 30 * time.Second, lzxid: 0x1100000a70, lresp: 3209114102, llat: 1, max: 45},
			{addr: "10.20.0.12:50214", ip: "10.20.0.12", port: 50214, interest: "1", queued: 2, recved: 79402, sent: 79410, sid: 0x16b4e1f6d2f0005, hasSID: true,
				lop: "SETD", est: 1565081401117, timeout: 40 * time.Second, lzxid: 0x1100000a7a, lresp: 3209114850, llat: 3, max: 412},
			{addr: "[::1]:52852", ip: "::1", port: 52852, interest: "0", recved: 1},
		}, byIP: map[string]int{"10.20.0.11": 2, "10.20.0.12": 1, "::1": 1}},
		{file: "zk38-cons-ipv6.txt", conns: []want{
			{addr: "[::1]:52852", ip: "::1", port: 52852, interest: "1", recved: 310, sent: 311, sid: 0x100004a8b7d0003, hasSID: true,
				lop: "GETD", est: 1735490000123, timeout: 30 * time.Second, lzxid: 0x700000004, lresp: 91020955, max: 12},
			{addr: "[fd00::17]:40412", ip: "fd00::17", port: 40412, interest: "1", queued: 4, recved: 88231, sent: 88227, sid: 0x100004a8b7d0001, hasSID: true,
				lop: "MULT", est: 1735489000001, timeout: 30 * time.Second, lzxid: 0x700000003, lresp: 91020944, llat: 7, max: 412},
			{addr: "10.0.0.11:40418", ip: "10.0.0.11", port: 40418, interest: "1", recved: 501, sent: 502, sid: 0x100004a8b7d0002, hasSID: true,
				lop: "PING", est: 1735489000417, timeout: 40 * time.Second, lzxid: 0x700000001, lresp: 91020101, max: 3},
			{addr: "10.0.0.11:40420", ip: "10.0.0.11", port: 40420, interest: "1", recved: 22, sent: 22, sid: 0x100004a8b7d0004, hasSID: true,
				lop: "PING", est: 1735489100000, timeout: 30 * time.Second, lzxid: 0x700000002, lresp: 91020800, max: 1},
			{addr: "[::1]:33570", ip: "::1", port: 33570, interest: "0", recved: 1},
		}, byIP: map[string]int{"::1": 2, "fd00::17": 1, "10.0.0.11": 2}},
		{file: "zk38-real-cons.txt", conns: []want{
			{addr: "127.0.0.1:60998", ip: "127.0.0.1", port: 60998, interest: "1", recved: 5, sent: 5, sid: 0x100000f0ff80001, hasSID: true,
				lop: "PING", est: 1795463651250, timeout: 30 * time.Second, lzxid: 6, lresp: 1031662, llat: 1, max: 1},
			{addr: "127.0.0.1:36960", ip: "127.0.0.1", port: 36960, interest: "0", recved: 1},
			{addr: "127.0.0.1:45296", ip: "127.0.0.1", port: 45296, interest: "1", recved: 10, sent: 10, sid: 0x100000f0ff80000, hasSID: true,
				lop: "PING", est: 1795463647233, timeout: 30 * time.Second, lzxid: 6, lresp: 1027695, llat: 1, max: 19},
		}, byIP: map[string]int{"127.0.0.1": 3}},
		{file: "zk38-real-cons-ipv6.txt", conns: []want{
			{addr: "[::1]:33570", ip: "::1", port: 33570, interest: "0", recved: 1},
			{addr: "[::1]:53852", ip: "::1", port: 53852, interest: "1", recved: 3, sent: 3, sid: 0x1000013e1c10000, hasSID: true,
				lop: "PING", est: 1795463945318, timeout: 30 * time.Second, lzxid: 1, lresp: 1315731, llat: 1, max: 12},
		}, byIP: map[string]int{"::1": 2}},
		{file: "chk-cons.txt", conns: []want{
			{addr: "192.168.1.1:52163", ip: "192.168.1.1", port: 52163, sid: 0xffffffffffffffff, hasSID: true, lop: "NA",
				est: 1636454787393, timeout: 30 * time.Second, lzxid: 0xffffffffffffffff},
			{addr: "192.168.1.1:52042", ip: "192.168.1.1", port: 52042, recved: 9, sent: 18, sid: 1, hasSID: true, lop: "List",
				est: 1636454739887, timeout: 30 * time.Second, lzxid: 5, lresp: 1636454739892},
		}, byIP: map[string]int{"192.168.1.1": 2}},
		{file: "chk24-cons-ipv6.txt", conns: []want{
			{addr: "[::1]:52042", ip: "::1", port: 52042, recved: 9, sent: 18, sid: 1, hasSID: true, lop: "List",
				est: 1636454739887, timeout: 30 * time.Second, lzxid: 5, lresp: 1636454739892},
			{addr: "[fd00::17]:40100", ip: "fd00::17", port: 40100, recved: 120, sent: 121, sid: 2, hasSID: true, lop: "Get",
				est: 1636454740001, timeout: 30 * time.Second, lzxid: 0xa1, lresp: 1636454799001, llat: 1, max: 14},
			{addr: "10.0.0.11:40200", ip: "10.0.0.11", port: 40200, recved: 1},
		}, byIP: map[string]int{"::1": 1, "fd00::17": 1, "10.0.0.11": 1}},
	}
	for _, tt := range tests {
		for vname, in := range variants(fixture(t, tt.file)) {
			t.Run(tt.file+"/"+vname, func(t *testing.T) {
				conns, err := ParseCons(in)
				if err != nil {
					t.Fatal(err)
				}
				if len(conns) != len(tt.conns) {
					t.Fatalf("got %d connections, want %d: %+v", len(conns), len(tt.conns), conns)
				}
				for i, w := range tt.conns {
					c := conns[i]
					var est time.Time
					if w.est != 0 {
						est = time.UnixMilli(w.est).UTC()
					}
					got := want{c.Addr, c.IP, c.Port, c.Interest, c.Queued, c.Recved, c.Sent, c.SessionID, c.HasSession,
						c.LastOp, 0, c.Timeout, uint64(c.LastZxid), c.LastResponse, c.LastLatency, c.MaxLatency}
					if !c.Established.Equal(est) {
						t.Errorf("conn %d: Established = %v, want %v", i, c.Established, est)
					}
					w.est = 0
					if got != w {
						t.Errorf("conn %d:\n got %+v\nwant %+v", i, got, w)
					}
				}
				if got := CountByIP(conns); !reflect.DeepEqual(got, tt.byIP) {
					t.Errorf("CountByIP = %v, want %v", got, tt.byIP)
				}
			})
		}
	}
}

func TestParseConsEdgeCases(t *testing.T) {
	if c, err := ParseCons(""); err != nil || c != nil {
		t.Errorf("blank: %v %v", c, err)
	}
	if _, err := ParseCons("no connections here\n"); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: %v", err)
	}
	if _, err := ParseCons(fixture(t, "zk38-mntr-notserving.txt")); !errors.Is(err, ErrNotServing) {
		t.Errorf("not serving: %v", err)
	}
	// A hostname-qualified address, a closed socket ("null"), and a line
	// with an unknown key.
	conns, err := ParseCons(" zk-client.example/10.1.2.3:4000[1](queued=0,recved=1,sent=1,newkey=7)\n null[0](queued=0,recved=0,sent=0)\n")
	if err != nil {
		t.Fatal(err)
	}
	if conns[0].IP != "10.1.2.3" || conns[0].Port != 4000 || conns[0].Raw["newkey"] != "7" {
		t.Errorf("hostname form: %+v", conns[0])
	}
	if conns[1].IP != "" || conns[1].Addr != "null" {
		t.Errorf("null form: %+v", conns[1])
	}
	if got := CountByIP(conns); got["10.1.2.3"] != 1 || got["null"] != 1 {
		t.Errorf("CountByIP = %v", got)
	}
}

func TestParseConf(t *testing.T) {
	tests := []struct {
		file      string
		flavor    Flavor
		port      int
		dataDir   string
		logDir    string
		tick      int64
		maxCnxns  int
		hasMax    bool
		limited   bool
		minTO     int64
		maxTO     int64
		serverID  int64
		servers   []string
		sessTO    int64
		opTO      int64
		allowList string
		forceSync *bool
	}{
		{file: "zk34-conf.txt", flavor: FlavorZooKeeper, port: 2181, dataDir: "/var/lib/zookeeper/version-2",
			logDir: "/var/lib/zookeeper/version-2", tick: 2000, maxCnxns: 60, hasMax: true, limited: true,
			minTO: 4000, maxTO: 40000, serverID: 2},
		{file: "zk35-conf-quorum.txt", flavor: FlavorZooKeeper, port: 2181, dataDir: "/data/zookeeper/version-2",
			logDir: "/datalog/zookeeper/version-2", tick: 2000, maxCnxns: 0, hasMax: true, limited: false,
			minTO: 4000, maxTO: 40000, serverID: 1, servers: []string{"server.1", "server.2", "server.3"}},
		{file: "zk38-conf-quorum.txt", flavor: FlavorZooKeeper, port: 2181, dataDir: "/var/lib/zookeeper/version-2",
			logDir: "/var/lib/zookeeper/version-2", tick: 2000, maxCnxns: 60, hasMax: true, limited: true,
			minTO: 4000, maxTO: 40000, serverID: 3, servers: []string{"server.1", "server.2", "server.3"}},
		{file: "zk38-real-conf.txt", flavor: FlavorZooKeeper, port: 33631, dataDir: "/tmp/zkk.n6d9/data/version-2",
			logDir: "/tmp/zkk.n6d9/data/version-2", tick: 2000, maxCnxns: 60, hasMax: true, limited: true,
			minTO: 4000, maxTO: 40000, serverID: 0},
		{file: "chk-conf.txt", flavor: FlavorClickHouseKeeper, port: 2181, dataDir: "./coordination/snapshots",
			logDir: "./coordination/logs", maxTO: 30000, serverID: 1, sessTO: 30000, opTO: 10000, allowList: "*",
			forceSync: new(false)},
		{file: "chk24-conf.txt", flavor: FlavorClickHouseKeeper, port: 9181, dataDir: "/var/lib/clickhouse/coordination/snapshots",
			logDir: "/var/lib/clickhouse/coordination/log", minTO: 10000, maxTO: 100000, serverID: 2, sessTO: 100000, opTO: 10000,
			allowList: "conf,cons,crst,envi,ruok,srst,srvr,stat,wchs,dirs,mntr,isro,rcvr,apiv,csnp,lgif,rqld,ydld", forceSync: new(true)},
	}
	for _, tt := range tests {
		for vname, in := range variants(fixture(t, tt.file)) {
			t.Run(tt.file+"/"+vname, func(t *testing.T) {
				c, err := ParseConf(in)
				if err != nil {
					t.Fatal(err)
				}
				limit, limited := c.ConnectionLimit()
				var fs *bool
				if c.HasForceSync {
					fs = new(c.ForceSync)
				}
				var servers []string
				if len(c.Servers) > 0 {
					servers = c.ServerIDs()
				}
				check := []struct {
					name      string
					got, want any
				}{
					{"Flavor", c.Flavor, tt.flavor}, {"ClientPort", c.ClientPort, tt.port}, {"DataDir", c.DataDir, tt.dataDir},
					{"DataLogDir", c.DataLogDir, tt.logDir}, {"TickTime", c.TickTime, tt.tick},
					{"MaxClientCnxns", c.MaxClientCnxns, tt.maxCnxns}, {"HasMaxClientCnxns", c.HasMaxClientCnxns, tt.hasMax},
					{"ConnectionLimit", [2]any{limit, limited}, [2]any{tt.maxCnxns, tt.limited}},
					{"MinSessionTimeout", c.MinSessionTimeout, tt.minTO}, {"MaxSessionTimeout", c.MaxSessionTimeout, tt.maxTO},
					{"ServerID", c.ServerID, tt.serverID}, {"HasServerID", c.HasServerID, true}, {"Servers", servers, tt.servers},
					{"SessionTimeoutMs", c.SessionTimeoutMs, tt.sessTO}, {"OperationTimeoutMs", c.OperationTimeoutMs, tt.opTO},
					{"FourLetterWordAllowList", c.FourLetterWordAllowList, tt.allowList}, {"ForceSync", fs, tt.forceSync},
				}
				for _, ch := range check {
					if !reflect.DeepEqual(ch.got, ch.want) {
						t.Errorf("%s = %v, want %v", ch.name, show(ch.got), show(ch.want))
					}
				}
			})
		}
	}
	c, _ := ParseConf(fixture(t, "zk35-conf-quorum.txt"))
	if c.Servers["server.2"] != "zk2.example.internal:2888:3888:participant;0.0.0.0:2181" || c.Raw["version"] != "0" ||
		c.ElectionPort != "3888" || c.QuorumPort != "2888" || c.InitLimit != 10 || c.SyncLimit != 5 || c.SecureClientPort != -1 {
		t.Errorf("quorum details: %+v", c)
	}
	if _, err := ParseConf("nothing to see"); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: %v", err)
	}
	if _, err := ParseConf(""); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty: %v", err)
	}
}

func TestParseWchs(t *testing.T) {
	tests := []struct {
		file string
		want Wchs
	}{
		{"zk34-wchs.txt", Wchs{9, 4410, 45966}},
		{"zk38-real-wchs.txt", Wchs{2, 2, 3}},
		{"chk-wchs.txt", Wchs{1, 1, 1}},
	}
	for _, tt := range tests {
		for vname, in := range variants(fixture(t, tt.file)) {
			got, err := ParseWchs(in)
			if err != nil || got != tt.want {
				t.Errorf("%s/%s: %+v, %v; want %+v", tt.file, vname, got, err, tt.want)
			}
		}
	}
	for _, in := range []string{"", "3 connections", "Total watches:abc"} {
		if _, err := ParseWchs(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

func TestParseDirs(t *testing.T) {
	tests := []struct {
		file string
		want Dirs
	}{
		{"zk38-dirs.txt", Dirs{FlavorZooKeeper, 457291337, 201326592}},
		{"zk38-real-dirs.txt", Dirs{FlavorZooKeeper, 67109337, 67109337}},
		{"chk-dirs.txt", Dirs{FlavorClickHouseKeeper, 0, 3875}},
	}
	for _, tt := range tests {
		for vname, in := range variants(fixture(t, tt.file)) {
			got, err := ParseDirs(in)
			if err != nil || got != tt.want {
				t.Errorf("%s/%s: %+v, %v; want %+v", tt.file, vname, got, err, tt.want)
			}
		}
	}
	if _, err := ParseDirs("size: 12"); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage: %v", err)
	}
}

func TestParseIsroRuok(t *testing.T) {
	isro := []struct {
		in   string
		ro   bool
		want error
	}{
		{fixture(t, "zk38-real-isro.txt"), false, nil},
		{fixture(t, "chk-isro.txt"), false, nil},
		{"ro", true, nil},
		{"ro\r\n", true, nil},
		{fixture(t, "zk38-isro-notserving.txt"), false, ErrNotServing},
		{"isro is not executed because it is not in the whitelist.\n", false, ErrNotWhitelisted},
		{"", false, ErrMalformed},
		{"maybe", false, ErrMalformed},
	}
	for _, tt := range isro {
		ro, err := ParseIsro(tt.in)
		if ro != tt.ro || !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("ParseIsro(%q) = %v, %v; want %v, %v", tt.in, ro, err, tt.ro, tt.want)
		}
	}
	ruok := []struct {
		in   string
		want error
	}{
		{fixture(t, "zk38-real-ruok.txt"), nil},
		{fixture(t, "chk-ruok.txt"), nil},
		{"imok\n", nil},
		{"", ErrNoAnswer},
		{"ruok is not executed because it is not in the whitelist.\n", ErrNotWhitelisted},
		{"nope", ErrMalformed},
	}
	for _, tt := range ruok {
		err := ParseRuok(tt.in)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("ParseRuok(%q) = %v; want %v", tt.in, err, tt.want)
		}
	}
}

func TestParseEnvi(t *testing.T) {
	tests := []struct {
		file string
		want map[string]string
	}{
		{"zk38-real-envi.txt", map[string]string{"zookeeper.version": "3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC", "java.version": "17.0.15"}},
		{"chk-envi.txt", map[string]string{"clickhouse.keeper.version": "v21.11.1.1-prestable-7a4a0b0edef0ad6e0aa662cd3b90c3f4acf796e7", "cpu.count": "12"}},
	}
	for _, tt := range tests {
		env, err := ParseEnvi(fixture(t, tt.file))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range tt.want {
			if env[k] != v {
				t.Errorf("%s: %s = %q, want %q", tt.file, k, env[k], v)
			}
		}
	}
}

// TestFixturesParse makes sure every fixture is covered by some parser, so
// a new fixture cannot silently go untested.
func TestFixturesParse(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatal("no fixtures", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		in := fixture(t, name)
		var perr error
		switch {
		case strings.Contains(name, "notserving"), strings.Contains(name, "notwhitelisted"):
			continue
		case strings.Contains(name, "-mntr"):
			_, perr = ParseMntr(in)
		case strings.Contains(name, "-srvr"):
			_, perr = ParseSrvr(in)
		case strings.Contains(name, "-stat"):
			_, perr = ParseStat(in)
		case strings.Contains(name, "-cons"):
			_, perr = ParseCons(in)
		case strings.Contains(name, "-conf"):
			_, perr = ParseConf(in)
		case strings.Contains(name, "-wchs"):
			_, perr = ParseWchs(in)
		case strings.Contains(name, "-dirs"):
			_, perr = ParseDirs(in)
		case strings.Contains(name, "-isro"):
			_, perr = ParseIsro(in)
		case strings.Contains(name, "-ruok"):
			perr = ParseRuok(in)
		case strings.Contains(name, "-envi"):
			_, perr = ParseEnvi(in)
		default:
			t.Errorf("fixture %s matches no parser", name)
			continue
		}
		if perr != nil {
			t.Errorf("%s: %v", name, perr)
		}
	}
}
