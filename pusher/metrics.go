package pusher

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	deliverFailures prometheus.Counter
	offlineTasks    prometheus.Counter
	notifications   *prometheus.CounterVec
	skipped         *prometheus.CounterVec
	refused         prometheus.Counter
	fallbacks       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		deliverFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "beehive", Subsystem: "pusher", Name: "deliver_failures_total",
			Help: "Frames a gateway instance did not accept after retries (clients recover by sync).",
		}),
		offlineTasks: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "beehive", Subsystem: "pusher", Name: "offline_tasks_total",
			Help: "Offline push tasks produced.",
		}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "beehive", Subsystem: "pusher", Name: "notifications_total",
			Help: "Offline notifications by platform and outcome.",
		}, []string{"platform", "outcome"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "beehive", Subsystem: "pusher", Name: "poison_records_total",
			Help: "Malformed records sent to the dead-letter topic, by consumer.",
		}, []string{"consumer"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "beehive", Subsystem: "pusher", Name: "refused_records_total",
			Help: "Records of beehive.messages message.DecodeRecord refused, skipped unpushed (the persist consumer dead-letters them).",
		}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "beehive", Subsystem: "pusher", Name: "lookup_fallbacks_total",
			Help: "Recipients whose lookup (devices, settings, acks) failed, given a deferred offline task instead, by lookup.",
		}, []string{"lookup"}),
	}
	if reg != nil {
		m.deliverFailures = register(reg, m.deliverFailures).(prometheus.Counter)
		m.offlineTasks = register(reg, m.offlineTasks).(prometheus.Counter)
		m.notifications = register(reg, m.notifications).(*prometheus.CounterVec)
		m.skipped = register(reg, m.skipped).(*prometheus.CounterVec)
		m.refused = register(reg, m.refused).(prometheus.Counter)
		m.fallbacks = register(reg, m.fallbacks).(*prometheus.CounterVec)
	}
	return m
}

// register returns c, or the collector already registered under its name
// (several Pushers in one test process).
func register(reg prometheus.Registerer, c prometheus.Collector) prometheus.Collector {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector
		}
	}
	return c
}
