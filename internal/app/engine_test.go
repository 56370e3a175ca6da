package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chmedic/chmedic/internal/config"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestEngineCarriesShardsAndKeeperKind: the config's nodes[].shard,
// nodes[].replica and keeper.kind reach the diagnosis (they were validated
// and then dropped). Each shard's only replica is down, so both shards are
// named unavailable and the findings carry shard and replica. Failed before
// the engine passed them on: no shard was known, so none was reported.
func TestEngineCarriesShardsAndKeeperKind(t *testing.T) {
	dir := t.TempDir()
	yaml := fmt.Sprintf(`clusters:
  - name: test
    clickhouse:
      nodes:
        - {name: ch-1, address: %q, shard: 1, replica: r1}
        - {name: ch-2, address: %q, shard: 2, replica: r2}
    keeper:
      kind: clickhouse-keeper
      nodes: [{name: k-1, address: %q}]
`, closedAddr(t), closedAddr(t), closedAddr(t))
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
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
	if !slices.Equal(d.UnavailableShards, []int{1, 2}) {
		t.Errorf("unavailable shards = %v, want [1 2]", d.UnavailableShards)
	}
	for _, f := range d.Findings {
		if f.Probe == "clickhouse.ping" && (f.Shard == 0 || f.Replica == "") {
			t.Errorf("%s: finding without its shard and replica: %+v", f.Node, f)
		}
	}
}
