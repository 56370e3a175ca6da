package probe

import (
	"sync"
	"time"
)

// Samples remembers counter samples between diagnosis rounds, one per probe
// and node (bounded by the configured nodes), so that a probe can turn
// counters into rates against the previous round instead of waiting for a
// second sample on the critical path. Safe for concurrent use; the zero
// value is not usable, use NewSamples.
type Samples struct {
	mu sync.Mutex
	m  map[string]Sample
}

// Sample is one reading of a node's counters.
type Sample struct {
	Values map[string]float64
	At     time.Time
}

// NewSamples returns an empty memory.
func NewSamples() *Samples { return &Samples{m: map[string]Sample{}} }

// Get returns the sample stored under key.
func (s *Samples) Get(key string) (Sample, bool) {
	if s == nil {
		return Sample{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	return v, ok
}

// Put stores a sample under key.
func (s *Samples) Put(key string, v Sample) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = v
}

// SampleKey is the key a probe stores a node's sample under.
func SampleKey(probe, cluster, node string) string { return probe + "/" + cluster + "/" + node }
