package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"goapp/internal/notes"
)

// notesRoutes are one request to each route of the notes API.
var notesRoutes = []struct{ method, target string }{
	{"GET", "/notes"}, {"PUT", "/notes/a"}, {"GET", "/notes/a"}, {"DELETE", "/notes/a"},
}

func TestNotesNeedTheToken(t *testing.T) {
	s, _ := newServer(t, testConfig(t), true)
	challenge := `Bearer realm="goapp notes"`
	for _, tt := range []struct {
		name          string
		authorization []string
		wantChallenge string
		wantError     string
	}{
		{"no header", nil, challenge, "missing bearer token"},
		{"empty header", []string{""}, challenge, "missing bearer token"},
		{"other scheme", []string{"Basic " + testToken}, challenge, "missing bearer token"},
		{"no token", []string{"Bearer "}, challenge, "missing bearer token"},
		{"token with a space", []string{"Bearer " + testToken + " x"}, challenge, "missing bearer token"},
		{"two headers", []string{"Bearer " + testToken, "Bearer " + testToken}, challenge, "missing bearer token"},
		{"wrong token", []string{"Bearer wrong-token-0123456789"}, challenge + `, error="invalid_token"`, "invalid bearer token"},
		{"prefix of the token", []string{"Bearer " + testToken[:len(testToken)-1]}, challenge + `, error="invalid_token"`, "invalid bearer token"},
		{"token plus more", []string{"Bearer " + testToken + "0"}, challenge + `, error="invalid_token"`, "invalid bearer token"},
	} {
		for _, route := range notesRoutes {
			t.Run(tt.name+" "+route.method+" "+route.target, func(t *testing.T) {
				req := httptest.NewRequest(route.method, route.target, strings.NewReader("x"))
				req.Header["Authorization"] = tt.authorization
				rec := httptestRecord(s, req)
				if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") != tt.wantChallenge {
					t.Fatalf("= %d, WWW-Authenticate %q; want 401 with %q", rec.Code, rec.Header().Get("WWW-Authenticate"), tt.wantChallenge)
				}
				if msg, _ := jsonBody(t, rec)["error"].(string); !strings.Contains(msg, tt.wantError) {
					t.Fatalf("error = %q; want %q", msg, tt.wantError)
				}
			})
		}
	}
	if _, err := os.Stat(filepath.Join(s.store.Dir(), "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused PUT wrote the note")
	}
	// The scheme is case-insensitive (RFC 7235); with the token, every route works.
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		if rec := do(s, "PUT", "/notes/a", strings.NewReader("x"), map[string]string{"Authorization": scheme + " " + testToken}); rec.Code != 201 && rec.Code != 200 {
			t.Fatalf("PUT with %q scheme = %d %s", scheme, rec.Code, rec.Body.String())
		}
	}
	// Everything else stays open.
	for _, target := range []string{"/hello", "/version", "/openapi.yaml", "/healthz", "/readyz", "/startupz", "/metrics"} {
		if rec := do(s, "GET", target, nil, map[string]string{"Authorization": ""}); rec.Code != 200 {
			t.Errorf("GET %s without a token = %d; want 200", target, rec.Code)
		}
	}
}

func TestNotesAPIIsClosedWithoutAToken(t *testing.T) {
	cfg := testConfig(t)
	cfg.NotesToken = ""
	_, logs, base, cancel, done := startServing(t, cfg)
	waitReady(t, base)
	for _, route := range notesRoutes {
		req, _ := http.NewRequest(route.method, base+route.target, strings.NewReader("x"))
		req.Header.Set("Authorization", "Bearer anything-at-all-goes")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(body), "NOTES_TOKEN is not set") ||
			resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s = %d %s; want 401 saying NOTES_TOKEN is not set", route.method, route.target, resp.StatusCode, body)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	if warned := logs.find(t, "notes API disabled: NOTES_TOKEN is not set, so every /notes request answers 401"); len(warned) != 1 ||
		warned[0]["level"] != "WARN" {
		t.Fatalf("start log = %v; want one warning saying why the notes API is closed", logs.entries(t))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNotesAnswer503BeforeTheDataDirectoryIsReady(t *testing.T) {
	s, _ := newServer(t, testConfig(t), false)
	for _, route := range notesRoutes {
		rec := do(s, route.method, route.target, strings.NewReader("x"), nil)
		if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s %s before the data directory check = %d (Retry-After %q); want 503 with Retry-After",
				route.method, route.target, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
}

func TestListNotesPages(t *testing.T) {
	cfg := testConfig(t)
	s, _ := newServer(t, cfg, true)
	// 101 notes: one more than the default page.
	var want []string
	for i := range defaultListLimit + 1 {
		name := fmt.Sprintf("note-%03d", i)
		want = append(want, name)
		if err := os.WriteFile(filepath.Join(cfg.DataDir, name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	page := func(query string) ([]string, string) {
		t.Helper()
		rec := do(s, "GET", "/notes"+query, nil, nil)
		if rec.Code != 200 {
			t.Fatalf("GET /notes%s = %d %s", query, rec.Code, rec.Body.String())
		}
		body := jsonBody(t, rec)
		var names []string
		for _, n := range body["notes"].([]any) {
			names = append(names, n.(map[string]any)["name"].(string))
		}
		next, hasNext := body["next"].(string)
		if hasNext && next == "" {
			t.Fatalf("GET /notes%s has an empty next; want it absent on the last page", query)
		}
		return names, next
	}

	first, next := page("")
	if len(first) != defaultListLimit || next == "" {
		t.Fatalf("default page: %d notes, next %q; want %d and a next cursor", len(first), next, defaultListLimit)
	}
	if rest, last := page("?after=" + url.QueryEscape(next)); len(rest) != 1 || rest[0] != want[100] || last != "" {
		t.Fatalf("second page = %v, next %q; want [%s] and no next", rest, last, want[100])
	}

	var got []string
	for query, pages := "?limit=7", 0; ; pages++ {
		names, next := page(query)
		got = append(got, names...)
		if next == "" {
			if pages != 14 {
				t.Fatalf("%d pages of 7 for 101 notes; want 15", pages+1)
			}
			break
		}
		query = "?limit=7&after=" + url.QueryEscape(next)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paging with limit 7 gave %v", got)
	}
	if all, next := page("?limit=1000"); len(all) != 101 || next != "" {
		t.Fatalf("limit=1000 gave %d notes, next %q", len(all), next)
	}

	for _, tt := range []struct{ query, want string }{
		{"?limit=0", `invalid limit="0": want an integer from 1 to 1000`},
		{"?limit=", `invalid limit="": want an integer`},
		{"?limit=1001", `invalid limit="1001"`},
		{"?limit=-1", `invalid limit="-1"`},
		{"?limit=ten", `invalid limit="ten"`},
		{"?limit=1.5", `invalid limit="1.5"`},
		{"?after=not%2Bbase64url", `invalid after="not+base64url": want the next value of a previous page`},
		{"?after=abcde", `invalid after="abcde"`},
		{"?after=ab%3D%3D", `invalid after="ab=="`},
		{"?after=ab%0Acd", `invalid after="ab\ncd"`},
		{"?after=" + strings.Repeat("A", 132), `invalid after=`},
	} {
		rec := do(s, "GET", "/notes"+tt.query, nil, nil)
		if msg, _ := jsonBody(t, rec)["error"].(string); rec.Code != 400 || !strings.HasPrefix(msg, tt.want) {
			t.Errorf("GET /notes%s = %d %q; want 400 starting %q", tt.query, rec.Code, msg, tt.want)
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing of the body, so that a measurement sees only what the
// server allocates.
type discardWriter struct {
	header http.Header
	status int
	n      int64
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// TestGetNoteStreams proves the note is not read into memory: serving an 8 MiB note allocates a small
// fraction of it.
func TestGetNoteStreams(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogLevel = 0 // info: no debug lines in the measurement
	s, _ := newServer(t, cfg, true)
	const size = 8 << 20
	content := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "big"), content, 0o600); err != nil {
		t.Fatal(err)
	}
	serve := func() *discardWriter {
		w := &discardWriter{header: http.Header{}}
		req := httptest.NewRequest("GET", "/notes/big", nil)
		req.Header.Set("Authorization", authorized["Authorization"])
		s.ServeHTTP(w, req)
		return w
	}
	serve() // warm up pools and lazily built state
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w := serve()
	runtime.ReadMemStats(&after)
	if w.status != 200 || w.n != size || w.header.Get("Content-Length") != fmt.Sprint(size) {
		t.Fatalf("GET = %d, %d bytes, Content-Length %q; want 200 and the whole note", w.status, w.n, w.header.Get("Content-Length"))
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > size/16 {
		t.Fatalf("serving a %d-byte note allocated %d bytes; want it streamed (under %d)", size, allocated, size/16)
	}
}

func TestStoreErrorsAnswers(t *testing.T) {
	s, logs := newServer(t, testConfig(t), true)
	for _, tt := range []struct {
		err        error
		status     int
		retryAfter bool
		wantError  string
	}{
		{fmt.Errorf("write note %q: %w", "x", notes.ErrNoSpace), 507, false, "insufficient storage"},
		{fmt.Errorf("write note %q: %w", "x", notes.ErrReadOnly), 503, true, "read-only"},
		{fmt.Errorf("%w: %q", notes.ErrNotFound, "x"), 404, false, "note not found"},
		{fmt.Errorf("%w %q", notes.ErrInvalidName, ".x"), 400, false, "invalid note name"},
		{errors.New("disk on fire"), 500, false, "internal server error"},
	} {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest("PUT", "/notes/x", nil)
		s.storeError(c, tt.err)
		msg, _ := jsonBody(t, rec)["error"].(string)
		if rec.Code != tt.status || !strings.Contains(msg, tt.wantError) || (rec.Header().Get("Retry-After") != "") != tt.retryAfter {
			t.Errorf("storeError(%v) = %d %q (Retry-After %q); want %d %q", tt.err, rec.Code, msg,
				rec.Header().Get("Retry-After"), tt.status, tt.wantError)
		}
	}
	// A write that met a read-only volume turns readiness off at once, without waiting for the next check.
	if rec := do(s, "GET", "/readyz", nil, nil); rec.Code != 503 {
		t.Fatalf("/readyz after a read-only write = %d; want 503", rec.Code)
	}
	if len(logs.find(t, "data directory is not writable: not ready")) != 1 {
		t.Fatal("the read-only volume was not logged")
	}
}

func TestReadinessFollowsTheDataDirectory(t *testing.T) {
	cfg := testConfig(t)
	s, logs := newServer(t, cfg, true)
	ready := func(wantCode int, wantStatus string) {
		t.Helper()
		rec := do(s, "GET", "/readyz", nil, nil)
		if got := jsonBody(t, rec)["status"]; rec.Code != wantCode || got != wantStatus {
			t.Fatalf("/readyz = %d %v; want %d %q", rec.Code, got, wantCode, wantStatus)
		}
	}
	ready(200, "ready")

	// The directory vanishes (an unmounted volume): root can write anywhere, but not into nothing.
	moved := cfg.DataDir + ".away"
	if err := os.Rename(cfg.DataDir, moved); err != nil {
		t.Fatal(err)
	}
	s.checkDataDir(t.Context())
	ready(503, "data directory not writable")
	if rec := do(s, "GET", "/startupz", nil, nil); rec.Code != 200 {
		t.Fatalf("/startupz = %d; want 200, a started pod must not be restarted for its volume", rec.Code)
	}
	if rec := do(s, "GET", "/healthz", nil, nil); rec.Code != 200 {
		t.Fatalf("/healthz = %d; want 200", rec.Code)
	}
	if err := os.Rename(moved, cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	s.checkDataDir(t.Context())
	ready(200, "ready")
	if len(logs.find(t, "data directory is not writable: not ready")) != 1 || len(logs.find(t, "data directory is writable again")) != 1 {
		t.Fatalf("log = %v; want one line for the failure and one for the recovery", logs.entries(t))
	}

	// Full: still ready, with the reason.
	s.setData(stateOf(fmt.Errorf("probe: %w", notes.ErrNoSpace)), notes.ErrNoSpace)
	rec := do(s, "GET", "/readyz", nil, nil)
	if body := jsonBody(t, rec); rec.Code != 200 || !strings.Contains(fmt.Sprint(body["reason"]), "full") {
		t.Fatalf("/readyz with a full volume = %d %v; want 200 with the reason", rec.Code, body)
	}
	if !strings.Contains(scrape(t, s), "goapp_data_dir_writable 0") {
		t.Fatal("goapp_data_dir_writable is not 0 for a full volume")
	}
}

// TestWriteCheckRunsPeriodically runs the real loop: readiness follows the directory within a few intervals.
func TestWriteCheckRunsPeriodically(t *testing.T) {
	cfg := testConfig(t)
	cfg.DataCheckInterval = 20 * time.Millisecond
	s, _, base, _, _ := startServing(t, cfg)
	waitReady(t, base)
	if err := os.Rename(cfg.DataDir, cfg.DataDir+".away"); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/readyz", 503)
	if err := os.Rename(cfg.DataDir+".away", cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/readyz", 200)
	if !strings.Contains(scrape(t, s), "goapp_data_dir_writable 1") {
		t.Fatal("goapp_data_dir_writable is not 1 after the recovery")
	}
}

// brokenBody yields some bytes, then fails, like a client whose upload breaks off.
type brokenBody struct{ sent bool }

func (b *brokenBody) Read(p []byte) (int, error) {
	if b.sent {
		return 0, io.ErrUnexpectedEOF
	}
	b.sent = true
	return copy(p, "half of it"), nil
}

func TestBrokenUploadIsTheClientsError(t *testing.T) {
	cfg := testConfig(t)
	s, logs := newServer(t, cfg, true)
	req := httptest.NewRequest("PUT", "/notes/broken", &brokenBody{})
	req.ContentLength = 100
	req.Header.Set("Authorization", authorized["Authorization"])
	rec := httptestRecord(s, req)
	if msg, _ := jsonBody(t, rec)["error"].(string); rec.Code != 400 || !strings.Contains(msg, "nothing was written") {
		t.Fatalf("PUT with a broken body = %d %q; want 400", rec.Code, msg)
	}
	if entries, _ := os.ReadDir(cfg.DataDir); len(entries) != 0 {
		t.Fatalf("a broken upload left %v", entries)
	}
	if len(logs.find(t, "request failed")) != 0 {
		t.Fatal("a broken upload was logged as a server failure")
	}
}
