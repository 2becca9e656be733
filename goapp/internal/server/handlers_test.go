package server

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestEndpoints(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBodyBytes = 16
	s, _ := newServer(t, cfg, true)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "existing"), []byte("stored"), 0o600); err != nil {
		t.Fatal(err)
	}
	invalidName := "invalid note name"

	tests := []struct {
		name       string
		method     string
		target     string
		body       string
		wantStatus int
		// wantJSON lists fields the JSON answer must have; wantBody is the exact raw body otherwise.
		wantJSON map[string]any
		wantBody string
		// wantError is a substring of the "error" field of a JSON error answer.
		wantError  string
		wantHeader map[string]string
	}{
		{name: "hello", method: "GET", target: "/hello", wantStatus: 200,
			wantJSON: map[string]any{"message": "Hello from Gin!"}},
		{name: "version", method: "GET", target: "/version", wantStatus: 200,
			wantJSON: map[string]any{"version": "1.2.3", "commit": "abc1234", "go_version": "go1.test"}},
		{name: "healthz", method: "GET", target: "/healthz", wantStatus: 200, wantJSON: map[string]any{"status": "ok"}},
		{name: "readyz when ready", method: "GET", target: "/readyz", wantStatus: 200,
			wantJSON: map[string]any{"status": "ready"}},
		{name: "startupz when started", method: "GET", target: "/startupz", wantStatus: 200,
			wantJSON: map[string]any{"status": "started"}},

		{name: "put new note", method: "PUT", target: "/notes/fresh", body: "hello", wantStatus: 201,
			wantJSON: map[string]any{"name": "fresh", "size": float64(5)}, wantHeader: map[string]string{"Location": "/notes/fresh"}},
		{name: "put replaces note", method: "PUT", target: "/notes/existing", body: "new", wantStatus: 200,
			wantJSON: map[string]any{"name": "existing", "size": float64(3)}},
		{name: "put empty note", method: "PUT", target: "/notes/empty", wantStatus: 201,
			wantJSON: map[string]any{"name": "empty", "size": float64(0)}},
		{name: "put body at limit", method: "PUT", target: "/notes/full", body: strings.Repeat("x", 16), wantStatus: 201,
			wantJSON: map[string]any{"size": float64(16)}},
		{name: "put body over limit", method: "PUT", target: "/notes/big", body: strings.Repeat("x", 17), wantStatus: 413,
			wantError: "MAX_BODY_BYTES=16"},
		{name: "get note", method: "GET", target: "/notes/existing", wantStatus: 200, wantBody: "new",
			wantHeader: map[string]string{"Content-Type": "application/octet-stream", "X-Content-Type-Options": "nosniff"}},
		{name: "get escaped valid name", method: "GET", target: "/notes/exist%69ng", wantStatus: 200, wantBody: "new"},
		{name: "get missing note", method: "GET", target: "/notes/missing", wantStatus: 404, wantError: "note not found"},
		{name: "delete note", method: "DELETE", target: "/notes/fresh", wantStatus: 204, wantBody: ""},
		{name: "delete missing note", method: "DELETE", target: "/notes/fresh", wantStatus: 404, wantError: "note not found"},

		{name: "dot dot", method: "GET", target: "/notes/..", wantStatus: 400, wantError: invalidName},
		{name: "encoded dot dot", method: "GET", target: "/notes/%2e%2e", wantStatus: 400, wantError: invalidName},
		{name: "encoded slash traversal", method: "PUT", target: "/notes/..%2F..%2Fetc%2Fpasswd", body: "x", wantStatus: 400, wantError: invalidName},
		{name: "encoded backslash", method: "PUT", target: "/notes/..%5Cx", body: "x", wantStatus: 400, wantError: invalidName},
		{name: "double encoding", method: "PUT", target: "/notes/%252e%252e%252f", body: "x", wantStatus: 400, wantError: invalidName},
		{name: "NUL byte", method: "PUT", target: "/notes/a%00b", body: "x", wantStatus: 400, wantError: invalidName},
		{name: "hidden name", method: "PUT", target: "/notes/.tmp-x", body: "x", wantStatus: 400, wantError: invalidName},
		{name: "non-ASCII name", method: "PUT", target: "/notes/caf%C3%A9", body: "x", wantStatus: 400, wantError: invalidName},
		{name: "name too long", method: "PUT", target: "/notes/" + strings.Repeat("n", 65), body: "x", wantStatus: 400, wantError: invalidName},
		{name: "delete invalid name", method: "DELETE", target: "/notes/%2e%2e", wantStatus: 400, wantError: invalidName},
		{name: "plain slash traversal", method: "GET", target: "/notes/../etc/passwd", wantStatus: 404, wantError: "no route"},

		{name: "unknown route", method: "GET", target: "/nope", wantStatus: 404, wantError: "no route for /nope"},
		{name: "trailing slash is not redirected", method: "GET", target: "/hello/", wantStatus: 404, wantError: "no route"},
		{name: "wrong method on note", method: "POST", target: "/notes/x", wantStatus: 405, wantError: "method POST not allowed",
			wantHeader: map[string]string{"Allow": "GET, PUT, DELETE"}},
		{name: "wrong method on hello", method: "DELETE", target: "/hello", wantStatus: 405, wantError: "allowed: GET",
			wantHeader: map[string]string{"Allow": "GET"}},
		{name: "wrong method on list", method: "PUT", target: "/notes", wantStatus: 405, wantHeader: map[string]string{"Allow": "GET"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(s, tt.method, tt.target, strings.NewReader(tt.body), nil)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s = %d %q; want %d", tt.method, tt.target, rec.Code, rec.Body.String(), tt.wantStatus)
			}
			for k, v := range tt.wantHeader {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("header %s = %q; want %q", k, got, v)
				}
			}
			switch {
			case tt.wantJSON != nil:
				got := jsonBody(t, rec)
				for k, v := range tt.wantJSON {
					if got[k] != v {
						t.Errorf("field %s = %#v; want %#v (body %s)", k, got[k], v, rec.Body.String())
					}
				}
			case tt.wantError != "":
				msg, _ := jsonBody(t, rec)["error"].(string)
				if !strings.Contains(msg, tt.wantError) {
					t.Errorf("error = %q; want it to contain %q", msg, tt.wantError)
				}
			case tt.wantStatus >= 400:
				if _, ok := jsonBody(t, rec)["error"]; !ok {
					t.Errorf("error answer %q has no error field", rec.Body.String())
				}
			default:
				if rec.Body.String() != tt.wantBody {
					t.Errorf("body = %q; want %q", rec.Body.String(), tt.wantBody)
				}
			}
		})
	}

	t.Run("refused writes left nothing on disk", func(t *testing.T) {
		entries, err := os.ReadDir(cfg.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		if strings.Join(names, ",") != "empty,existing,full" {
			t.Fatalf("data directory holds %v; want empty, existing, full", names)
		}
		parent, _ := os.ReadDir(filepath.Dir(cfg.DataDir))
		if len(parent) != 1 {
			t.Fatalf("something was written next to the data directory: %v", parent)
		}
	})
}

func TestListNotes(t *testing.T) {
	s, _ := newServer(t, testConfig(t), true)
	rec := do(s, "GET", "/notes", nil, nil)
	if rec.Code != 200 || rec.Body.String() != `{"notes":[]}` {
		t.Fatalf("empty list = %d %s; want 200 {\"notes\":[]}", rec.Code, rec.Body.String())
	}
	for _, name := range []string{"b", "a"} {
		if rec := do(s, "PUT", "/notes/"+name, strings.NewReader("content of "+name), nil); rec.Code != 201 {
			t.Fatalf("PUT %s = %d", name, rec.Code)
		}
	}
	rec = do(s, "GET", "/notes", nil, nil)
	list, _ := jsonBody(t, rec)["notes"].([]any)
	if rec.Code != 200 || len(list) != 2 {
		t.Fatalf("list = %d %s; want two notes", rec.Code, rec.Body.String())
	}
	first := list[0].(map[string]any)
	if first["name"] != "a" || first["size"] != float64(len("content of a")) || first["modified"] == "" {
		t.Fatalf("first note = %v; want a with its size and modification time", first)
	}
}

func TestListNotesFailure(t *testing.T) {
	cfg := testConfig(t)
	s, logs := newServer(t, cfg, true)
	if err := os.RemoveAll(cfg.DataDir); err != nil {
		t.Fatal(err)
	}
	rec := do(s, "GET", "/notes", nil, nil)
	if rec.Code != 500 || jsonBody(t, rec)["error"] != "internal server error" {
		t.Fatalf("list of a vanished directory = %d %s; want 500 without details", rec.Code, rec.Body.String())
	}
	if failed := logs.find(t, "request failed"); len(failed) != 1 || !strings.Contains(failed[0]["error"].(string), "list notes") {
		t.Fatalf("the cause was not logged: %v", failed)
	}
}

func TestPutBodyLimitWithoutContentLength(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxBodyBytes = 10
	s, _ := newServer(t, cfg, true)
	for _, tt := range []struct {
		name   string
		body   string
		status int
	}{{"small chunked body", "0123456789", 201}, {"large chunked body", "0123456789X", 413}} {
		t.Run(tt.name, func(t *testing.T) {
			// OneByteReader hides the length, so the request is sent like a chunked upload.
			req, _ := http.NewRequest("PUT", "/notes/chunked", iotest.OneByteReader(strings.NewReader(tt.body)))
			req.ContentLength = -1
			req.Header.Set("Authorization", authorized["Authorization"])
			rec := httptestRecord(s, req)
			if rec.Code != tt.status {
				t.Fatalf("PUT %d bytes without Content-Length = %d %s; want %d", len(tt.body), rec.Code, rec.Body.String(), tt.status)
			}
		})
	}
	got, err := os.ReadFile(filepath.Join(cfg.DataDir, "chunked"))
	if err != nil || string(got) != "0123456789" {
		t.Fatalf("note = %q, %v; the refused upload must not replace the accepted one", got, err)
	}
}

func TestHelloMessageFromConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.Message = `Bonjour "monde" <3`
	s, _ := newServer(t, cfg, true)
	rec := do(s, "GET", "/hello", nil, nil)
	if got := jsonBody(t, rec)["message"]; got != cfg.Message {
		t.Fatalf("message = %q; want %q", got, cfg.Message)
	}
}

func TestReadinessAndStartup(t *testing.T) {
	s, _ := newServer(t, testConfig(t), false)
	check := func(stage string, wantReady, wantStartup int) {
		t.Helper()
		if rec := do(s, "GET", "/readyz", nil, nil); rec.Code != wantReady {
			t.Errorf("%s: /readyz = %d %s; want %d", stage, rec.Code, rec.Body.String(), wantReady)
		}
		if rec := do(s, "GET", "/startupz", nil, nil); rec.Code != wantStartup {
			t.Errorf("%s: /startupz = %d %s; want %d", stage, rec.Code, rec.Body.String(), wantStartup)
		}
		if rec := do(s, "GET", "/healthz", nil, nil); rec.Code != 200 {
			t.Errorf("%s: /healthz = %d; liveness must not depend on readiness", stage, rec.Code)
		}
	}
	check("before the data directory check", 503, 503)
	s.started.Store(true)
	check("after the data directory check", 200, 200)
	s.draining.Store(true)
	check("while draining", 503, 200)
}
