// Package config reads the service's settings from environment variables, once, at start.
//
// Every variable has a default so the service runs with an empty environment; an empty value means "use the
// default" because a Kubernetes ConfigMap or a shell cannot always tell unset from empty. A value that is set
// but invalid is an error naming the variable and the accepted form, so a bad ConfigMap fails the rollout at
// start instead of misbehaving later.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Config is the validated configuration of one process. It is built once by Load and never mutated.
type Config struct {
	// Host is the IP address to listen on; empty means every interface.
	Host string
	// Port is the TCP port to listen on.
	Port int
	// Message is what GET /hello returns.
	Message string
	// LogLevel is the minimum level of the JSON log on stdout.
	LogLevel slog.Level
	// DataDir holds the notes; it is the PersistentVolumeClaim's mount point in Kubernetes.
	DataDir string
	// ShutdownDrain is how long /readyz answers 503 before the listener closes, so that load balancers and
	// Kubernetes endpoints stop routing here before connections are refused.
	ShutdownDrain time.Duration
	// ShutdownTimeout bounds how long in-flight requests may take to finish once the listener is closed.
	ShutdownTimeout time.Duration
	// MaxBodyBytes is the largest request body accepted; bigger bodies get 413.
	MaxBodyBytes int64
	// TrustedProxies lists the addresses or CIDR ranges whose X-Forwarded-For headers are believed.
	// Empty means none: the client address is always the TCP peer.
	TrustedProxies []string
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout protect against slow or idle clients.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// MaxHeaderBytes bounds the size of request headers.
	MaxHeaderBytes int
	// NotesToken is the bearer token every /notes request must carry. Empty means the notes API is closed:
	// it answers 401 to everything, so a deployment that forgot the secret exposes nothing.
	NotesToken string
	// DataCheckInterval is how often the data directory's writability is checked while serving; readiness
	// follows the result.
	DataCheckInterval time.Duration
	// DataDirRetryMax caps the pause between data directory checks at start. A volume that becomes writable
	// late is noticed at most this long after, so the startup probe's budget only needs to exceed the volume's
	// delay plus this cap.
	DataDirRetryMax time.Duration
	// ConfigFile names a file of NAME=value lines for the settings that may change while running (LiveKeys);
	// empty means none. It is watched, and a valid change is applied without a restart.
	ConfigFile string
}

// Live is the part of the configuration that may change while the process runs.
type Live struct {
	Message  string
	LogLevel slog.Level
}

// LiveKeys are the variables a CONFIG_FILE may set, in the order they are documented.
var LiveKeys = []string{"APP_MESSAGE", "LOG_LEVEL"}

// Live is the live part of c as the environment set it.
func (c Config) Live() Live {
	return Live{Message: c.Message, LogLevel: c.LogLevel}
}

// Addr is the listen address in host:port form.
func (c Config) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// Defaults of every variable, also quoted by the README.
const (
	DefaultPort              = 8080
	DefaultMessage           = "Hello from Gin!"
	DefaultLogLevel          = "info"
	DefaultDataDir           = "/data"
	DefaultShutdownDrain     = 5 * time.Second
	DefaultShutdownTimeout   = 15 * time.Second
	DefaultMaxBodyBytes      = 1 << 20
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 10 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultDataCheckInterval = 5 * time.Second
	DefaultDataDirRetryMax   = 5 * time.Second
)

// The defaults above fit together: a request accepted at the last moment of the drain is bounded by its own
// deadlines (READ_TIMEOUT for reading it, READ_HEADER_TIMEOUT + WRITE_TIMEOUT for answering it), and both fit
// in SHUTDOWN_TIMEOUT, so shutdown never cuts off an upload that the server accepted. Load enforces the same
// relation on whatever the operator sets.

// Bounds of the numeric settings: wide enough for any sane deployment, narrow enough to catch typos such as
// a value in milliseconds where seconds were meant.
const (
	maxBodyBytesLimit   = 1 << 30
	maxHeaderBytesLimit = 1 << 20
	maxShutdownDuration = 10 * time.Minute
	maxTimeout          = time.Hour
	minCheckInterval    = 100 * time.Millisecond
	maxCheckInterval    = time.Minute
	minNotesToken       = 16
	maxNotesToken       = 512
)

// Load builds a Config from getenv (os.Getenv in production). It reports every invalid variable, one per line.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	cfg := Config{
		Host:              p.host("HOST"),
		Port:              p.integer("PORT", DefaultPort, 1, 65535),
		Message:           p.text("APP_MESSAGE", DefaultMessage),
		LogLevel:          p.level("LOG_LEVEL", DefaultLogLevel),
		DataDir:           p.path("DATA_DIR", DefaultDataDir),
		ShutdownDrain:     p.duration("SHUTDOWN_DRAIN", DefaultShutdownDrain, 0, maxShutdownDuration),
		ShutdownTimeout:   p.duration("SHUTDOWN_TIMEOUT", DefaultShutdownTimeout, time.Second, maxShutdownDuration),
		MaxBodyBytes:      int64(p.integer("MAX_BODY_BYTES", DefaultMaxBodyBytes, 1, maxBodyBytesLimit)),
		TrustedProxies:    p.proxies("TRUSTED_PROXIES"),
		ReadHeaderTimeout: p.duration("READ_HEADER_TIMEOUT", DefaultReadHeaderTimeout, time.Millisecond, maxTimeout),
		ReadTimeout:       p.duration("READ_TIMEOUT", DefaultReadTimeout, time.Millisecond, maxTimeout),
		WriteTimeout:      p.duration("WRITE_TIMEOUT", DefaultWriteTimeout, time.Millisecond, maxTimeout),
		IdleTimeout:       p.duration("IDLE_TIMEOUT", DefaultIdleTimeout, time.Millisecond, maxTimeout),
		MaxHeaderBytes:    p.integer("MAX_HEADER_BYTES", DefaultMaxHeaderBytes, 1024, maxHeaderBytesLimit),
		NotesToken:        p.token("NOTES_TOKEN"),
		DataCheckInterval: p.duration("DATA_CHECK_INTERVAL", DefaultDataCheckInterval, minCheckInterval, maxCheckInterval),
		DataDirRetryMax:   p.duration("DATA_DIR_RETRY_MAX", DefaultDataDirRetryMax, minCheckInterval, maxCheckInterval),
		ConfigFile:        p.optionalPath("CONFIG_FILE"),
	}
	if len(p.errs) == 0 {
		p.shutdownFitsRequests(cfg)
	}
	if err := errors.Join(p.errs...); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LoadLive builds the live settings from getenv with the same rules and messages as Load.
func LoadLive(getenv func(string) string) (Live, error) {
	p := parser{getenv: getenv}
	live := Live{
		Message:  p.text("APP_MESSAGE", DefaultMessage),
		LogLevel: p.level("LOG_LEVEL", DefaultLogLevel),
	}
	if err := errors.Join(p.errs...); err != nil {
		return Live{}, err
	}
	return live, nil
}

// parser collects one error per invalid variable so that a broken ConfigMap is fixed in one round.
type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(name, value, accepted string) {
	p.errs = append(p.errs, fmt.Errorf("invalid %s=%q: want %s", name, value, accepted))
}

func (p *parser) lookup(name string) (string, bool) {
	v := strings.TrimSpace(p.getenv(name))
	return v, v != ""
}

func (p *parser) text(name, def string) string {
	// Not trimmed: leading or trailing spaces in a message are the operator's choice.
	if v := p.getenv(name); v != "" {
		return v
	}
	return def
}

func (p *parser) host(name string) string {
	v, ok := p.lookup(name)
	if !ok {
		return ""
	}
	addr, err := netip.ParseAddr(v)
	if err != nil || addr.Zone() != "" {
		p.fail(name, v, "an IP address such as 127.0.0.1 or ::1, or empty for every interface")
		return ""
	}
	return addr.String()
}

func (p *parser) integer(name string, def, lo, hi int) int {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("an integer from %d to %d", lo, hi))
		return def
	}
	return n
}

func (p *parser) duration(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := p.lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		p.fail(name, v, fmt.Sprintf("a Go duration such as 5s or 1m30s, from %s to %s", lo, hi))
		return def
	}
	return d
}

func (p *parser) level(name, def string) slog.Level {
	v, ok := p.lookup(name)
	if !ok {
		v = def
	}
	switch strings.ToLower(v) {
	case "debug":
		return slog.LevelDebug
	case "info":
		return slog.LevelInfo
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	p.fail(name, v, "one of debug, info, warn, error")
	return slog.LevelInfo
}

func (p *parser) path(name, def string) string {
	v, ok := p.lookup(name)
	if !ok {
		v = def
	}
	if strings.ContainsRune(v, 0) {
		p.fail(name, v, "a directory path")
		return def
	}
	return filepath.Clean(v)
}

// optionalPath is a file path, or empty for none.
func (p *parser) optionalPath(name string) string {
	v, ok := p.lookup(name)
	if !ok {
		return ""
	}
	if strings.ContainsRune(v, 0) {
		p.fail(name, v, "a file path, or empty for none")
		return ""
	}
	return filepath.Clean(v)
}

// token is a bearer token (RFC 6750's token68 alphabet). Its value is a secret, so an error never quotes it.
func (p *parser) token(name string) string {
	v, ok := p.lookup(name)
	if !ok {
		return ""
	}
	if len(v) < minNotesToken || len(v) > maxNotesToken || !IsToken68(v) {
		p.errs = append(p.errs, fmt.Errorf("invalid %s (value hidden, %d characters): want %d to %d characters "+
			"from A-Z a-z 0-9 - . _ ~ + / optionally ending in =, e.g. the output of 'openssl rand -base64 32'",
			name, len(v), minNotesToken, maxNotesToken))
		return ""
	}
	return v
}

// IsToken68 reports whether s is RFC 7235's token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// NOTES_TOKEN must be one, and the server parses `Authorization: Bearer` with the same function, so a token the
// configuration accepts is always one a client can send.
func IsToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// shutdownFitsRequests refuses a SHUTDOWN_TIMEOUT shorter than what a request accepted during the drain may
// take under its own deadlines: such a request would be cut off by the shutdown although the client did
// nothing wrong.
func (p *parser) shutdownFitsRequests(c Config) {
	answer := c.ReadHeaderTimeout + c.WriteTimeout
	if c.ShutdownTimeout >= c.ReadTimeout && c.ShutdownTimeout >= answer {
		return
	}
	p.errs = append(p.errs, fmt.Errorf("invalid SHUTDOWN_TIMEOUT=%q: want at least READ_TIMEOUT (%s) and "+
		"READ_HEADER_TIMEOUT + WRITE_TIMEOUT (%s), so that a request accepted before shutdown can finish; "+
		"raise SHUTDOWN_TIMEOUT or lower those", c.ShutdownTimeout.String(), c.ReadTimeout, answer))
}

func (p *parser) proxies(name string) []string {
	v, ok := p.lookup(name)
	if !ok {
		return nil
	}
	var out []string
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if _, err := netip.ParsePrefix(item); err == nil {
			out = append(out, item)
			continue
		}
		if _, err := netip.ParseAddr(item); err == nil {
			out = append(out, item)
			continue
		}
		p.fail(name, v, "a comma-separated list of IP addresses or CIDR ranges such as 10.0.0.0/8,192.168.1.7")
		return nil
	}
	return out
}
