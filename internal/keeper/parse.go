package keeper

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Flavor tells which server produced an answer.
type Flavor string

const (
	FlavorUnknown          Flavor = ""
	FlavorZooKeeper        Flavor = "zookeeper"
	FlavorClickHouseKeeper Flavor = "clickhouse-keeper"
)

// Zxid is a ZooKeeper transaction id: the high 32 bits are the leader
// epoch, the low 32 bits a counter within that epoch. A jump in Epoch
// between two readings means a leader election happened in between.
type Zxid uint64

// Epoch returns the leader epoch part.
func (z Zxid) Epoch() uint32 { return uint32(uint64(z) >> 32) }

// Counter returns the per-epoch counter part.
func (z Zxid) Counter() uint32 { return uint32(uint64(z)) }

// String prints the zxid the way ZooKeeper does ("0x1100000a7b").
func (z Zxid) String() string { return "0x" + strconv.FormatUint(uint64(z), 16) }

// lines splits text into lines, accepting \n, \r\n and lone \r.
func lines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Split(s, "\n")
}

// splitKV splits "key<whitespace>value" at the first run of tabs/spaces.
func splitKV(line string) (key, value string, ok bool) {
	line = strings.TrimSpace(line)
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return line, "", line != ""
	}
	return line[:i], strings.TrimSpace(line[i+1:]), true
}

func parseInt(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, true
	}
	// Some servers print gauges as doubles ("12.0").
	if f, ok := parseFloat(s); ok && f == math.Trunc(f) && math.Abs(f) < 1<<62 {
		return int64(f), true
	}
	return 0, false
}

// parseUint reads an unsigned 64-bit decimal, as ClickHouse Keeper prints
// every mntr figure (a C++ uint64_t: -1 is printed as 2^64-1).
func parseUint(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return v, true
	}
	// ZooKeeper prints longs; a negative one means "unknown" there.
	if v, ok := parseInt(s); ok && v >= 0 {
		return uint64(v), true
	}
	return 0, false
}

func parseFloat(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// parseHexOrDec reads "0x1a2b" as hex, anything else as decimal.
func parseHexOrDec(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		v, err := strconv.ParseUint(h, 16, 64)
		return v, err == nil
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return v, true
	}
	// ClickHouse Keeper once printed signed values; -1 means "none".
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return uint64(v), true
	}
	return 0, false
}

// refusal returns the error for a server refusal printed instead of an
// answer, or nil.
func refusal(cmd, s string) error {
	err := classifyReply(cmd, s)
	if err == ErrNoAnswer {
		return fmt.Errorf("%w: empty %s output", ErrMalformed, cmd)
	}
	return err
}

// CleanVersion makes a version string fit for display: it drops unexpanded
// Maven placeholders such as the "-${mvngit.commit.id}" printed by some
// ZooKeeper 3.8 builds (Debian's among them).
func CleanVersion(v string) string {
	for {
		i := strings.Index(v, "${")
		if i < 0 {
			break
		}
		j := strings.Index(v[i:], "}")
		if j < 0 {
			break
		}
		start := i
		if start > 0 && v[start-1] == '-' {
			start--
		}
		v = v[:start] + v[i+j+1:]
	}
	return strings.TrimSpace(v)
}

// ReleaseVersion extracts the numeric release from a version string:
// "3.8.0-${mvngit.commit.id}, built on ..." → "3.8.0",
// "3.6.3--6401e4ad..., built on ..." → "3.6.3",
// "v21.11.1.1-prestable-7a4a0b0e..." → "21.11.1.1".
func ReleaseVersion(v string) string {
	v = strings.TrimSpace(v)
	if len(v) > 1 && (v[0] == 'v' || v[0] == 'V') && v[1] >= '0' && v[1] <= '9' {
		v = v[1:]
	}
	end := strings.IndexFunc(v, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if end >= 0 {
		v = v[:end]
	}
	return strings.TrimRight(v, ".")
}

// flavorFromVersion guesses the server from its version string. ClickHouse
// Keeper versions look like "v21.11.1.1-prestable-<sha>" (a leading v and a
// year-based major); ZooKeeper ones like "3.8.0-<sha>, built on ...".
func flavorFromVersion(v string) Flavor {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return FlavorUnknown
	case strings.Contains(strings.ToLower(v), "clickhouse"):
		return FlavorClickHouseKeeper
	case (v[0] == 'v' || v[0] == 'V') && len(v) > 1 && v[1] >= '0' && v[1] <= '9':
		return FlavorClickHouseKeeper
	}
	rel := ReleaseVersion(v)
	if major, _, ok := strings.Cut(rel, "."); ok {
		if n, err := strconv.Atoi(major); err == nil {
			if n >= 20 {
				return FlavorClickHouseKeeper
			}
			return FlavorZooKeeper
		}
	}
	return FlavorUnknown
}

// Mntr is the parsed output of "mntr".
type Mntr struct {
	Version string // zk_version as printed
	Release string // numeric release, see ReleaseVersion
	Flavor  Flavor

	// Request latencies in milliseconds since the last stats reset. 3.4/3.5
	// and ClickHouse Keeper print integers, 3.6+ a double average.
	AvgLatency float64
	MaxLatency float64
	MinLatency float64

	PacketsReceived     int64
	PacketsSent         int64
	NumAliveConnections int64
	OutstandingRequests int64
	ServerState         string // leader, follower, standalone, observer, read-only

	ZnodeCount          int64
	WatchCount          int64
	EphemeralsCount     int64
	ApproximateDataSize int64 // bytes

	// File descriptors, unsigned as ClickHouse Keeper prints them.
	// HasFileDescriptors is false when the server printed neither (non-Unix
	// servers). MaxFileDescriptorsUnlimited is set when the limit printed is
	// 2^64-1: ClickHouse Keeper prints that (its -1) when the process has no
	// limit it could read (RLIM_INFINITY); MaxFileDescriptorCount is then 0.
	OpenFileDescriptorCount     uint64
	MaxFileDescriptorCount      uint64
	MaxFileDescriptorsUnlimited bool
	HasFileDescriptors          bool

	// Leader-only keys: nil when the server did not print them (it is not
	// the leader), which differs from a printed 0 (a leader without
	// followers). Followers falls back to zk_learners (ZooKeeper 3.6+).
	Followers       *int64
	SyncedFollowers *int64
	PendingSyncs    *int64 // ZooKeeper only

	// Raw holds every "zk_*" key as printed (with its zk_ prefix), including
	// the long tail of 3.6+ metrics (zk_p99_readlatency, zk_fsynctime, ...).
	Raw map[string]string
}

// IsLeader reports whether the server said it is the leader.
func (m Mntr) IsLeader() bool { return m.ServerState == "leader" }

// Has reports whether key (with or without the zk_ prefix) was printed.
func (m Mntr) Has(key string) bool {
	_, ok := m.Raw[mntrKey(key)]
	return ok
}

// Int returns an integer metric by key (with or without the zk_ prefix).
func (m Mntr) Int(key string) (int64, bool) {
	v, ok := m.Raw[mntrKey(key)]
	if !ok {
		return 0, false
	}
	return parseInt(v)
}

// Uint returns an unsigned metric by key (with or without the zk_ prefix),
// accepting the full uint64 range.
func (m Mntr) Uint(key string) (uint64, bool) {
	v, ok := m.Raw[mntrKey(key)]
	if !ok {
		return 0, false
	}
	return parseUint(v)
}

// Float returns a numeric metric by key (with or without the zk_ prefix).
func (m Mntr) Float(key string) (float64, bool) {
	v, ok := m.Raw[mntrKey(key)]
	if !ok {
		return 0, false
	}
	return parseFloat(v)
}

func mntrKey(k string) string {
	if strings.HasPrefix(k, "zk_") {
		return k
	}
	return "zk_" + k
}

// ParseMntr parses "mntr" output (tab- or space-separated "zk_key value"
// lines). Output without any zk_ key is an error.
func ParseMntr(s string) (Mntr, error) {
	if err := refusal("mntr", s); err != nil {
		return Mntr{}, err
	}
	m := Mntr{Raw: map[string]string{}}
	for _, ln := range lines(s) {
		k, v, ok := splitKV(ln)
		if !ok || !strings.HasPrefix(k, "zk_") || len(k) == 3 {
			continue
		}
		m.Raw[k] = v
	}
	if len(m.Raw) == 0 {
		return Mntr{}, fmt.Errorf("%w: mntr output has no zk_ keys", ErrMalformed)
	}
	m.Version = m.Raw["zk_version"]
	m.Release = ReleaseVersion(m.Version)
	m.Flavor = flavorFromVersion(m.Version)
	if m.Has("key_arena_size") || m.Has("latest_snapshot_size") {
		m.Flavor = FlavorClickHouseKeeper
	}
	f := func(key string) float64 { v, _ := m.Float(key); return v }
	i := func(key string) int64 { v, _ := m.Int(key); return v }
	p := func(keys ...string) *int64 {
		for _, k := range keys {
			if v, ok := m.Int(k); ok {
				return &v
			}
		}
		return nil
	}
	m.AvgLatency = f("avg_latency")
	m.MaxLatency = f("max_latency")
	m.MinLatency = f("min_latency")
	m.PacketsReceived = i("packets_received")
	m.PacketsSent = i("packets_sent")
	m.NumAliveConnections = i("num_alive_connections")
	m.OutstandingRequests = i("outstanding_requests")
	m.ServerState = m.Raw["zk_server_state"]
	m.ZnodeCount = i("znode_count")
	m.WatchCount = i("watch_count")
	m.EphemeralsCount = i("ephemerals_count")
	m.ApproximateDataSize = i("approximate_data_size")
	open, hasOpen := m.Uint("open_file_descriptor_count")
	limit, hasMax := m.Uint("max_file_descriptor_count")
	m.OpenFileDescriptorCount = open
	m.HasFileDescriptors = hasOpen || hasMax
	switch {
	case hasMax && limit == math.MaxUint64:
		m.MaxFileDescriptorsUnlimited = true
	case hasMax:
		m.MaxFileDescriptorCount = limit
	}
	m.Followers = p("followers", "learners")
	m.SyncedFollowers = p("synced_followers")
	m.PendingSyncs = p("pending_syncs")
	return m, nil
}

// ProposalSizes is the leader-only "Proposal sizes last/min/max" line of
// srvr/stat, in bytes (-1 until the first proposal).
type ProposalSizes struct {
	Last, Min, Max int64
}

// Srvr is the parsed output of "srvr" (and the server part of "stat").
type Srvr struct {
	VersionLine string // the raw first line, e.g. "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on ..."
	Version     string // the version, cleaned for display (see CleanVersion)
	Release     string // numeric release, see ReleaseVersion
	Flavor      Flavor
	ReadOnly    bool // ZooKeeper printed "READ-ONLY mode; serving only read-only clients"

	LatencyMin, LatencyAvg, LatencyMax float64 // milliseconds

	Received    int64
	Sent        int64
	Connections int64
	Outstanding int64
	Zxid        Zxid
	HasZxid     bool
	Mode        string // leader, follower, standalone, observer, read-only
	NodeCount   int64

	ProposalSizes *ProposalSizes // leader only (ZooKeeper)

	// Raw holds every "Key: value" line as printed (key without the colon).
	Raw map[string]string
}

// ParseSrvr parses "srvr" output from ZooKeeper 3.4+ or ClickHouse Keeper.
// It also accepts "stat" output (client lines are ignored; see ParseStat).
func ParseSrvr(s string) (Srvr, error) {
	if err := refusal("srvr", s); err != nil {
		return Srvr{}, err
	}
	r := Srvr{Raw: map[string]string{}}
	for _, ln := range lines(s) {
		t := strings.TrimSpace(ln)
		if t == "" || isConnLine(t) {
			continue
		}
		if strings.HasPrefix(t, "READ-ONLY mode") {
			r.ReadOnly = true
			continue
		}
		k, v, ok := strings.Cut(t, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if v == "" {
			continue // "Clients:"
		}
		r.Raw[k] = v
		lk := strings.ToLower(k)
		switch {
		case strings.HasSuffix(lk, "version") && r.VersionLine == "":
			r.VersionLine = t
			r.Version = CleanVersion(v)
			r.Release = ReleaseVersion(v)
			if strings.HasPrefix(lk, "clickhouse") {
				r.Flavor = FlavorClickHouseKeeper
			} else if strings.HasPrefix(lk, "zookeeper") {
				r.Flavor = FlavorZooKeeper
			} else {
				r.Flavor = flavorFromVersion(v)
			}
		case lk == "latency min/avg/max":
			parts := strings.Split(v, "/")
			if len(parts) == 3 {
				r.LatencyMin, _ = parseFloat(parts[0])
				r.LatencyAvg, _ = parseFloat(parts[1])
				r.LatencyMax, _ = parseFloat(parts[2])
			}
		case lk == "received":
			r.Received, _ = parseInt(v)
		case lk == "sent":
			r.Sent, _ = parseInt(v)
		case lk == "connections":
			r.Connections, _ = parseInt(v)
		case lk == "outstanding":
			r.Outstanding, _ = parseInt(v)
		case lk == "zxid":
			if z, ok := parseHexOrDec(v); ok {
				r.Zxid, r.HasZxid = Zxid(z), true
			}
		case lk == "mode":
			r.Mode = v
		case lk == "node count":
			r.NodeCount, _ = parseInt(v)
		case lk == "proposal sizes last/min/max":
			parts := strings.Split(v, "/")
			if len(parts) == 3 {
				var ps ProposalSizes
				var ok1, ok2, ok3 bool
				ps.Last, ok1 = parseInt(parts[0])
				ps.Min, ok2 = parseInt(parts[1])
				ps.Max, ok3 = parseInt(parts[2])
				if ok1 && ok2 && ok3 {
					r.ProposalSizes = &ps
				}
			}
		}
	}
	if r.VersionLine == "" && r.Mode == "" {
		return Srvr{}, fmt.Errorf("%w: srvr output has neither a version line nor a Mode line", ErrMalformed)
	}
	return r, nil
}

// Stat is the parsed output of "stat": srvr plus the brief client list.
type Stat struct {
	Srvr
	Clients []Conn // brief: only Addr/IP/Port/Interest/Queued/Recved/Sent
}

// ParseStat parses "stat" output.
func ParseStat(s string) (Stat, error) {
	srvr, err := ParseSrvr(s)
	if err != nil {
		return Stat{}, err
	}
	st := Stat{Srvr: srvr}
	for _, ln := range lines(s) {
		t := strings.TrimSpace(ln)
		if !isConnLine(t) {
			continue
		}
		if c, ok := parseConnLine(t); ok {
			st.Clients = append(st.Clients, c)
		}
	}
	return st, nil
}
