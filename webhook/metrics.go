package webhook

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the receiver's and the queue's Prometheus metrics.
type Metrics struct {
	Received  *prometheus.CounterVec
	Rejected  *prometheus.CounterVec
	Processed *prometheus.CounterVec
	// QueueErrors counts store errors of the queue by operation; each one
	// is logged and its notification retried (or replayed on restart).
	QueueErrors *prometheus.CounterVec
	QueueDepth  prometheus.Gauge
	InFlight    prometheus.Gauge
	Duration    prometheus.Histogram
	// CommitBatch observes how many notifications each group commit
	// stored in one transaction (groupcommit.go).
	CommitBatch prometheus.Histogram
	// Yielded counts the time workers gave way to webhook bursts before
	// processing (QueueOptions.Yield).
	Yielded prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (which may be nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_webhook_notifications_total",
			Help: "Alertmanager notifications answered 200, by result (accepted, duplicate).",
		}, []string{"result"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_webhook_rejected_total",
			Help: "Webhook requests rejected, by reason.",
		}, []string{"reason"}),
		Processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_notifications_processed_total",
			Help: "Accepted notifications processed, by result (done, failed, retried, requeued, stale).",
		}, []string{"result"}),
		QueueErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_queue_store_errors_total",
			Help: "Store errors of the notification queue, by operation (load, load_mark, mark_stale, start, record, requeue); the notification is retried.",
		}, []string{"op"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chmedic_queue_depth",
			Help: "Notifications accepted and waiting for a worker.",
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chmedic_queue_in_flight",
			Help: "Notifications being processed.",
		}),
		Duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chmedic_notification_processing_seconds",
			Help:    "Time to process one notification (diagnosis, report, outbox).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		CommitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "chmedic_webhook_commit_batch_size",
			Help:    "Notifications stored by one transaction and one sync to disk (group commit of concurrent webhook requests).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 9),
		}),
		Yielded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chmedic_queue_yield_seconds_total",
			Help: "Time the notification workers waited for a burst of webhook requests to pass before processing (acceptance first; at most 250ms per notification).",
		}),
	}
	for _, reason := range []string{"unauthorized", "method", "too_large", "bad_json", "bad_version", "missing_group_key", "missing_alerts", "bad_status", "missing_labels", "empty", "read_error", "queue_full", "store_error"} {
		m.Rejected.WithLabelValues(reason)
	}
	for _, result := range []string{"done", "failed", "retried", "requeued", "stale"} {
		m.Processed.WithLabelValues(result)
	}
	for _, op := range []string{"load", "load_mark", "mark_stale", "start", "record", "requeue"} {
		m.QueueErrors.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(m.Received, m.Rejected, m.Processed, m.QueueErrors, m.QueueDepth, m.InFlight, m.Duration, m.CommitBatch, m.Yielded)
	}
	return m
}
