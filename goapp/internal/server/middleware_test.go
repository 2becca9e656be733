package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"goapp/internal/logging"
)

func TestAccessLog(t *testing.T) {
	s, logs := newServer(t, testConfig(t), true)
	rec := do(s, "GET", "/notes/missing", nil, nil)
	id := rec.Header().Get("X-Request-ID")
	if id == "" {
		t.Fatal("no X-Request-ID in the response")
	}
	lines := logs.find(t, "request")
	if len(lines) != 1 {
		t.Fatalf("got %d access log lines; want 1", len(lines))
	}
	want := map[string]any{
		"level": "INFO", "request_id": id, "method": "GET", "route": "/notes/:name", "path": "/notes/missing",
		"status": float64(404), "client_ip": "192.0.2.1",
	}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("access log %s = %#v; want %#v", k, lines[0][k], v)
		}
	}
	if lat, ok := lines[0]["latency_ns"].(float64); !ok || lat <= 0 || lat != float64(int64(lat)) {
		t.Errorf("latency_ns = %#v; want a positive whole number", lines[0]["latency_ns"])
	}
}

func TestAccessLogLevels(t *testing.T) {
	cfg := testConfig(t)
	for _, tt := range []struct {
		target string
		level  string
	}{
		{"/healthz", "DEBUG"}, {"/readyz", "DEBUG"}, {"/metrics", "DEBUG"}, {"/hello", "INFO"}, {"/nope", "INFO"},
	} {
		s, logs := newServer(t, cfg, true)
		do(s, "GET", tt.target, nil, nil)
		lines := logs.find(t, "request")
		if len(lines) != 1 || lines[0]["level"] != tt.level {
			t.Errorf("GET %s logged %v; want one line at %s", tt.target, lines, tt.level)
		}
	}
}

func TestRequestID(t *testing.T) {
	s, _ := newServer(t, testConfig(t), true)
	for _, tt := range []struct {
		incoming string
		reused   bool
	}{
		{"abc-123.def_4:5", true},
		{"", false},
		{"has space", false},
		{"inject\"quote", false},
		{strings.Repeat("a", maxRequestIDLength), true},
		{strings.Repeat("a", maxRequestIDLength+1), false},
	} {
		rec := do(s, "GET", "/hello", nil, map[string]string{"X-Request-ID": tt.incoming})
		got := rec.Header().Get("X-Request-ID")
		if tt.reused != (got == tt.incoming) || got == "" {
			t.Errorf("incoming %q gave %q; reuse wanted: %v", tt.incoming, got, tt.reused)
		}
	}
	a := do(s, "GET", "/hello", nil, nil).Header().Get("X-Request-ID")
	b := do(s, "GET", "/hello", nil, nil).Header().Get("X-Request-ID")
	if a == b {
		t.Errorf("two requests got the same generated id %q", a)
	}
}

func TestTrustedProxies(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"none trusted by default", nil, "192.0.2.1"},
		{"peer trusted", []string{"192.0.2.0/24"}, "203.0.113.9"},
		{"other proxy trusted", []string{"10.0.0.1"}, "192.0.2.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.TrustedProxies = tt.trusted
			s, logs := newServer(t, cfg, true)
			do(s, "GET", "/hello", nil, map[string]string{"X-Forwarded-For": "203.0.113.9"})
			if got := logs.find(t, "request")[0]["client_ip"]; got != tt.want {
				t.Fatalf("client_ip = %v; want %s", got, tt.want)
			}
		})
	}
}

func TestPanicRecovery(t *testing.T) {
	s, logs := newServer(t, testConfig(t), true)
	// The real routes never panic, so the middleware chain of routes() is mounted on a route that does.
	r := gin.New()
	r.Use(s.requestID(), s.observe(), s.recovery())
	r.GET("/boom", func(*gin.Context) { panic("kaboom") })

	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if rec.Code != 500 || jsonBody(t, rec)["error"] != "internal server error" {
		t.Fatalf("panic answered %d %s; want 500 JSON", rec.Code, rec.Body.String())
	}
	p := logs.find(t, "panic while handling request")
	if len(p) != 1 || p[0]["panic"] != "kaboom" || !strings.Contains(p[0]["stack"].(string), "middleware_test.go") {
		t.Fatalf("panic log = %v; want the value and a stack naming the panicking function", p)
	}
	if access := logs.find(t, "request"); len(access) != 1 || access[0]["status"] != float64(500) || access[0]["level"] != "ERROR" {
		t.Fatalf("access log = %v; want one ERROR line with status 500", access)
	}
	if !strings.Contains(scrape(t, s), `http_requests_total{code="500",method="GET",route="/boom"} 1`) {
		t.Fatal("the 500 was not counted")
	}
}

func scrape(t *testing.T, s http.Handler) string {
	t.Helper()
	rec := do(s, "GET", "/metrics", nil, nil)
	if rec.Code != 200 {
		t.Fatalf("/metrics = %d", rec.Code)
	}
	return rec.Body.String()
}

func TestMetrics(t *testing.T) {
	s, _ := newServer(t, testConfig(t), true)
	do(s, "GET", "/hello", nil, nil)
	do(s, "GET", "/hello", nil, nil)
	do(s, "PUT", "/notes/a", strings.NewReader("x"), nil)
	do(s, "GET", "/notes/b", nil, nil)
	for i := range 50 {
		do(s, "GET", fmt.Sprintf("/scanner/probe/%d", i), nil, nil)
	}
	do(s, "BREW", "/hello", nil, nil)
	do(s, "POST", "/hello", nil, nil)

	body := scrape(t, s)
	for _, want := range []string{
		`http_requests_total{code="200",method="GET",route="/hello"} 2`,
		`http_requests_total{code="201",method="PUT",route="/notes/:name"} 1`,
		`http_requests_total{code="404",method="GET",route="/notes/:name"} 1`,
		// Fifty different unknown paths share one series.
		`http_requests_total{code="404",method="GET",route="unmatched"} 50`,
		`http_requests_total{code="405",method="OTHER",route="unmatched"} 1`,
		`http_requests_total{code="405",method="POST",route="unmatched"} 1`,
		`http_request_duration_seconds_bucket{code="200",method="GET",route="/hello",le="0.0001"}`,
		`http_request_duration_seconds_bucket{code="200",method="GET",route="/hello",le="0.00025"}`,
		`http_request_duration_seconds_count{code="200",method="GET",route="/hello"} 2`,
		`goapp_build_info{commit="abc1234",goversion="go1.test",version="1.2.3"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
		"http_requests_in_flight 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if n := strings.Count(body, "route=\"unmatched\""); n > 3*20 {
		t.Errorf("unmatched paths made %d series lines; want them bounded", n)
	}
}

func TestMethodLabel(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "DELETE": "DELETE", "get": "OTHER", "BREW": "OTHER", "": "OTHER"} {
		if got := methodLabel(in); got != want {
			t.Errorf("methodLabel(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestMetricsAreIsolatedPerServer(t *testing.T) {
	a, _ := newServer(t, testConfig(t), true)
	b, _ := newServer(t, testConfig(t), true)
	do(a, "GET", "/hello", nil, nil)
	if strings.Contains(scrape(t, b), `route="/hello"`) {
		t.Fatal("a request to one server shows in another server's metrics")
	}
}

// Access lines go to Logs.AccessLog (buffered in production), everything else to Logs.Logger (written at once).
func TestAccessLinesGoToTheAccessLog(t *testing.T) {
	cfg := testConfig(t)
	events, access := &logBuffer{}, &logBuffer{}
	deps := newDeps(t, cfg, io.Discard)
	deps.Logs = Logs{
		Logger:    slog.New(slog.NewJSONHandler(events, &slog.HandlerOptions{Level: cfg.LogLevel})),
		AccessLog: logging.NewAccessLog(access, cfg.LogLevel),
	}
	s, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	s.prepare(context.Background())
	do(s, "GET", "/hello", nil, nil)

	if got := access.find(t, "request"); len(got) != 1 || got[0]["route"] != "/hello" {
		t.Errorf("access log = %v; want the /hello line", access.entries(t))
	}
	if got := events.find(t, "request"); len(got) != 0 {
		t.Errorf("an access line reached the event logger: %v", got)
	}
	if got := events.find(t, "ready"); len(got) != 1 {
		t.Errorf("event log = %v; want the ready line there", events.entries(t))
	}
}

func TestNewWantsBothLogs(t *testing.T) {
	cfg := testConfig(t)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, logs := range []Logs{{Logger: logger}, {AccessLog: logging.NewAccessLog(io.Discard, slog.LevelInfo)}} {
		deps := newDeps(t, cfg, io.Discard)
		deps.Logs = logs
		if _, err := New(cfg, deps); err == nil || !strings.Contains(err.Error(), "Logger and AccessLog") {
			t.Errorf("New(%+v) = %v; want an error naming Logger and AccessLog", logs, err)
		}
	}
	for _, broken := range []func(*Deps){func(d *Deps) { d.Store = nil }, func(d *Deps) { d.OpenAPI = nil }} {
		deps := newDeps(t, cfg, io.Discard)
		broken(&deps)
		if _, err := New(cfg, deps); err == nil || !strings.Contains(err.Error(), "Store and the OpenAPI document") {
			t.Errorf("New without a store or document = %v; want an error naming them", err)
		}
	}
}
