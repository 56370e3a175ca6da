package probe

// Builtin returns every probe chmedic knows, keyed by name. A new probe is one
// file with one Spec constructor and one line here.
func Builtin() map[string]Spec {
	specs := []Spec{
		// ClickHouse probes (one file each: clickhouse_*.go).
		clickhousePing(),
		clickhouseKeeperLatency(),
		clickhouseKeeperSessions(),
		clickhouseReplicas(),
		clickhouseReplicationQueue(),
		clickhouseDDLQueue(),
		clickhouseKeeperErrors(),
		clickhouseDDLStorm(),
		clickhouseMetadata(),
		clickhouseInterserver(),
		// Keeper probes (one file each: keeper_*.go).
		keeperRuok(),
		keeperMntr(),
		keeperSrvr(),
		keeperIsro(),
		keeperCons(),
		keeperWchs(),
		keeperDirs(),
		keeperConf(),
	}
	m := make(map[string]Spec, len(specs))
	for _, s := range specs {
		m[s.Name] = s
	}
	return m
}
