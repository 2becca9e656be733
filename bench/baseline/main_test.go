package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// Both floors are only fair if they answer exactly what goapp's /hello answers.
func TestHelloMatchesGoapp(t *testing.T) {
	for _, router := range []string{"nethttp", "gin"} {
		handler, err := routesFor(router, "Hello from Gin!")
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/hello", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status = %d, want 200", router, rec.Code)
		}
		if got, want := rec.Header().Get("Content-Type"), "application/json; charset=utf-8"; got != want {
			t.Errorf("%s: Content-Type = %q, want %q", router, got, want)
		}
		if got, want := rec.Body.String(), `{"message":"Hello from Gin!"}`; got != want {
			t.Errorf("%s: body = %q, want %q", router, got, want)
		}
	}
}

func TestUnknownRouterIsRefusedByName(t *testing.T) {
	_, err := routesFor("chi", "x")
	if err == nil || err.Error() != `-router "chi": want nethttp or gin` {
		t.Fatalf("err = %v", err)
	}
}

func TestOtherPathsAreNotFound(t *testing.T) {
	rec := httptest.NewRecorder()
	routes("x").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/notes/a", nil))
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status = %d, want 404", rec.Code)
	}
}
