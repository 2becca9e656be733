package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
