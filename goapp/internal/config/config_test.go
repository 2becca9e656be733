package config

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestDefaults(t *testing.T) {
	cfg, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Host: "", Port: 8080, Message: "Hello from Gin!", LogLevel: slog.LevelInfo, DataDir: "/data",
		ShutdownDrain: 5 * time.Second, ShutdownTimeout: 15 * time.Second, MaxBodyBytes: 1 << 20,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		DataCheckInterval: 5 * time.Second, DataDirRetryMax: 5 * time.Second,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("defaults = %+v\nwant %+v", cfg, want)
	}
	if cfg.Addr() != ":8080" {
		t.Fatalf("Addr = %q; want :8080", cfg.Addr())
	}
}

func TestValidValues(t *testing.T) {
	tests := []struct {
		vars  map[string]string
		check func(Config) bool
	}{
		{map[string]string{"PORT": "1"}, func(c Config) bool { return c.Port == 1 }},
		{map[string]string{"PORT": " 65535 "}, func(c Config) bool { return c.Port == 65535 }},
		{map[string]string{"HOST": "127.0.0.1", "PORT": "9000"}, func(c Config) bool { return c.Addr() == "127.0.0.1:9000" }},
		{map[string]string{"HOST": "::1"}, func(c Config) bool { return c.Addr() == "[::1]:8080" }},
		{map[string]string{"APP_MESSAGE": "  spaced  "}, func(c Config) bool { return c.Message == "  spaced  " }},
		{map[string]string{"LOG_LEVEL": "DEBUG"}, func(c Config) bool { return c.LogLevel == slog.LevelDebug }},
		{map[string]string{"LOG_LEVEL": "warning"}, func(c Config) bool { return c.LogLevel == slog.LevelWarn }},
		{map[string]string{"LOG_LEVEL": "error"}, func(c Config) bool { return c.LogLevel == slog.LevelError }},
		{map[string]string{"DATA_DIR": "./data/"}, func(c Config) bool { return c.DataDir == "data" }},
		{map[string]string{"SHUTDOWN_DRAIN": "0s"}, func(c Config) bool { return c.ShutdownDrain == 0 }},
		{map[string]string{"SHUTDOWN_DRAIN": "1m30s"}, func(c Config) bool { return c.ShutdownDrain == 90*time.Second }},
		{map[string]string{"SHUTDOWN_TIMEOUT": "1s", "READ_HEADER_TIMEOUT": "100ms", "READ_TIMEOUT": "1s", "WRITE_TIMEOUT": "900ms"},
			func(c Config) bool { return c.ShutdownTimeout == time.Second }},
		{map[string]string{"MAX_BODY_BYTES": "1"}, func(c Config) bool { return c.MaxBodyBytes == 1 }},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.7,fd00::/8,"}, func(c Config) bool {
			return reflect.DeepEqual(c.TrustedProxies, []string{"10.0.0.0/8", "192.168.1.7", "fd00::/8"})
		}},
		{map[string]string{"READ_HEADER_TIMEOUT": "250ms", "READ_TIMEOUT": "1m", "WRITE_TIMEOUT": "2m", "IDLE_TIMEOUT": "1h",
			"SHUTDOWN_TIMEOUT": "2m250ms"},
			func(c Config) bool {
				return c.ReadHeaderTimeout == 250*time.Millisecond && c.ReadTimeout == time.Minute &&
					c.WriteTimeout == 2*time.Minute && c.IdleTimeout == time.Hour
			}},
		{map[string]string{"MAX_HEADER_BYTES": "1024"}, func(c Config) bool { return c.MaxHeaderBytes == 1024 }},
		{map[string]string{"NOTES_TOKEN": " abcdefghijklmnop\n"}, func(c Config) bool { return c.NotesToken == "abcdefghijklmnop" }},
		{map[string]string{"NOTES_TOKEN": "dGhpcyBpcyBhIHRva2Vu+/~-._=="}, func(c Config) bool {
			return c.NotesToken == "dGhpcyBpcyBhIHRva2Vu+/~-._=="
		}},
		{map[string]string{"DATA_CHECK_INTERVAL": "100ms", "DATA_DIR_RETRY_MAX": "1m"}, func(c Config) bool {
			return c.DataCheckInterval == 100*time.Millisecond && c.DataDirRetryMax == time.Minute
		}},
		{map[string]string{"CONFIG_FILE": "/etc/goapp/../goapp/live.env"}, func(c Config) bool {
			return c.ConfigFile == "/etc/goapp/live.env"
		}},
		// The shutdown relation holds exactly at the bound.
		{map[string]string{"READ_HEADER_TIMEOUT": "1s", "WRITE_TIMEOUT": "4s", "READ_TIMEOUT": "5s", "SHUTDOWN_TIMEOUT": "5s"},
			func(c Config) bool { return c.ShutdownTimeout == 5*time.Second }},
	}
	for _, tt := range tests {
		t.Run(strings.TrimSpace(formatVars(tt.vars)), func(t *testing.T) {
			cfg, err := Load(env(tt.vars))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !tt.check(cfg) {
				t.Fatalf("unexpected config %+v", cfg)
			}
		})
	}
}

func formatVars(vars map[string]string) string {
	var b strings.Builder
	for k, v := range vars {
		b.WriteString(k + "=" + v + " ")
	}
	return b.String()
}

func TestInvalidValues(t *testing.T) {
	tests := []struct {
		name, value, accepted string
	}{
		{"PORT", "http", "an integer from 1 to 65535"},
		{"PORT", "0", "an integer from 1 to 65535"},
		{"PORT", "65536", "an integer from 1 to 65535"},
		{"PORT", "80.5", "an integer from 1 to 65535"},
		{"HOST", "localhost:80", "an IP address"},
		{"HOST", "example", "an IP address"},
		{"HOST", "fe80::1%eth0", "an IP address"},
		{"LOG_LEVEL", "verbose", "one of debug, info, warn, error"},
		{"DATA_DIR", "a\x00b", "a directory path"},
		{"SHUTDOWN_DRAIN", "5", "a Go duration such as 5s"},
		{"SHUTDOWN_DRAIN", "-1s", "from 0s to 10m0s"},
		{"SHUTDOWN_DRAIN", "11m", "from 0s to 10m0s"},
		{"SHUTDOWN_TIMEOUT", "0s", "from 1s to 10m0s"},
		{"MAX_BODY_BYTES", "1MiB", "an integer from 1 to 1073741824"},
		{"MAX_BODY_BYTES", "0", "an integer from 1 to 1073741824"},
		{"MAX_BODY_BYTES", "2147483648", "an integer from 1 to 1073741824"},
		{"TRUSTED_PROXIES", "10.0.0.0/33", "IP addresses or CIDR ranges"},
		{"TRUSTED_PROXIES", "proxy.internal", "IP addresses or CIDR ranges"},
		{"READ_HEADER_TIMEOUT", "0s", "from 1ms to 1h0m0s"},
		{"READ_TIMEOUT", "forever", "a Go duration"},
		{"WRITE_TIMEOUT", "2h", "from 1ms to 1h0m0s"},
		{"IDLE_TIMEOUT", "-5s", "from 1ms to 1h0m0s"},
		{"MAX_HEADER_BYTES", "100", "an integer from 1024 to 1048576"},
		{"DATA_CHECK_INTERVAL", "10ms", "from 100ms to 1m0s"},
		{"DATA_CHECK_INTERVAL", "often", "a Go duration"},
		{"DATA_DIR_RETRY_MAX", "2m", "from 100ms to 1m0s"},
		{"CONFIG_FILE", "a\x00b", "a file path"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			_, err := Load(env(map[string]string{tt.name: tt.value}))
			if err == nil {
				t.Fatalf("Load accepted %s=%q", tt.name, tt.value)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "invalid "+tt.name+"=") || !strings.Contains(msg, tt.accepted) {
				t.Fatalf("error %q; want one line naming %s and the accepted form %q", msg, tt.name, tt.accepted)
			}
		})
	}
}

func TestEveryInvalidVariableIsReported(t *testing.T) {
	_, err := Load(env(map[string]string{"PORT": "x", "LOG_LEVEL": "loud", "MAX_BODY_BYTES": "-1"}))
	if err == nil {
		t.Fatal("Load accepted three invalid variables")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "PORT") || !strings.Contains(lines[1], "LOG_LEVEL") ||
		!strings.Contains(lines[2], "MAX_BODY_BYTES") {
		t.Fatalf("errors %q; want one line each for PORT, LOG_LEVEL, MAX_BODY_BYTES", lines)
	}
}

func TestNotesTokenErrorsNeverQuoteTheSecret(t *testing.T) {
	for _, secret := range []string{"short-secret", "has space inside the token", "ümlaut-ümlaut-ümlaut",
		"trailing=equals=then-more", strings.Repeat("t", 513)} {
		_, err := Load(env(map[string]string{"NOTES_TOKEN": secret}))
		if err == nil {
			t.Fatalf("NOTES_TOKEN %q was accepted", secret)
		}
		msg := err.Error()
		if strings.Contains(msg, secret) || !strings.HasPrefix(msg, "invalid NOTES_TOKEN (value hidden,") ||
			!strings.Contains(msg, "want 16 to 512 characters") {
			t.Fatalf("error %q; want one naming NOTES_TOKEN and the accepted form without the value", msg)
		}
	}
}

func TestShutdownTimeoutMustCoverRequestDeadlines(t *testing.T) {
	tests := []struct {
		vars map[string]string
		want string
	}{
		// The old defaults: 30 s deadlines against a 15 s shutdown.
		{map[string]string{"READ_TIMEOUT": "30s", "WRITE_TIMEOUT": "30s"},
			`invalid SHUTDOWN_TIMEOUT="15s": want at least READ_TIMEOUT (30s) and READ_HEADER_TIMEOUT + WRITE_TIMEOUT (35s)`},
		{map[string]string{"SHUTDOWN_TIMEOUT": "10s"},
			`invalid SHUTDOWN_TIMEOUT="10s": want at least READ_TIMEOUT (10s) and READ_HEADER_TIMEOUT + WRITE_TIMEOUT (15s)`},
		{map[string]string{"SHUTDOWN_TIMEOUT": "20s", "READ_TIMEOUT": "21s"},
			`invalid SHUTDOWN_TIMEOUT="20s": want at least READ_TIMEOUT (21s)`},
	}
	for _, tt := range tests {
		t.Run(formatVars(tt.vars), func(t *testing.T) {
			_, err := Load(env(tt.vars))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Load = %v; want one line starting %q", err, tt.want)
			}
		})
	}
	// A variable that is invalid on its own is reported alone, not also as a broken relation.
	_, err := Load(env(map[string]string{"READ_TIMEOUT": "soon"}))
	if err == nil || strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT") {
		t.Fatalf("Load = %v; want only the READ_TIMEOUT error", err)
	}
}

func TestLoadLive(t *testing.T) {
	live, err := LoadLive(env(map[string]string{"APP_MESSAGE": " hi ", "LOG_LEVEL": "warn"}))
	if err != nil || live != (Live{Message: " hi ", LogLevel: slog.LevelWarn}) {
		t.Fatalf("LoadLive = %+v, %v", live, err)
	}
	if live, err := LoadLive(env(nil)); err != nil || live != (Live{Message: DefaultMessage, LogLevel: slog.LevelInfo}) {
		t.Fatalf("LoadLive of nothing = %+v, %v; want the defaults", live, err)
	}
	if _, err := LoadLive(env(map[string]string{"LOG_LEVEL": "chatty"})); err == nil ||
		err.Error() != `invalid LOG_LEVEL="chatty": want one of debug, info, warn, error` {
		t.Fatalf("LoadLive = %v; want the LOG_LEVEL error of Load", err)
	}
	cfg, _ := Load(env(map[string]string{"APP_MESSAGE": "m", "LOG_LEVEL": "debug"}))
	if cfg.Live() != (Live{Message: "m", LogLevel: slog.LevelDebug}) {
		t.Fatalf("Config.Live = %+v", cfg.Live())
	}
}
