package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"goapp/internal/notes"
)

type errorResponse struct {
	Error string `json:"error"`
}

type statusResponse struct {
	Status string `json:"status"`
}

func abortWithError(c *gin.Context, code int, msg string) {
	c.AbortWithStatusJSON(code, errorResponse{Error: msg})
}

func (s *Server) handleHello() gin.HandlerFunc {
	type response struct {
		Message string `json:"message"`
	}
	resp := response{Message: s.cfg.Message}
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, resp)
	}
}

func (s *Server) handleVersion() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, s.build)
	}
}

// handleHealthz is liveness: it answers from memory only, so a slow disk or a dependency outage never gets the
// container restarted.
func (s *Server) handleHealthz() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, statusResponse{Status: "ok"})
	}
}

func (s *Server) handleReadyz() gin.HandlerFunc {
	return func(c *gin.Context) {
		switch {
		case s.draining.Load():
			c.JSON(http.StatusServiceUnavailable, statusResponse{Status: "shutting down"})
		case !s.started.Load():
			c.JSON(http.StatusServiceUnavailable, statusResponse{Status: "starting"})
		default:
			c.JSON(http.StatusOK, statusResponse{Status: "ready"})
		}
	}
}

// handleStartupz is for a startup probe: 200 once the data directory passed its check, and it stays 200 during
// shutdown (unlike /readyz), so it never causes a restart of a pod that is merely draining.
func (s *Server) handleStartupz() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !s.started.Load() {
			c.JSON(http.StatusServiceUnavailable, statusResponse{Status: "starting"})
			return
		}
		c.JSON(http.StatusOK, statusResponse{Status: "started"})
	}
}

func (s *Server) handleMetrics() gin.HandlerFunc {
	h := promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{
		ErrorLog: slogPrintln{s.logger},
		Registry: s.metrics.registry,
	})
	return gin.WrapH(h)
}

func (s *Server) handleListNotes() gin.HandlerFunc {
	type response struct {
		Notes []notes.Info `json:"notes"`
	}
	return func(c *gin.Context) {
		list, err := s.store.List()
		if err != nil {
			s.internalError(c, err)
			return
		}
		c.JSON(http.StatusOK, response{Notes: list})
	}
}

func (s *Server) handlePutNote() gin.HandlerFunc {
	tooLarge := fmt.Sprintf("request body exceeds MAX_BODY_BYTES=%d", s.cfg.MaxBodyBytes)
	return func(c *gin.Context) {
		name := c.Param("name")
		if err := notes.ValidateName(name); err != nil {
			abortWithError(c, http.StatusBadRequest, err.Error())
			return
		}
		// Refuse early when the client announces the size, before reading a byte.
		if c.Request.ContentLength > s.cfg.MaxBodyBytes {
			abortWithError(c, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		body := http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxBodyBytes)
		info, created, err := s.store.Put(name, body)
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			abortWithError(c, http.StatusRequestEntityTooLarge, tooLarge)
		case err != nil:
			s.internalError(c, err)
		case created:
			c.Header("Location", "/notes/"+name)
			c.JSON(http.StatusCreated, info)
		default:
			c.JSON(http.StatusOK, info)
		}
	}
}

func (s *Server) handleGetNote() gin.HandlerFunc {
	return func(c *gin.Context) {
		content, err := s.store.Get(c.Param("name"))
		if s.noteError(c, err) {
			return
		}
		c.Header("X-Content-Type-Options", "nosniff")
		c.Data(http.StatusOK, "application/octet-stream", content)
	}
}

func (s *Server) handleDeleteNote() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.noteError(c, s.store.Delete(c.Param("name"))) {
			return
		}
		c.Status(http.StatusNoContent)
	}
}

func (s *Server) handleNotFound() gin.HandlerFunc {
	return func(c *gin.Context) {
		abortWithError(c, http.StatusNotFound, "no route for "+c.Request.URL.Path)
	}
}

func (s *Server) handleMethodNotAllowed() gin.HandlerFunc {
	return func(c *gin.Context) {
		// gin has already set the Allow header.
		abortWithError(c, http.StatusMethodNotAllowed,
			fmt.Sprintf("method %s not allowed for %s; allowed: %s", c.Request.Method, c.Request.URL.Path,
				c.Writer.Header().Get("Allow")))
	}
}

// noteError answers a store error and reports whether there was one.
func (s *Server) noteError(c *gin.Context, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, notes.ErrInvalidName):
		abortWithError(c, http.StatusBadRequest, err.Error())
	case errors.Is(err, notes.ErrNotFound):
		abortWithError(c, http.StatusNotFound, err.Error())
	default:
		s.internalError(c, err)
	}
	return true
}

// internalError logs the cause and tells the client nothing about the server's internals.
func (s *Server) internalError(c *gin.Context, err error) {
	s.requestLogger(c).Error("request failed", "error", err.Error())
	abortWithError(c, http.StatusInternalServerError, "internal server error")
}
