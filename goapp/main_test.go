package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// asMainEnv makes the test binary run main() itself, so signal handling and exit codes are tested for real.
const asMainEnv = "GOAPP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		os.Args = []string{"goapp"}
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is written by the server's goroutines while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func mapEnv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestRunRefusesInvalidConfigBeforeListening(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"goapp"}, mapEnv(map[string]string{"PORT": "eighty"}), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `invalid PORT="eighty": want an integer from 1 to 65535`) {
		t.Fatalf("run = %v; want the PORT error", err)
	}
	if stdout.Len() != 0 {
		t.Fatalf("run logged %q before refusing its configuration", stdout.String())
	}
}

func TestRunRejectsUnknownCommand(t *testing.T) {
	err := run(context.Background(), []string{"goapp", "serve-me"}, mapEnv(nil), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `unknown command "serve-me"`) {
		t.Fatalf("run = %v; want an unknown command error", err)
	}
}

func TestRunServesAndStops(t *testing.T) {
	port := freePort(t)
	vars := map[string]string{
		"HOST": "127.0.0.1", "PORT": port, "DATA_DIR": t.TempDir(), "SHUTDOWN_DRAIN": "100ms",
		"APP_MESSAGE": "hi from the test",
	}
	stdout := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"goapp"}, mapEnv(vars), stdout, io.Discard) }()

	base := "http://127.0.0.1:" + port
	deadline := time.Now().Add(5 * time.Second)
	for run(context.Background(), []string{"goapp", "healthcheck", base + "/readyz"}, mapEnv(nil), io.Discard, io.Discard) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("never ready; log:\n%s", stdout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `{"message":"hi from the test"}` {
		t.Fatalf("/hello = %s", body)
	}
	http.DefaultClient.CloseIdleConnections()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run = %v; want nil after a graceful stop", err)
	}
	// The /hello access line was buffered; a graceful stop writes it.
	for _, msg := range []string{`"msg":"listening"`, `"msg":"ready"`, `"route":"/hello"`, `"msg":"stopped"`} {
		if !strings.Contains(stdout.String(), msg) {
			t.Errorf("log lacks %s:\n%s", msg, stdout.String())
		}
	}
}

func TestHealthcheck(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer ok.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	defer failing.Close()
	okPort := ok.Listener.Addr().(*net.TCPAddr).Port
	closedPort := freePort(t)

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string // empty: success
	}{
		{name: "2xx answer", args: []string{ok.URL}},
		{name: "default URL uses PORT", env: map[string]string{"PORT": strconv.Itoa(okPort)}},
		{name: "503 answer", args: []string{failing.URL + "/readyz"}, wantErr: "503 Service Unavailable"},
		{name: "nothing listening", args: []string{"http://127.0.0.1:" + closedPort + "/healthz"}, wantErr: "connection refused"},
		{name: "invalid PORT", env: map[string]string{"PORT": "x"}, wantErr: `invalid PORT="x"`},
		{name: "not an http URL", args: []string{"ftp://127.0.0.1/"}, wantErr: "want http:// or https://"},
		{name: "two URLs", args: []string{ok.URL, ok.URL}, wantErr: "at most one URL"},
		{name: "bad timeout", args: []string{"-timeout", "0s", ok.URL}, wantErr: "-timeout must be positive"},
		{name: "unknown flag", args: []string{"-verbose"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"goapp", "healthcheck"}, tt.args...)
			err := run(context.Background(), args, mapEnv(tt.env), io.Discard, io.Discard)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("healthcheck = %v; want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("healthcheck = %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestHealthcheckTimeout(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { <-release }))
	defer slow.Close()
	defer close(release)
	start := time.Now()
	err := run(context.Background(), []string{"goapp", "healthcheck", "-timeout", "100ms", slow.URL}, mapEnv(nil), io.Discard, io.Discard)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("healthcheck of a hanging server = %v after %s; want a deadline error after 100ms", err, time.Since(start))
	}
}

// mainProcess starts this test binary as the real program.
func mainProcess(t *testing.T, env ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), append([]string{asMainEnv + "=1"}, env...)...)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdout, stderr
}

func TestProcessExitsZeroOnSIGTERM(t *testing.T) {
	port := freePort(t)
	cmd, stdout, stderr := mainProcess(t, "HOST=127.0.0.1", "PORT="+port, "DATA_DIR="+t.TempDir(), "SHUTDOWN_DRAIN=50ms")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), `"msg":"ready"`) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("process never got ready:\n%s\n%s", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM the process ended with %v; want exit 0\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), `"msg":"stopped"`) {
		t.Fatalf("no stopped line:\n%s", stdout.String())
	}
}

func TestProcessExitsOneOnInvalidConfig(t *testing.T) {
	cmd, stdout, stderr := mainProcess(t, "PORT=99999", "LOG_LEVEL=chatty")
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("process ended with %v; want exit code 1", err)
	}
	want := fmt.Sprintf("goapp: invalid PORT=%q: want an integer from 1 to 65535\n", "99999") +
		fmt.Sprintf("goapp: invalid LOG_LEVEL=%q: want one of debug, info, warn, error\n", "chatty")
	if stderr.String() != want || stdout.String() != "" {
		t.Fatalf("stderr %q stdout %q; want stderr %q and no output", stderr.String(), stdout.String(), want)
	}
}

func TestRunRefusesAnInvalidConfigFileBeforeListening(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.env")
	if err := os.WriteFile(path, []byte("APP_MESSAGE=ok\nLOG_LEVEL=shout\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	vars := map[string]string{"HOST": "127.0.0.1", "PORT": port, "DATA_DIR": t.TempDir(), "CONFIG_FILE": path}
	err := run(context.Background(), []string{"goapp"}, mapEnv(vars), io.Discard, io.Discard)
	want := "CONFIG_FILE " + path + `: invalid LOG_LEVEL="shout": want one of debug, info, warn, error`
	if err == nil || err.Error() != want {
		t.Fatalf("run = %v; want %q", err, want)
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
		t.Fatalf("the port is taken after a refused start: %v", err)
	} else {
		ln.Close()
	}
}

func TestRunServesItsOpenAPIDocument(t *testing.T) {
	port := freePort(t)
	vars := map[string]string{"HOST": "127.0.0.1", "PORT": port, "DATA_DIR": t.TempDir(), "SHUTDOWN_DRAIN": "0s"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"goapp"}, mapEnv(vars), io.Discard, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	url := "http://127.0.0.1:" + port + "/openapi.yaml"
	deadline := time.Now().Add(5 * time.Second)
	for run(context.Background(), []string{"goapp", "healthcheck", url}, mapEnv(nil), io.Discard, io.Discard) != nil {
		if time.Now().After(deadline) {
			t.Fatal("no /openapi.yaml within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	served, _ := io.ReadAll(resp.Body)
	onDisk, err := os.ReadFile("openapi.yaml")
	if err != nil || !bytes.Equal(served, onDisk) {
		t.Fatalf("served %d bytes; want the embedded goapp/openapi.yaml (%d bytes, %v)", len(served), len(onDisk), err)
	}
}
