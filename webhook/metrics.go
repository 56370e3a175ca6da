package webhook

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the receiver's and the queue's Prometheus metrics.
type Metrics struct {
	Received   *prometheus.CounterVec
	Rejected   *prometheus.CounterVec
	Processed  *prometheus.CounterVec
	QueueDepth prometheus.Gauge
	InFlight   prometheus.Gauge
	Duration   prometheus.Histogram
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
			Help: "Accepted notifications processed, by result (done, failed, retried, requeued).",
		}, []string{"result"}),
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
	}
	for _, reason := range []string{"unauthorized", "method", "too_large", "bad_json", "bad_version", "missing_group_key", "missing_alerts", "bad_status", "missing_labels", "empty", "read_error", "queue_full", "store_error"} {
		m.Rejected.WithLabelValues(reason)
	}
	if reg != nil {
		reg.MustRegister(m.Received, m.Rejected, m.Processed, m.QueueDepth, m.InFlight, m.Duration)
	}
	return m
}
