package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"goapp/internal/config"
	"goapp/internal/notes"
)

// FuzzNoteRequest sends any path segment (raw, with any percent-encoding) and body through the whole HTTP
// stack. The server must never fail internally, never write outside the data directory, store a note only
// under the validated, decoded name, and return exactly what was stored.
func FuzzNoteRequest(f *testing.F) {
	f.Add("note", []byte("hello"))
	f.Add("..%2F..%2Fetc%2Fpasswd", []byte("x"))
	f.Add("%2e%2e", []byte{})
	f.Add("a%00b", []byte("nul"))
	f.Add("%252e%252e%252f", []byte("double"))
	f.Add("caf%C3%A9", []byte("utf8"))
	f.Add("a/b", []byte("slash"))
	f.Add("big", bytes.Repeat([]byte("x"), 65))
	f.Fuzz(func(t *testing.T, segment string, body []byte) {
		req, err := http.NewRequest(http.MethodPut, "/notes/"+segment, bytes.NewReader(body))
		if err != nil {
			return // not a URL any client could send
		}
		req.Header.Set("Authorization", authorized["Authorization"])
		cfg := testConfig(t)
		cfg.MaxBodyBytes = 64
		s, _ := newServer(t, cfg, true)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)

		entries, err := os.ReadDir(cfg.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		if parent, _ := os.ReadDir(filepath.Dir(cfg.DataDir)); len(parent) != 1 {
			t.Fatalf("PUT /notes/%s wrote next to the data directory: %v", segment, parent)
		}
		switch rec.Code {
		case http.StatusCreated:
			// The decoded path is what the server saw; a '#' or '?' in the segment ends the path.
			name := strings.TrimPrefix(req.URL.Path, "/notes/")
			if notes.ValidateName(name) != nil {
				t.Fatalf("PUT /notes/%s stored a note although the name %q is invalid", segment, name)
			}
			if len(entries) != 1 || entries[0].Name() != name {
				t.Fatalf("PUT /notes/%s stored %v; want exactly %q", segment, entries, name)
			}
			got := do(s, http.MethodGet, "/notes/"+name, nil, nil)
			if got.Code != http.StatusOK || !bytes.Equal(got.Body.Bytes(), body) {
				t.Fatalf("GET after PUT /notes/%s = %d %q; want %q", segment, got.Code, got.Body.Bytes(), body)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
			if len(entries) != 0 {
				t.Fatalf("refused PUT /notes/%s (%d) left %v on disk", segment, rec.Code, entries)
			}
			if rec.Code == http.StatusRequestEntityTooLarge && len(body) <= 64 {
				t.Fatalf("a %d-byte body was refused as too large", len(body))
			}
		default:
			t.Fatalf("PUT /notes/%s = %d %s; want 201, 400, 404 or 413", segment, rec.Code, rec.Body.String())
		}
	})
}

// FuzzDocumentedPatterns checks that the patterns goapp/openapi.yaml gives clients are exactly what the code
// accepts: a cursor matching the Cursor pattern (and length) parses and one that does not is refused; a name
// matching the NoteName pattern is valid and one that does not is refused. Positions and cursors round-trip.
func FuzzDocumentedPatterns(f *testing.F) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "openapi.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	namePattern := regexp.MustCompile(`(?m)^    NoteName:\n      type: string\n      pattern: "(.*)"$`).FindSubmatch(doc)
	if namePattern == nil {
		f.Fatal("no NoteName pattern in openapi.yaml")
	}
	nameRE := regexp.MustCompile(string(namePattern[1]))
	cursorRE := regexp.MustCompile(cursorPattern)
	for _, seed := range []string{"", "bm90ZS0x", "bm90ZS0", "abcde", "ab==", "a+b/", "ab\ncd", "note-1", ".hidden", "..",
		strings.Repeat("A", 128), strings.Repeat("A", 129)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		position, err := parseCursor(s)
		if documented := cursorRE.MatchString(s) && len(s) <= maxCursorLength; documented != (err == nil) {
			t.Fatalf("cursor %q: matches the documented pattern %v, parseCursor error %v", s, documented, err)
		}
		if err == nil {
			if again, err := parseCursor(encodeCursor(position)); err != nil || again != position {
				t.Fatalf("cursor %q decodes to %q, whose own cursor gives %q, %v", s, position, again, err)
			}
		}
		if encoded := encodeCursor(s); len(encoded) <= maxCursorLength {
			if back, err := parseCursor(encoded); err != nil || back != s || !cursorRE.MatchString(encoded) {
				t.Fatalf("position %q: cursor %q parses to %q, %v", s, encoded, back, err)
			}
		}
		if documented, valid := nameRE.MatchString(s), notes.ValidateName(s) == nil; documented != valid {
			t.Fatalf("name %q: matches the documented pattern %v, ValidateName says valid %v", s, documented, valid)
		}
	})
}

// FuzzBearerToken checks the Authorization parser: whatever the header, a token it returns is a non-empty
// token68 that the header carries after a Bearer scheme, and only the configured token is let through.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{"Bearer " + testToken, "bearer  abc==", "Basic x", "Bearer", "Bearer a b", "Bearer \t=",
		"Bearer ä", "BEARER a+/~._-=="} {
		f.Add(seed)
	}
	s, _ := newServer(f, testConfig(f), true)
	f.Fuzz(func(t *testing.T, header string) {
		token, ok := bearerToken([]string{header})
		if ok {
			scheme, rest, _ := strings.Cut(header, " ")
			if !strings.EqualFold(scheme, "Bearer") || !config.IsToken68(token) || strings.TrimSpace(rest) != token {
				t.Fatalf("header %q gave token %q", header, token)
			}
		}
		req := httptest.NewRequest(http.MethodGet, "/notes", nil)
		req.Header["Authorization"] = []string{header}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if allowed := rec.Code == http.StatusOK; allowed != (ok && token == testToken) {
			t.Fatalf("Authorization %q answered %d", header, rec.Code)
		}
		if rec.Code == http.StatusUnauthorized && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer ") {
			t.Fatalf("401 without a Bearer challenge for %q", header)
		}
	})
}
