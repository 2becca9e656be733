package server

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

const (
	requestIDHeader = "X-Request-ID"
	requestIDKey    = "request_id"
	// maxRequestIDLength bounds an incoming request id that is reused in logs and the response.
	maxRequestIDLength = 128
)

// requestID reuses a well-formed incoming X-Request-ID (so a proxy's id follows the request through the logs)
// and makes a new one otherwise.
func (s *Server) requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(requestIDHeader)
		if !validRequestID(id) {
			id = rand.Text()
		}
		c.Set(requestIDKey, id)
		c.Header(requestIDHeader, id)
		c.Next()
	}
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
	return s.logger.With(requestIDKey, c.GetString(requestIDKey))
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
		method := methodLabel(c.Request.Method)
		code := strconv.Itoa(status)
		s.metrics.requests.WithLabelValues(method, route, code).Inc()
		s.metrics.duration.WithLabelValues(method, route, code).Observe(elapsed.Seconds())

		level := slog.LevelInfo
		switch {
		case status >= http.StatusInternalServerError:
			level = slog.LevelError
		case isProbe(route) && status < http.StatusBadRequest:
			level = slog.LevelDebug
		}
		s.logger.LogAttrs(c.Request.Context(), level, "request",
			slog.String(requestIDKey, c.GetString(requestIDKey)),
			slog.String("method", c.Request.Method),
			slog.String("route", route),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", status),
			slog.Float64("latency_seconds", elapsed.Seconds()),
			slog.Int("bytes", max(c.Writer.Size(), 0)),
			slog.String("client_ip", c.ClientIP()),
		)
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
