package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge

	// dataWritable is 1 while the latest data directory check succeeded.
	dataWritable prometheus.Gauge
	// The CONFIG_FILE metrics, registered only when it is set.
	configReloads     *prometheus.CounterVec
	configLastSuccess prometheus.Gauge
	configLastOK      prometheus.Gauge

	// series caches each label set's counter and histogram: resolving three label values (hashed and checked
	// for UTF-8, twice) on every request cost more than recording it. Its keys are as bounded as the labels.
	series sync.Map // requestLabels → *requestSeries
}

type requestLabels struct {
	method, route string
	code          int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// observeRequest counts one answered request and its duration. method and route must already be bounded (see
// methodLabel and routeUnmatched).
func (m *metrics) observeRequest(method, route string, code int, elapsed time.Duration) {
	labels := requestLabels{method: method, route: route, code: code}
	cached, ok := m.series.Load(labels)
	if !ok {
		codeLabel := strconv.Itoa(code)
		cached, _ = m.series.LoadOrStore(labels, &requestSeries{
			count:    m.requests.WithLabelValues(method, route, codeLabel),
			duration: m.duration.WithLabelValues(method, route, codeLabel),
		})
	}
	series := cached.(*requestSeries)
	series.count.Inc()
	series.duration.Observe(elapsed.Seconds())
}

// newMetrics registers everything on the given registry, never the global one, so that every server (and every
// test) has its own counters.
func newMetrics(reg *prometheus.Registry, build BuildInfo, liveConfig bool) *metrics {
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route template and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds",
			Help: "Time to answer HTTP requests, by method, route template and status code.",
			// From 100µs because most handlers answer well under a millisecond; coarser buckets would put
			// every request in the first one.
			Buckets: []float64{
				0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
			},
			// Scrapers that understand native histograms get full resolution; others get the buckets above.
			NativeHistogramBucketFactor: 1.1,
		}, []string{"method", "route", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight",
			Help: "HTTP requests being answered.",
		}),
		dataWritable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "goapp_data_dir_writable",
			Help: "1 while the latest check of the data directory wrote, synced and removed its probe file.",
		}),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "goapp_build_info",
		Help: "Always 1; the labels identify the running build.",
		ConstLabels: prometheus.Labels{
			"version":   build.Version,
			"commit":    build.Commit,
			"goversion": build.GoVersion,
		},
	})
	buildInfo.Set(1)
	reg.MustRegister(
		m.requests, m.duration, m.inFlight, buildInfo, m.dataWritable,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if liveConfig {
		m.configReloads = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "goapp_config_reloads_total",
			Help: "Changes of CONFIG_FILE seen while running, by result: success (applied) or failure (kept the last good settings).",
		}, []string{"result"})
		// Both series exist from the start, so that rate() and alerts see the first failure.
		m.configReloads.WithLabelValues("success")
		m.configReloads.WithLabelValues("failure")
		m.configLastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "goapp_config_last_reload_success_timestamp_seconds",
			Help: "When CONFIG_FILE was last loaded and applied (at start, or on a change), in Unix seconds.",
		})
		m.configLastOK = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "goapp_config_last_reload_successful",
			Help: "1 if the latest look at CONFIG_FILE applied it, 0 if it was rejected.",
		})
		reg.MustRegister(m.configReloads, m.configLastSuccess, m.configLastOK)
	}
	return m
}

// configLoaded records an applied CONFIG_FILE; reload is false for the load at start, which is not a reload.
func (m *metrics) configLoaded(at time.Time, reload bool) {
	if reload {
		m.configReloads.WithLabelValues("success").Inc()
	}
	m.configLastSuccess.Set(float64(at.UnixNano()) / 1e9)
	m.configLastOK.Set(1)
}

// configRejected records a CONFIG_FILE change that was not applied.
func (m *metrics) configRejected() {
	m.configReloads.WithLabelValues("failure").Inc()
	m.configLastOK.Set(0)
}
