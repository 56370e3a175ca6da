package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// InstanceID returns this store's random, stable identity (made on first
// use, kept in the meta table). The outbox writes it into every message's
// metadata, so that the lookup after an unknown outcome never takes another
// store's message (an HA pair, a rebuilt or restored store posting to the
// same channel) for its own.
func (s *Store) InstanceID(ctx context.Context) (string, error) {
	var id string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'instance_id'`).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		id = newID()
		_, err = tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('instance_id', ?)`, id)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store instance id: %w", err)
	}
	return id, nil
}
