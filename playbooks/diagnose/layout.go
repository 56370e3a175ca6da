package diagnose

import (
	"fmt"
	"sort"
)

// place is where a ClickHouse node sits in the cluster's layout.
type place struct {
	Shard   int
	Replica string
}

// layoutOf maps node names to their shard and replica.
func layoutOf(c *Cluster) map[string]place {
	out := make(map[string]place, len(c.ClickHouse))
	for _, n := range c.ClickHouse {
		rep := n.Replica
		if rep == "" {
			rep = n.Name
		}
		out[n.Name] = place{Shard: n.Shard, Replica: rep}
	}
	return out
}

// where names a node with its shard and replica when they are known:
// "ch-2 (shard 1, replica r2)".
func (v view) where(node string) string {
	p, ok := v.layout[node]
	if !ok || p.Shard == 0 {
		return node
	}
	if p.Replica != "" && p.Replica != node {
		return fmt.Sprintf("%s (shard %d, replica %s)", node, p.Shard, p.Replica)
	}
	return fmt.Sprintf("%s (shard %d)", node, p.Shard)
}

func (v view) whereAll(nodes []string) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = v.where(n)
	}
	return out
}

// shards groups the nodes of known shards: shard → node names (sorted).
func (v view) shards() map[int][]string {
	out := map[int][]string{}
	for n, p := range v.layout {
		if p.Shard > 0 {
			out[p.Shard] = append(out[p.Shard], n)
		}
	}
	for _, ns := range out {
		sort.Strings(ns)
	}
	return out
}
