package server

import (
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Requests that race to create a label set's cached series must all be counted on one series.
func TestObserveRequestConcurrently(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry(), testBuild, false)
	const workers, each = 8, 250
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				m.observeRequest("GET", "/notes/:name", 404, time.Millisecond)
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.requests.WithLabelValues("GET", "/notes/:name", "404")); got != workers*each {
		t.Errorf("http_requests_total = %v; want %d", got, workers*each)
	}
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Errorf("%d duration series; want 1", n)
	}
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "http_request_duration_seconds" {
			if got := f.GetMetric()[0].GetHistogram().GetSampleCount(); got != workers*each {
				t.Errorf("duration count = %d; want %d", got, workers*each)
			}
			return
		}
	}
	t.Fatal("no http_request_duration_seconds family gathered")
}
