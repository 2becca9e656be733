// Package server is goapp's HTTP API: routes, handlers, middleware, metrics and the serve/shutdown lifecycle.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"goapp/internal/config"
	"goapp/internal/liveconfig"
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
// per request (logging.Sink gives a buffered one). Level, when set, is the level both write at; the server
// changes it when CONFIG_FILE sets LOG_LEVEL.
type Logs struct {
	Logger    *slog.Logger
	AccessLog *logging.AccessLog
	Level     *slog.LevelVar
}

// Deps are what a server is built from besides its configuration.
type Deps struct {
	Logs  Logs
	Store *notes.Store
	Build BuildInfo
	// OpenAPI is the API's description, served at /openapi.yaml.
	OpenAPI []byte
	// Live is CONFIG_FILE's source; nil when CONFIG_FILE is not set.
	Live *liveconfig.Source
}

// Server is one instance of the API with its own state, metrics registry and store.
type Server struct {
	cfg       config.Config
	logger    *slog.Logger
	accessLog *logging.AccessLog
	level     *slog.LevelVar
	store     *notes.Store
	build     BuildInfo
	openAPI   []byte
	live      *liveconfig.Source
	metrics   *metrics
	engine    *gin.Engine

	// hello is GET /hello's answer, replaced when CONFIG_FILE changes APP_MESSAGE.
	hello atomic.Pointer[helloResponse]

	// started turns true once the data directory passed its first check; draining turns true when shutdown
	// begins; data is the latest periodic check's verdict. Together they decide /readyz and /startupz.
	started  atomic.Bool
	draining atomic.Bool
	data     atomic.Int32 // a dataState

	// prepareRetry is the first pause between failed data directory checks at start; it doubles up to
	// DATA_DIR_RETRY_MAX.
	prepareRetry time.Duration
}

type helloResponse struct {
	Message string `json:"message"`
}

// New builds a server from its configuration and dependencies. Of the disk it reads only CONFIG_FILE, so an
// invalid one stops the process before it listens.
func New(cfg config.Config, deps Deps) (*Server, error) {
	if deps.Logs.Logger == nil || deps.Logs.AccessLog == nil {
		return nil, errors.New("server.New: Logs needs both Logger and AccessLog")
	}
	if deps.Store == nil || len(deps.OpenAPI) == 0 {
		return nil, errors.New("server.New: Deps needs a Store and the OpenAPI document")
	}
	s := &Server{
		cfg:          cfg,
		logger:       deps.Logs.Logger,
		accessLog:    deps.Logs.AccessLog,
		level:        deps.Logs.Level,
		store:        deps.Store,
		build:        deps.Build,
		openAPI:      deps.OpenAPI,
		live:         deps.Live,
		metrics:      newMetrics(prometheus.NewRegistry(), deps.Build, deps.Live != nil),
		prepareRetry: 500 * time.Millisecond,
	}
	s.data.Store(int32(dataUnchecked))
	s.applyLive(cfg.Live())
	if s.live != nil {
		live, err := s.live.Load()
		if err != nil {
			return nil, err
		}
		s.applyLive(live)
		s.metrics.configLoaded(time.Now(), false)
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
	s.engine = engine
	return s, nil
}

// applyLive puts settings that may change while running into effect.
func (s *Server) applyLive(live config.Live) {
	s.hello.Store(&helloResponse{Message: live.Message})
	if s.level != nil {
		s.level.Set(live.LogLevel)
	}
}

// configChanged is called by the CONFIG_FILE watch: a valid file is applied, an invalid one is reported and
// the last good settings stay.
func (s *Server) configChanged(live config.Live, err error) {
	if err != nil {
		s.metrics.configRejected()
		s.logger.Error("config file rejected; keeping the last good settings", "config_file", s.live.Path(),
			"error", err.Error())
		return
	}
	s.applyLive(live)
	s.metrics.configLoaded(time.Now(), true)
	s.logger.Info("config file applied", "config_file", s.live.Path(), "app_message", live.Message,
		"log_level", live.LogLevel.String())
}

// ServeHTTP makes the server usable with httptest and any http.Server.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.engine.ServeHTTP(w, r)
}

// Serve answers requests on ln until ctx is cancelled, then shuts down gracefully: /readyz turns 503 and every
// answer carries "Connection: close", the server keeps serving for ShutdownDrain so that endpoints can be
// withdrawn and clients move their connections elsewhere, then it stops accepting and waits up to
// ShutdownTimeout for in-flight requests. It returns nil after a clean shutdown.
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
	if s.cfg.NotesToken == "" {
		s.logger.Warn("notes API disabled: NOTES_TOKEN is not set, so every /notes request answers 401")
	}

	background, stopBackground := context.WithCancel(ctx)
	var tasks sync.WaitGroup
	tasks.Go(func() {
		if s.prepare(background) {
			s.watchDataDir(background)
		}
	})
	if s.live != nil {
		tasks.Go(func() {
			if err := s.live.Watch(background, s.configChanged); err != nil {
				s.logger.Error("config file is not watched; live changes will not apply", "error", err.Error())
			}
		})
	}
	defer func() {
		stopBackground()
		tasks.Wait()
	}()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	// Kept-alive connections stay open during the drain: closing an idle one while its client sends the next
	// request on it would fail that request. Instead every answer now says "Connection: close" (see
	// drainNotice), so each client learns it on its next request and reconnects to a ready replica.
	s.draining.Store(true)
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
