package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the member's Prometheus metrics, under etcd's names so that
// dashboards and alerts written for etcd work unchanged. Each member has its
// own registry: no global state.
type Metrics struct {
	Registry *prometheus.Registry

	hasLeader        prometheus.Gauge
	isLeader         prometheus.Gauge
	leaderChanges    prometheus.Counter
	proposalsApplied prometheus.Gauge
	proposalsCommit  prometheus.GaugeFunc
	proposalsPending prometheus.Gauge
	proposalsFailed  prometheus.Counter
	walFsync         prometheus.Histogram
	backendCommit    prometheus.Histogram
}

func newMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.hasLeader = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "has_leader",
		Help: "Whether or not a leader exists. 1 is existence, 0 is not."})
	m.isLeader = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "is_leader",
		Help: "Whether or not this member is a leader. 1 if is, 0 otherwise."})
	m.leaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "leader_changes_seen_total",
		Help: "The number of leader changes seen."})
	m.proposalsApplied = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_applied_total",
		Help: "The total number of consensus proposals applied."})
	m.proposalsPending = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_pending",
		Help: "The current number of pending proposals to commit."})
	m.proposalsFailed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_failed_total",
		Help: "The total number of failed proposals seen."})
	m.walFsync = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "wal_fsync_duration_seconds",
		Help: "The latency distributions of fsync called by WAL.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.backendCommit = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "etcd", Subsystem: "disk", Name: "backend_commit_duration_seconds",
		Help: "The latency distributions of commit called by backend.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.Registry.MustRegister(m.hasLeader, m.isLeader, m.leaderChanges, m.proposalsApplied, m.proposalsPending,
		m.proposalsFailed, m.walFsync, m.backendCommit,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registerServerGauges adds the gauges that read the live server.
func (s *Server) registerServerGauges() {
	m := s.metrics
	m.proposalsCommit = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "proposals_committed_total",
		Help: "The total number of consensus proposals committed."}, func() float64 { return float64(s.committed.Load()) })
	dbSize := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_bytes",
		Help: "Total size of the underlying database physically allocated in bytes."}, func() float64 {
		s.kvMu.RLock()
		defer s.kvMu.RUnlock()
		if s.backend == nil {
			return 0
		}
		return float64(s.backend.SizeBytes())
	})
	dbInUse := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "mvcc", Name: "db_total_size_in_use_in_bytes",
		Help: "Total size of the underlying database logically in use in bytes."}, func() float64 {
		s.kvMu.RLock()
		defer s.kvMu.RUnlock()
		if s.backend == nil {
			return 0
		}
		return float64(s.backend.SizeInUseBytes())
	})
	m.Registry.MustRegister(m.proposalsCommit, dbSize, dbInUse)
}
