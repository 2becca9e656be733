package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"goapp/internal/config"
)

// startServing runs Serve on a loopback listener and returns its base URL and a channel with Serve's result.
func startServing(t *testing.T, cfg config.Config) (*Server, *logBuffer, string, context.CancelFunc, <-chan error) {
	t.Helper()
	s, logs := newServer(t, cfg, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		done <- s.Serve(ctx, ln)
		close(finished)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return s, logs, "http://" + ln.Addr().String(), cancel, done
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	// A fresh connection per request: a kept-alive one would hide whether the listener still accepts.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitStatus polls url until it answers want, for at most 10 s.
func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, url)
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still %d %s after 10 s; want %d", url, code, body, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if code, _ := get(t, base+"/readyz"); code == 200 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("server never became ready")
}

// TestGracefulShutdown proves the shutdown order: readiness turns 503 while the listener still accepts, an
// upload that is in flight when shutdown starts completes and is stored, and only then does Serve return nil.
func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownDrain = 500 * time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	_, logs, base, cancel, done := startServing(t, cfg)
	waitReady(t, base)

	// The upload's body arrives in two parts, so the request is in flight while shutdown starts.
	bodyR, bodyW := io.Pipe()
	req, _ := http.NewRequest("PUT", base+"/notes/inflight", bodyR)
	req.ContentLength = int64(len("first half, second half"))
	req.Header.Set("Authorization", authorized["Authorization"])
	type result struct {
		code int
		err  error
	}
	uploaded := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			uploaded <- result{0, err}
			return
		}
		resp.Body.Close()
		uploaded <- result{resp.StatusCode, nil}
	}()
	if _, err := io.WriteString(bodyW, "first half, "); err != nil {
		t.Fatal(err)
	}

	shutdownAt := time.Now()
	cancel()
	// Readiness flips at once, and the listener still accepts new connections during the drain.
	deadline := time.Now().Add(cfg.ShutdownDrain / 2)
	for {
		code, body := get(t, base+"/readyz")
		if code == 503 && strings.Contains(body, "shutting down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %s long after shutdown began", code, body)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, _ := get(t, base+"/hello"); code != 200 {
		t.Fatalf("during the drain /hello = %d; want 200 (the listener must stay open)", code)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v while a request was still in flight", err)
	case <-time.After(cfg.ShutdownDrain + 200*time.Millisecond):
	}
	// Past the drain the listener is closed, yet the in-flight upload is still waited for.
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		conn.Close()
		t.Fatal("listener still accepts connections after the drain")
	}

	if _, err := io.WriteString(bodyW, "second half"); err != nil {
		t.Fatal(err)
	}
	bodyW.Close()
	if r := <-uploaded; r.err != nil || r.code != 201 {
		t.Fatalf("in-flight upload = %d, %v; want 201", r.code, r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v; want nil after a graceful shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the in-flight request finished")
	}
	if took := time.Since(shutdownAt); took < cfg.ShutdownDrain {
		t.Fatalf("shutdown took %s; want at least the drain of %s", took, cfg.ShutdownDrain)
	}
	got, err := os.ReadFile(filepath.Join(cfg.DataDir, "inflight"))
	if err != nil || string(got) != "first half, second half" {
		t.Fatalf("stored note = %q, %v; want the whole upload", got, err)
	}
	if len(logs.find(t, "stopped")) != 1 {
		t.Fatal("no \"stopped\" log line")
	}
}

func TestShutdownTimeoutIsAnError(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownDrain = 0
	cfg.ShutdownTimeout = 200 * time.Millisecond
	_, _, base, cancel, done := startServing(t, cfg)
	waitReady(t, base)

	bodyR, bodyW := io.Pipe()
	defer bodyW.Close()
	req, _ := http.NewRequest("PUT", base+"/notes/stuck", bodyR)
	req.ContentLength = 10
	req.Header.Set("Authorization", authorized["Authorization"])
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := io.WriteString(bodyW, "12345"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the server start reading the body
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
			t.Fatalf("Serve = %v; want an error naming SHUTDOWN_TIMEOUT", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not give up after SHUTDOWN_TIMEOUT")
	}
}

func TestSlowClientProtection(t *testing.T) {
	cfg := testConfig(t)
	cfg.ReadHeaderTimeout = 200 * time.Millisecond
	cfg.MaxHeaderBytes = 4096
	_, _, base, _, _ := startServing(t, cfg)
	addr := strings.TrimPrefix(base, "http://")

	t.Run("headers that never finish are cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		start := time.Now()
		if _, err := fmt.Fprint(conn, "GET /hello HTTP/1.1\r\nHost: x\r\n"); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(conn)
		if elapsed := time.Since(start); err != nil || elapsed > 3*time.Second {
			t.Fatalf("connection with unfinished headers: read err %v after %s; want closed by the server within READ_HEADER_TIMEOUT", err, elapsed)
		}
	})
	t.Run("oversized headers are refused", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := fmt.Fprintf(conn, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("b", 16<<10)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("oversized headers = %d; want 431", resp.StatusCode)
		}
	})
}

func TestUnusableDataDirKeepsServerUnready(t *testing.T) {
	cfg := testConfig(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = file
	s, logs := newServer(t, cfg, false)
	s.prepareRetry = 10 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	deadline := time.Now().Add(5 * time.Second)
	for len(logs.find(t, "data directory check failed; not ready")) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(logs.find(t, "data directory check failed; not ready")); n < 2 {
		t.Fatalf("%d failed checks logged; want retries", n)
	}
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "starting") {
		t.Fatalf("/readyz = %d %s; want 503 starting", code, body)
	}
	if code, _ := get(t, base+"/startupz"); code != 503 {
		t.Fatalf("/startupz = %d; want 503", code)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d; want 200, liveness never touches the disk", code)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve = %v; want nil", err)
	}
}

func TestServeReportsListenerFailure(t *testing.T) {
	cfg := testConfig(t)
	s, _ := newServer(t, cfg, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = s.Serve(context.Background(), ln)
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve on a closed listener = %v; want an error", err)
	}
}
