package keeper

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Conf is the parsed output of "conf". ZooKeeper and ClickHouse Keeper keys
// are both mapped onto the common fields; Raw keeps every key as printed.
type Conf struct {
	Flavor Flavor

	ClientPort       int    // clientPort / tcp_port
	SecureClientPort int    // secureClientPort (-1 = disabled) / tcp_port_secure
	DataDir          string // dataDir / snapshot_storage_path
	DataLogDir       string // dataLogDir / log_storage_path
	TickTime         int64  // ms; ZooKeeper only

	// MaxClientCnxns is ZooKeeper's per-client-IP connection limit
	// (maxClientCnxns). 0 means unlimited; HasMaxClientCnxns tells whether
	// the server printed it at all (ClickHouse Keeper does not).
	MaxClientCnxns    int
	HasMaxClientCnxns bool

	// Session timeout bounds in ms: minSessionTimeout/maxSessionTimeout on
	// ZooKeeper, min_session_timeout_ms/session_timeout_ms on ClickHouse
	// Keeper (whose session_timeout_ms is the maximum).
	MinSessionTimeout int64
	MaxSessionTimeout int64

	ServerID    int64 // serverId / server_id (0 on a standalone ZooKeeper)
	HasServerID bool

	// ZooKeeper ensemble settings (absent on standalone servers).
	InitLimit, SyncLimit int64
	ElectionPort         string // "3888", or "3888|3889" with multiple addresses (3.6+)
	QuorumPort           string
	PeerType             string // 0 participant, 1 observer
	// Servers maps "server.N" to its membership line (3.5+ "membership:"
	// section), e.g. "zk1:2888:3888:participant;0.0.0.0:2181".
	Servers map[string]string

	// ClickHouse Keeper coordination settings.
	SessionTimeoutMs        int64
	OperationTimeoutMs      int64
	FourLetterWordAllowList string // four_letter_word_white_list, renamed ..._allow_list later
	ForceSync               bool
	HasForceSync            bool

	Raw map[string]string
}

// ConnectionLimit returns ZooKeeper's per-IP connection limit and whether
// one applies (maxClientCnxns present and not 0).
func (c Conf) ConnectionLimit() (limit int, limited bool) {
	return c.MaxClientCnxns, c.HasMaxClientCnxns && c.MaxClientCnxns > 0
}

// ServerIDs returns the sorted "server.N" keys of the membership.
func (c Conf) ServerIDs() []string {
	ids := make([]string, 0, len(c.Servers))
	for k := range c.Servers {
		ids = append(ids, k)
	}
	sort.Strings(ids)
	return ids
}

// ParseConf parses "conf" output (key=value lines). ZooKeeper 3.5+ quorum
// members add a "membership:" line followed by server.N=... lines.
func ParseConf(s string) (Conf, error) {
	if err := refusal("conf", s); err != nil {
		return Conf{}, err
	}
	c := Conf{Raw: map[string]string{}}
	for _, ln := range lines(s) {
		t := strings.TrimSpace(ln)
		k, v, ok := strings.Cut(t, "=")
		if !ok || strings.TrimSpace(k) == "" {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		c.Raw[k] = v
		if strings.HasPrefix(k, "server.") {
			if c.Servers == nil {
				c.Servers = map[string]string{}
			}
			c.Servers[k] = v
		}
	}
	if len(c.Raw) == 0 {
		return Conf{}, fmt.Errorf("%w: conf output has no key=value line", ErrMalformed)
	}
	str := func(keys ...string) (string, bool) {
		for _, k := range keys {
			if v, ok := c.Raw[k]; ok {
				return v, true
			}
		}
		return "", false
	}
	num := func(keys ...string) (int64, bool) {
		for _, k := range keys {
			if v, ok := c.Raw[k]; ok {
				if n, ok := parseInt(v); ok {
					return n, true
				}
			}
		}
		return 0, false
	}
	_, zk := c.Raw["clientPort"]
	_, zk2 := c.Raw["tickTime"]
	_, chk := c.Raw["tcp_port"]
	_, chk2 := c.Raw["snapshot_storage_path"]
	_, chk3 := c.Raw["session_timeout_ms"]
	switch {
	case zk || zk2:
		c.Flavor = FlavorZooKeeper
	case chk || chk2 || chk3:
		c.Flavor = FlavorClickHouseKeeper
	}

	if n, ok := num("clientPort", "tcp_port"); ok {
		c.ClientPort = int(n)
	}
	if n, ok := num("secureClientPort", "tcp_port_secure"); ok {
		c.SecureClientPort = int(n)
	}
	c.DataDir, _ = str("dataDir", "snapshot_storage_path")
	c.DataLogDir, _ = str("dataLogDir", "log_storage_path")
	c.TickTime, _ = num("tickTime")
	if n, ok := num("maxClientCnxns"); ok {
		c.MaxClientCnxns, c.HasMaxClientCnxns = int(n), true
	}
	c.MinSessionTimeout, _ = num("minSessionTimeout", "min_session_timeout_ms")
	c.MaxSessionTimeout, _ = num("maxSessionTimeout", "session_timeout_ms")
	c.ServerID, c.HasServerID = num("serverId", "server_id")
	c.InitLimit, _ = num("initLimit")
	c.SyncLimit, _ = num("syncLimit")
	c.ElectionPort, _ = str("electionPort")
	c.QuorumPort, _ = str("quorumPort")
	c.PeerType, _ = str("peerType")
	c.SessionTimeoutMs, _ = num("session_timeout_ms")
	c.OperationTimeoutMs, _ = num("operation_timeout_ms")
	c.FourLetterWordAllowList, _ = str("four_letter_word_white_list", "four_letter_word_allow_list")
	if v, ok := str("force_sync"); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			c.ForceSync, c.HasForceSync = b, true
		}
	}
	return c, nil
}
