package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/config"
	"github.com/chmedic/chmedic/internal/testenv"
	"github.com/chmedic/chmedic/playbooks/probe"
)

// TestDiscoverNodesFromSystemClusters: with only one node configured and
// discover on, a round probes every replica of the remote_servers cluster.
func TestDiscoverNodesFromSystemClusters(t *testing.T) {
	env := testenv.Shared(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte(env.ProbePassword), 0o600)
	yaml := fmt.Sprintf(`clusters:
  - name: test
    clickhouse:
      user: %s
      password_file: pw
      discover: true
      cluster_name: %s
      nodes: [{name: seed, address: %q}]
    keeper:
      nodes: [{name: zk-1, address: %q}]
`, env.ProbeUser, env.Cluster, env.ClickHouse[0].Addr(), env.ZooKeeper.Addr)
	path := filepath.Join(dir, "c.yaml")
	os.WriteFile(path, []byte(yaml), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	engine, closeEngine, err := BuildEngine(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeEngine()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d, err := engine.Diagnose(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]probe.Status{}
	for _, r := range d.Results {
		if r.Probe == "clickhouse.ping" {
			nodes[r.Node] = r.Status
		}
		if r.Probe == "clickhouse.discovery" && r.Status != probe.OK {
			t.Errorf("discovery: %+v", r)
		}
	}
	other := fmt.Sprintf("%s:%d", "127.0.0.1", env.ClickHouse[1].TCPPort)
	if len(nodes) != 2 || nodes["seed"] != probe.OK {
		t.Fatalf("pinged %v, want the seed and the discovered replica", nodes)
	}
	found := false
	for n, st := range nodes {
		if n != "seed" && st == probe.OK {
			found = true
		}
	}
	if !found {
		t.Fatalf("discovered replica not probed (want something like %s): %v", other, nodes)
	}
}
