package actions

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// runnerMetrics are the Runner's metrics.
type runnerMetrics struct {
	executions *prometheus.CounterVec
	steps      *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

func newRunnerMetrics(reg prometheus.Registerer) *runnerMetrics {
	m := &runnerMetrics{
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_action_executions_total",
			Help: "Executions ended (or interrupted), by action kind and outcome state.",
		}, []string{"kind", "state"}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chmedic_action_steps_total",
			Help: "Action steps run, by action kind and state (done, failed, skipped on resume).",
		}, []string{"kind", "state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chmedic_action_step_duration_seconds",
			Help:    "Time to execute and verify one action step.",
			Buckets: []float64{.01, .05, .25, 1, 5, 15, 60, 300},
		}, []string{"kind"}),
	}
	if reg != nil {
		m.executions = register(reg, m.executions)
		m.steps = register(reg, m.steps)
		m.duration = register(reg, m.duration)
	}
	return m
}

// register registers c, or returns the collector already registered under
// its name (two Runners of one process share their metrics).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}
