// Package server is goapp's HTTP API: routes, handlers, middleware, metrics and the serve/shutdown lifecycle.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"goapp/internal/config"
	"goapp/internal/logging"
	"goapp/internal/notes"
)

// BuildInfo identifies the running binary; it is stamped at link time.
type BuildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
}

// Logs is where a server writes: Logger for lifecycle events, warnings and errors, AccessLog for the one line
// per request (logging.Sink gives a buffered one).
type Logs struct {
	Logger    *slog.Logger
	AccessLog *logging.AccessLog
}

// Server is one instance of the API with its own state, metrics registry and store.
type Server struct {
	cfg       config.Config
	logger    *slog.Logger
	accessLog *logging.AccessLog
	store     *notes.Store
	build     BuildInfo
	metrics   *metrics
	handler   http.Handler

	// started turns true once the data directory passed its write check; draining turns true when shutdown
	// begins. Together they decide /readyz and /startupz.
	started  atomic.Bool
	draining atomic.Bool

	// prepareRetry is the first pause between failed data directory checks; it doubles up to a minute.
	prepareRetry time.Duration
}

// New builds a server from its dependencies. It does not touch the disk or the network.
func New(cfg config.Config, logs Logs, store *notes.Store, build BuildInfo) (*Server, error) {
	if logs.Logger == nil || logs.AccessLog == nil {
		return nil, errors.New("server.New: Logs needs both Logger and AccessLog")
	}
	s := &Server{
		cfg:          cfg,
		logger:       logs.Logger,
		accessLog:    logs.AccessLog,
		store:        store,
		build:        build,
		metrics:      newMetrics(prometheus.NewRegistry(), build),
		prepareRetry: 500 * time.Millisecond,
	}
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	// gin trusts every proxy unless told otherwise, which lets any client spoof its address.
	if err := engine.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	// Route on the escaped path so that an encoded slash stays inside one path segment: "/notes/..%2Fx"
	// then reaches the notes handler and is refused by name validation instead of being routed elsewhere.
	engine.UseRawPath = true
	engine.UnescapePathValues = true
	// An API answers the path it was asked; redirects would hide client bugs.
	engine.RedirectTrailingSlash = false
	engine.RedirectFixedPath = false
	engine.HandleMethodNotAllowed = true
	s.routes(engine)
	s.handler = engine
	return s, nil
}

// ServeHTTP makes the server usable with httptest and any http.Server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

// Serve answers requests on ln until ctx is cancelled, then shuts down gracefully: /readyz turns 503, the
// server keeps serving for ShutdownDrain so that endpoints can be withdrawn, then stops accepting and waits up
// to ShutdownTimeout for in-flight requests. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	s.logger.Info("listening", "addr", ln.Addr().String(), "version", s.build.Version, "commit", s.build.Commit,
		"data_dir", s.store.Dir())

	prepareCtx, stopPrepare := context.WithCancel(ctx)
	prepared := make(chan struct{})
	go func() {
		defer close(prepared)
		s.prepare(prepareCtx)
	}()
	defer func() {
		stopPrepare()
		<-prepared
	}()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	s.draining.Store(true)
	// Clients holding keep-alive connections are told to reconnect, which moves them to other replicas.
	srv.SetKeepAlivesEnabled(false)
	s.logger.Info("shutdown started: readiness is off, draining", "drain", s.cfg.ShutdownDrain.String())
	drain := time.NewTimer(s.cfg.ShutdownDrain)
	defer drain.Stop()
	select {
	case <-drain.C:
	case err := <-serveErr:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	}

	s.logger.Info("closing listener, waiting for in-flight requests", "timeout", s.cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("in-flight requests did not finish within SHUTDOWN_TIMEOUT=%s: %w", s.cfg.ShutdownTimeout, err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	}
	s.logger.Info("stopped")
	return nil
}

// prepare readies the data directory, retrying with backoff: a volume that is slow to become writable makes
// the pod unready rather than crash-looping, and every failure is logged with its cause.
func (s *Server) prepare(ctx context.Context) {
	wait := s.prepareRetry
	for {
		err := s.store.Prepare()
		if err == nil {
			s.started.Store(true)
			s.logger.Info("ready", "data_dir", s.store.Dir())
			return
		}
		s.logger.Error("data directory check failed; not ready", "data_dir", s.store.Dir(), "error", err.Error(),
			"retry_in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, time.Minute)
	}
}
