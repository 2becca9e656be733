package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDrainTellsClientsToReconnect: a kept-alive connection that is idle when shutdown begins is not cut; the
// client's next request on it is answered, with "Connection: close", and only then is the connection closed.
func TestDrainTellsClientsToReconnect(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownDrain = 2 * time.Second
	_, _, base, cancel, done := startServing(t, cfg)
	waitReady(t, base)
	client := &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	request := func() (resp *http.Response, reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", base+"/hello", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET /hello: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, reused
	}

	// resp.Close is how net/http's client reports "Connection: close".
	if resp, _ := request(); resp.Close {
		t.Fatal("before shutdown the answer already closes the connection")
	}
	cancel()
	waitStatus(t, base+"/readyz", 503)

	resp, reused := request()
	if !reused {
		t.Fatal("the kept-alive connection was closed when shutdown began; the client had to reconnect")
	}
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("during the drain: %d, close %v; want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	if _, reused := request(); reused {
		t.Fatal("the connection stayed open after an answer that said Connection: close")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func writeConfigFile(t *testing.T, path, content string) {
	t.Helper()
	// Written aside and renamed, as the kubelet and editors do, so the watcher never reads half a file.
	if err := os.WriteFile(path+".new", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

func TestLiveConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.ConfigFile = filepath.Join(t.TempDir(), "live.env")
	writeConfigFile(t, cfg.ConfigFile, "APP_MESSAGE=from the file\nLOG_LEVEL=warn\n")
	s, logs, base, _, _ := startServing(t, cfg)
	waitReady(t, base)

	hello := func() string {
		_, body := get(t, base+"/hello")
		return body
	}
	if got := hello(); got != `{"message":"from the file"}` || s.level.Level() != slog.LevelWarn {
		t.Fatalf("at start: /hello %s, level %s; want the file's settings", got, s.level.Level())
	}
	metric := func(want string) {
		t.Helper()
		if m := scrape(t, s); !strings.Contains(m, want) {
			t.Fatalf("metrics lack %q:\n%s", want, m)
		}
	}
	metric(`goapp_config_reloads_total{result="success"} 0`)
	metric("goapp_config_last_reload_successful 1")

	writeConfigFile(t, cfg.ConfigFile, "APP_MESSAGE=changed live\nLOG_LEVEL=debug\n")
	waitFor(t, "the changed message", func() bool { return hello() == `{"message":"changed live"}` })
	if s.level.Level() != slog.LevelDebug {
		t.Fatalf("level = %s; want debug from the file", s.level.Level())
	}
	metric(`goapp_config_reloads_total{result="success"} 1`)

	writeConfigFile(t, cfg.ConfigFile, "APP_MESSAGE=broken\nLOG_LEVEL=chatty\n")
	waitFor(t, "the rejection", func() bool { return len(logs.find(t, "config file rejected; keeping the last good settings")) == 1 })
	rejected := logs.find(t, "config file rejected; keeping the last good settings")[0]
	if msg, _ := rejected["error"].(string); !strings.Contains(msg, `invalid LOG_LEVEL="chatty"`) || !strings.Contains(msg, cfg.ConfigFile) {
		t.Fatalf("rejection logged %q; want it to name LOG_LEVEL and the file", msg)
	}
	if got := hello(); got != `{"message":"changed live"}` || s.level.Level() != slog.LevelDebug {
		t.Fatalf("after an invalid file: /hello %s, level %s; want the last good settings", got, s.level.Level())
	}
	metric(`goapp_config_reloads_total{result="failure"} 1`)
	metric("goapp_config_last_reload_successful 0")

	// Removing a line gives the key back to the environment (here: the default).
	writeConfigFile(t, cfg.ConfigFile, "LOG_LEVEL=info\n")
	waitFor(t, "the default message", func() bool { return hello() == `{"message":"Hello from Gin!"}` })
	metric("goapp_config_last_reload_successful 1")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestInvalidConfigFileStopsNew(t *testing.T) {
	cfg := testConfig(t)
	cfg.ConfigFile = filepath.Join(t.TempDir(), "live.env")
	if err := os.WriteFile(cfg.ConfigFile, []byte("LOG_LEVEL=loud\nPORT=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(cfg, newDeps(t, cfg, io.Discard))
	want := "CONFIG_FILE " + cfg.ConfigFile + `: line 2: unknown key "PORT": want one of APP_MESSAGE, LOG_LEVEL`
	if err == nil || err.Error() != want {
		t.Fatalf("New = %v; want %q", err, want)
	}
	cfg.ConfigFile += ".missing"
	if _, err := New(cfg, newDeps(t, cfg, io.Discard)); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("New with a missing CONFIG_FILE = %v; want an error", err)
	}
}

// TestDataDirRetryIsCapped: a data directory that keeps failing is retried at most DATA_DIR_RETRY_MAX apart,
// so the startup probe's budget is what bounds a slow volume.
func TestDataDirRetryIsCapped(t *testing.T) {
	cfg := testConfig(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = file
	cfg.DataDirRetryMax = 40 * time.Millisecond
	s, logs := newServer(t, cfg, false)
	s.prepareRetry = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan bool, 1)
	go func() { done <- s.prepare(ctx) }()
	waitFor(t, "six failed checks", func() bool { return len(logs.find(t, "data directory check failed; not ready")) >= 6 })
	cancel()
	if <-done {
		t.Fatal("prepare reported success on a file")
	}
	var waits []string
	for _, e := range logs.find(t, "data directory check failed; not ready") {
		waits = append(waits, e["retry_in"].(string))
	}
	if strings.Join(waits[:5], " ") != "10ms 20ms 40ms 40ms 40ms" {
		t.Fatalf("retry pauses %v; want doubling from 10ms capped at 40ms", waits)
	}
}
