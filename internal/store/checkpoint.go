package store

import (
	"context"
	"time"
)

// checkpointEvery is how often the background checkpointer copies the
// WAL's committed pages into the database file.
const checkpointEvery = time.Second

const checkpointStatement = `PRAGMA wal_checkpoint(PASSIVE)`

// SQLite's automatic checkpoint runs inside the commit that crosses 1,000
// WAL pages, so that commit (and, with group commit, every webhook request
// of its batch) waits for the copy and the database file's sync: the tail
// of the webhook's latency. The store turns it off (wal_autocheckpoint(0))
// and checkpoints from a goroutine instead, PASSIVE: it never blocks
// writers or readers. Durability is the WAL's, synced at every commit; the
// WAL stays bounded by about a second of writes; closing the last
// connection checkpoints what is left.
func (s *Store) startCheckpointer() {
	s.ckStop = make(chan struct{})
	s.ckDone = make(chan struct{})
	go func() {
		defer close(s.ckDone)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-s.ckStop:
				return
			case <-t.C:
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				// An error (busy, closing) is retried at the next tick.
				s.db.ExecContext(ctx, checkpointStatement)
				cancel()
			}
		}
	}()
}

func (s *Store) stopCheckpointer() {
	if s.ckStop != nil {
		close(s.ckStop)
		<-s.ckDone
		s.ckStop = nil
	}
}
