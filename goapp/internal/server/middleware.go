package server

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"

	"goapp/internal/logging"
)

const (
	// requestIDHeader is X-Request-ID in the canonical form net/http sends anyway; spelled so, it is used as a
	// map key directly instead of being canonicalized (and allocated) on every request.
	requestIDHeader = "X-Request-Id"
	// maxRequestIDLength bounds an incoming request id that is reused in logs and the response.
	maxRequestIDLength = 128
)

// requestID reuses a well-formed incoming X-Request-ID (so a proxy's id follows the request through the logs)
// and makes a new one otherwise.
func (s *Server) requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := headerValue(c.Request.Header, requestIDHeader)
		if !validRequestID(id) {
			id = rand.Text()
		}
		// The response header is where the id lives for the rest of the request (see requestIDOf): storing it
		// with c.Set as well would allocate gin's key map on every request.
		c.Writer.Header()[requestIDHeader] = []string{id}
		c.Next()
	}
}

// requestIDOf is the id that requestID chose for this request.
func requestIDOf(c *gin.Context) string {
	return headerValue(c.Writer.Header(), requestIDHeader)
}

// headerValue is Header.Get for a key already in canonical form.
func headerValue(h http.Header, canonicalKey string) string {
	if v := h[canonicalKey]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' ||
			c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// requestLogger returns the logger with the request's id attached.
func (s *Server) requestLogger(c *gin.Context) *slog.Logger {
	return s.logger.With(logging.RequestIDKey, requestIDOf(c))
}

// observe writes one access log line and records the request metrics, both after the handler (and any panic
// recovery) has set the final status.
func (s *Server) observe() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()

		c.Next()

		elapsed := time.Since(start)
		route := c.FullPath()
		if route == "" {
			route = routeUnmatched
		}
		status := c.Writer.Status()
		s.metrics.observeRequest(methodLabel(c.Request.Method), route, status, elapsed)

		level := slog.LevelInfo
		switch {
		case status >= http.StatusInternalServerError:
			level = slog.LevelError
		case isProbe(route) && status < http.StatusBadRequest:
			level = slog.LevelDebug
		}
		if !s.accessLog.Enabled(level) {
			return
		}
		// A failed log write does not fail the request.
		_ = s.accessLog.Write(level, logging.Request{
			Time:     start.Add(elapsed),
			ID:       requestIDOf(c),
			Method:   c.Request.Method,
			Route:    route,
			Path:     c.Request.URL.Path,
			Status:   status,
			Latency:  elapsed,
			Bytes:    max(c.Writer.Size(), 0),
			ClientIP: c.ClientIP(),
		})
	}
}

// methodLabel keeps the method label bounded: arbitrary method tokens from clients share one value.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// recovery turns a panic into a logged error with its stack and a JSON 500; gin's own recovery handles the
// details (broken pipes, http.ErrAbortHandler) and its text output is discarded.
func (s *Server) recovery() gin.HandlerFunc {
	return gin.CustomRecoveryWithWriter(nil, func(c *gin.Context, recovered any) {
		s.requestLogger(c).Error("panic while handling request",
			"panic", fmt.Sprint(recovered), "stack", string(debug.Stack()))
		abortWithError(c, http.StatusInternalServerError, "internal server error")
	})
}

// slogPrintln adapts slog to promhttp's error logger.
type slogPrintln struct{ logger *slog.Logger }

func (l slogPrintln) Println(v ...any) {
	l.logger.Error("metrics exposition failed", "error", fmt.Sprint(v...))
}
