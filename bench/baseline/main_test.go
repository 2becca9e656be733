package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// The baseline is only a fair floor if it answers exactly what goapp's /hello answers.
func TestHelloMatchesGoapp(t *testing.T) {
	rec := httptest.NewRecorder()
	routes("Hello from Gin!").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hello", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if got, want := rec.Header().Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if got, want := rec.Body.String(), `{"message":"Hello from Gin!"}`; got != want {
		t.Errorf("body = %q, want %q", got, want)
	}
}

func TestOtherPathsAreNotFound(t *testing.T) {
	rec := httptest.NewRecorder()
	routes("x").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/notes/a", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", rec.Code)
	}
}
