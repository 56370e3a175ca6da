package testenv

import (
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestBindFailureIsDetected checks that each server's "port taken" failure is
// recognised, since Start retries with new ports only on errAddrInUse.
func TestBindFailureIsDetected(t *testing.T) {
	Require(t)
	bins, err := findBinaries()
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	check := func(name string, start func() error, stop func() error) {
		t.Helper()
		t0 := time.Now()
		err := start()
		_ = stop()
		if !errors.Is(err, errAddrInUse) {
			t.Errorf("%s on a taken port: err = %v, want errAddrInUse", name, err)
			return
		}
		t.Logf("%s: bind failure detected in %s", name, time.Since(t0).Round(time.Millisecond))
	}

	zk, err := newZooKeeper(filepath.Join(dir, "zk"), port, bins.java, bins.zkClasspath, "")
	if err != nil {
		t.Fatal(err)
	}
	check("zookeeper", func() error { return zk.Start(t.Context()) }, func() error { return zk.Kill(t.Context()) })

	users := &usersConfig{path: filepath.Join(dir, "users.xml"), profiles: []*profile{{name: "default"}},
		users: []userEntry{{name: "default", profile: "default"}}}
	if err := users.write(); err != nil {
		t.Fatal(err)
	}
	chDir := filepath.Join(dir, "ch")
	ch := &ClickHouse{
		Name: "ch-1", Host: "127.0.0.1", TCPPort: ports[0], HTTPPort: port, InterserverPort: ports[1],
		Shard: Shard, Replica: "ch-1", Dir: chDir,
		ConfigPath:   filepath.Join(chDir, "config.xml"),
		LogPath:      filepath.Join(chDir, "clickhouse-server.log"),
		ErrorLogPath: filepath.Join(chDir, "clickhouse-server.err.log"),
		StdoutPath:   filepath.Join(chDir, "stdout.log"),
		client:       client,
	}
	if err := ch.writeConfig([]*ClickHouse{ch}, ClusterName, users.path, "127.0.0.1:1", 6*time.Second); err != nil {
		t.Fatal(err)
	}
	ch.proc = &process{name: "clickhouse ch-1", path: bins.clickhouse,
		args: append(append([]string{}, bins.clickhouseArgs...), "--config-file="+ch.ConfigPath), dir: chDir, logPath: ch.StdoutPath}
	check("clickhouse", func() error { return ch.Start(t.Context()) }, func() error { return ch.Kill(t.Context()) })

	am, err := newAlertmanager(filepath.Join(dir, "am"), port, bins.alertmanager, client)
	if err != nil {
		t.Fatal(err)
	}
	check("alertmanager", func() error { return am.Start(t.Context()) }, func() error { return am.proc.stop(t.Context(), 0) })
}

func TestFreePortsAvoidEphemeralRange(t *testing.T) {
	ports, err := freePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	lo := ephemeralLow()
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d returned twice", p)
		}
		seen[p] = true
		if lo-portPoolLow >= 1000 && (p < portPoolLow || p >= lo) {
			t.Errorf("port %d outside [%d, %d)", p, portPoolLow, lo)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Errorf("port %d not free: %v", p, err)
			continue
		}
		l.Close()
	}
}
