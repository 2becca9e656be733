package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"goapp/internal/config"
	"goapp/internal/liveconfig"
	"goapp/internal/logging"
	"goapp/internal/notes"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// logBuffer collects the JSON log lines of a server that may write from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// entries decodes every log line so far.
func (b *logBuffer) entries(t testing.TB) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// find returns the log entries whose msg is msg.
func (b *logBuffer) find(t testing.TB, msg string) []map[string]any {
	var out []map[string]any
	for _, e := range b.entries(t) {
		if e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

func testConfig(t testing.TB) config.Config {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.LogLevel = slog.LevelDebug
	cfg.NotesToken = testToken
	// Tests that stop a server would otherwise wait out the default drain.
	cfg.ShutdownDrain = 50 * time.Millisecond
	return cfg
}

var testBuild = BuildInfo{Version: "1.2.3", Commit: "abc1234", GoVersion: "go1.test"}

// testToken is the NOTES_TOKEN of test servers; authorized is the header that carries it.
const testToken = "test-token-0123456789"

var authorized = map[string]string{"Authorization": "Bearer " + testToken}

// openAPIDocument is goapp/openapi.yaml, which main embeds.
func openAPIDocument(t testing.TB) []byte {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// newDeps gives a server built on cfg its usual dependencies, logging into logs.
func newDeps(t testing.TB, cfg config.Config, logs io.Writer) Deps {
	t.Helper()
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	deps := Deps{
		Logs: Logs{
			Logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level})),
			AccessLog: logging.NewAccessLog(logs, level),
			Level:     level,
		},
		Store:   notes.New(cfg.DataDir),
		Build:   testBuild,
		OpenAPI: openAPIDocument(t),
	}
	if cfg.ConfigFile != "" {
		deps.Live = liveconfig.New(cfg.ConfigFile, func(string) string { return "" })
	}
	return deps
}

// newServer builds a server whose data directory is prepared, unless cfg says otherwise via prepare=false.
func newServer(t testing.TB, cfg config.Config, prepare bool) (*Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s, err := New(cfg, newDeps(t, cfg, logs))
	if err != nil {
		t.Fatal(err)
	}
	if prepare {
		if !s.prepare(context.Background()) {
			t.Fatalf("data directory %s could not be prepared", cfg.DataDir)
		}
	}
	return s, logs
}

// do sends one request with the test token, unless header sets Authorization itself ("" for none).
func do(s http.Handler, method, target string, body io.Reader, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, body)
	req.Header.Set("Authorization", authorized["Authorization"])
	for k, v := range header {
		req.Header.Set(k, v)
		if v == "" {
			req.Header.Del(k)
		}
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func jsonBody(t testing.TB, rec *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("Content-Type = %q; want JSON (body %q)", ct, rec.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", rec.Body.String(), err)
	}
	return m
}

func httptestRecord(s http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}
