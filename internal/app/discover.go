package app

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chmedic/chmedic/internal/clickhouse"
	"github.com/chmedic/chmedic/playbooks/diagnose"
)

// discoverTTL is how long a discovered topology is reused.
const discoverTTL = 5 * time.Minute

// discoverer finds the nodes of a remote_servers cluster in system.clusters
// on a seed node, opens bounded connections to the ones not configured, and
// caches the answer. Connections are reused across refreshes.
type discoverer struct {
	cluster string
	seeds   []*clickhouse.Node
	known   map[string]bool // configured addresses
	open    func(name, addr string) (*clickhouse.Node, error)
	now     func() time.Time

	mu     sync.Mutex
	at     time.Time
	cached []diagnose.ClickHouseNode
	conns  map[string]*clickhouse.Node
}

func (d *discoverer) Discover(ctx context.Context) ([]diagnose.ClickHouseNode, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.at.IsZero() && d.now().Sub(d.at) < discoverTTL {
		return d.cached, nil
	}
	q := "SELECT host_name, host_address, port, shard_num, replica_num FROM system.clusters WHERE cluster = '" +
		strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(d.cluster) + "'"
	var errs []string
	for _, seed := range d.seeds {
		rows, err := seed.Query(ctx, q)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", seed.Name(), err))
			continue
		}
		if len(rows) == 0 {
			return d.cached, fmt.Errorf("cluster %q is not in system.clusters on %s", d.cluster, seed.Name())
		}
		var out []diagnose.ClickHouseNode
		for _, r := range rows {
			host := r.String("host_address")
			if host == "" {
				host = r.String("host_name")
			}
			addr := net.JoinHostPort(host, strconv.FormatInt(r.Int("port"), 10))
			if d.known[addr] || d.known[net.JoinHostPort(r.String("host_name"), strconv.FormatInt(r.Int("port"), 10))] {
				continue
			}
			name := fmt.Sprintf("%s:%d", r.String("host_name"), r.Int("port"))
			conn, ok := d.conns[addr]
			if !ok {
				conn, err = d.open(name, addr)
				if err != nil {
					errs = append(errs, fmt.Sprintf("%s: %v", addr, err))
					continue
				}
				d.conns[addr] = conn
			}
			out = append(out, diagnose.ClickHouseNode{Name: name, Addr: addr, Conn: conn, Shard: int(r.Int("shard_num")), Replica: name})
		}
		d.cached, d.at = out, d.now()
		return out, nil
	}
	return d.cached, fmt.Errorf("no seed node answered: %s", strings.Join(errs, "; "))
}

func (d *discoverer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	return nil
}
