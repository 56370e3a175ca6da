package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chmedic/chmedic/internal/store"
)

// storeCollector exports the store's backlog on each scrape: notifications
// and outbox entries by state (a growing "pending" outbox means Slack is
// not taking messages).
type storeCollector struct {
	st            *store.Store
	notifications *prometheus.Desc
	outbox        *prometheus.Desc
}

func newStoreCollector(st *store.Store) *storeCollector {
	return &storeCollector{
		st:            st,
		notifications: prometheus.NewDesc("chmedic_store_notifications", "Notifications in the store, by processing state.", []string{"state"}, nil),
		outbox:        prometheus.NewDesc("chmedic_store_outbox_entries", "Slack outbox entries in the store, by state.", []string{"state"}, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.notifications
	ch <- c.outbox
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if m, err := c.st.NotificationCounts(ctx); err == nil {
		for _, s := range store.NotificationStates {
			ch <- prometheus.MustNewConstMetric(c.notifications, prometheus.GaugeValue, float64(m[s]), s)
		}
	}
	if m, err := c.st.OutboxCounts(ctx); err == nil {
		for _, s := range []string{store.OutboxPending, store.OutboxSending, store.OutboxSent, store.OutboxFailed, store.OutboxSuperseded} {
			ch <- prometheus.MustNewConstMetric(c.outbox, prometheus.GaugeValue, float64(m[s]), s)
		}
	}
}

// prune deletes finished records older than retention (0 keeps them) and
// expires old action offers, hourly, until ctx ends.
func prune(ctx context.Context, st *store.Store, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if retention > 0 {
			n, err := st.Prune(ctx, time.Now().Add(-retention))
			if m, derr := st.PruneDigests(ctx, time.Now().Add(-retention)); derr == nil {
				n += m // each cluster's latest digest is kept
			}
			if err != nil && ctx.Err() == nil {
				log.Warn("pruning the store failed", "err", err)
			} else if n > 0 {
				log.Info("pruned old records from the store", "rows", n, "older_than", retention)
			}
		}
		pruneOffers(ctx, st, retention, log)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneOffers expires offers older than store.OfferTTL and deletes
// superseded and expired ones older than retention.
func pruneOffers(ctx context.Context, st *store.Store, retention time.Duration, log *slog.Logger) {
	now := time.Now()
	if n, err := st.ExpireOffers(ctx, now); err != nil && ctx.Err() == nil {
		log.Warn("expiring old action offers failed", "err", err)
	} else if n > 0 {
		log.Info("expired old action offers", "offers", n, "older_than", store.OfferTTL)
	}
	if retention <= 0 {
		return
	}
	if n, err := st.PruneOffers(ctx, now.Add(-retention)); err != nil && ctx.Err() == nil {
		log.Warn("pruning old action offers failed", "err", err)
	} else if n > 0 {
		log.Info("pruned old action offers", "offers", n, "older_than", retention)
	}
}
