package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchServer logs at the production level (info) to nowhere, so the numbers include the access log cost.
func benchServer(b *testing.B) *Server {
	cfg := testConfig(b)
	cfg.LogLevel = slog.LevelInfo
	s, err := New(cfg, newDeps(b, cfg, io.Discard))
	if err != nil {
		b.Fatal(err)
	}
	if !s.prepare(context.Background()) {
		b.Fatal("data directory not prepared")
	}
	return s
}

func BenchmarkHello(b *testing.B) {
	s := benchServer(b)
	req := httptest.NewRequest(http.MethodGet, "/hello", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func BenchmarkHelloParallel(b *testing.B) {
	s := benchServer(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/hello", nil)
		for pb.Next() {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d", rec.Code)
				return
			}
		}
	})
}

func BenchmarkPutNote(b *testing.B) {
	s := benchServer(b)
	content := bytes.Repeat([]byte("x"), 1<<10)
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPut, "/notes/bench", bytes.NewReader(content))
		req.Header.Set("Authorization", authorized["Authorization"])
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusCreated {
			b.Fatalf("status %d", rec.Code)
		}
	}
}

func BenchmarkGetNote(b *testing.B) {
	s := benchServer(b)
	content := bytes.Repeat([]byte("x"), 1<<10)
	if _, _, err := s.store.Put("bench", bytes.NewReader(content), -1); err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/notes/bench", nil)
	req.Header.Set("Authorization", authorized["Authorization"])
	b.SetBytes(int64(len(content)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
	}
}
