package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
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

// With goapp's values, the deadline flags make the floor pay for what goapp's server sets on every connection.
func TestTimeoutFlagsSetTheServersDeadlines(t *testing.T) {
	srv, addr, err := newServer([]string{"-addr", "127.0.0.1:9", "-read-header-timeout", "5s", "-read-timeout", "30s",
		"-write-timeout", "31s", "-idle-timeout", "2m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := []time.Duration{srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout}
	want := []time.Duration{5 * time.Second, 30 * time.Second, 31 * time.Second, 2 * time.Minute}
	if !slices.Equal(got, want) || addr != "127.0.0.1:9" || srv.Handler == nil {
		t.Fatalf("deadlines %v, addr %q, handler %v; want %v, 127.0.0.1:9 and a handler", got, addr, srv.Handler, want)
	}
	plain, _, err := newServer(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if plain.ReadHeaderTimeout != 0 || plain.ReadTimeout != 0 || plain.WriteTimeout != 0 || plain.IdleTimeout != 0 {
		t.Fatalf("without flags the floor has deadlines: %+v", plain)
	}
}

func TestNegativeTimeoutIsRefusedByName(t *testing.T) {
	_, _, err := newServer([]string{"-write-timeout", "-1s"}, io.Discard)
	if err == nil || err.Error() != "-write-timeout -1s: want 0 (none) or a positive duration" {
		t.Fatalf("err = %v", err)
	}
}
