package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"goapp/internal/notes"
)

type errorResponse struct {
	Error string `json:"error"`
}

type statusResponse struct {
	Status string `json:"status"`
	// Reason says why, when the status alone does not.
	Reason string `json:"reason,omitempty"`
}

// retryAfterSeconds is what clients of a temporarily unavailable notes API are told to wait: about one data
// directory check.
const retryAfterSeconds = "5"

func abortWithError(c *gin.Context, code int, msg string) {
	c.AbortWithStatusJSON(code, errorResponse{Error: msg})
}

func (s *Server) handleHello() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.JSON(http.StatusOK, s.hello.Load())
	}
}

// handleOpenAPI serves the API's description: the document is the contract that schemathesis checks the
// running service against.
func (s *Server) handleOpenAPI() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Data(http.StatusOK, "application/yaml", s.openAPI)
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

// handleReadyz is readiness: ready once the data directory passed its first check, unready while the latest
// periodic check finds it not writable (a full volume keeps the pod ready, see dataFull), and from the moment
// shutdown begins.
func (s *Server) handleReadyz() gin.HandlerFunc {
	return func(c *gin.Context) {
		switch data := dataState(s.data.Load()); {
		case s.draining.Load():
			c.JSON(http.StatusServiceUnavailable, statusResponse{Status: "shutting down"})
		case !s.started.Load():
			c.JSON(http.StatusServiceUnavailable, statusResponse{Status: "starting"})
		case data == dataUnwritable:
			c.JSON(http.StatusServiceUnavailable, statusResponse{Status: "data directory not writable",
				Reason: "the latest write check of the data directory failed; see the log"})
		case data == dataFull:
			c.JSON(http.StatusOK, statusResponse{Status: "ready",
				Reason: "the data directory is full: writes answer 507, reads are served"})
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

// Paging of GET /notes.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

type listResponse struct {
	Notes []notes.Info `json:"notes"`
	// Next is the cursor of the following page; absent on the last page.
	Next string `json:"next,omitempty"`
}

func (s *Server) handleListNotes() gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, err := parseLimit(c.GetQuery("limit"))
		if err != nil {
			abortWithError(c, http.StatusBadRequest, err.Error())
			return
		}
		after, err := parseCursor(c.Query("after"))
		if err != nil {
			abortWithError(c, http.StatusBadRequest, err.Error())
			return
		}
		page, next, err := s.store.List(after, limit)
		if err != nil {
			s.internalError(c, err)
			return
		}
		resp := listResponse{Notes: page}
		if next != "" {
			resp.Next = encodeCursor(next)
		}
		c.JSON(http.StatusOK, resp)
	}
}

// parseLimit reads the limit query parameter; absent means the default, and present it must be an integer
// (an empty "limit=" is not one).
func parseLimit(v string, present bool) (int, error) {
	if !present {
		return defaultListLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxListLimit {
		return 0, fmt.Errorf("invalid limit=%q: want an integer from 1 to %d (default %d)", v, maxListLimit,
			defaultListLimit)
	}
	return n, nil
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
		info, created, err := s.store.Put(name, body, c.Request.ContentLength)
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			abortWithError(c, http.StatusRequestEntityTooLarge, tooLarge)
		case errors.Is(err, notes.ErrBodyRead):
			// The client's doing (it stopped sending, or too slowly for READ_TIMEOUT), not a server failure.
			s.requestLogger(c).Info("upload broke off; nothing written", "error", err.Error())
			abortWithError(c, http.StatusBadRequest, "the request body ended early or could not be read; nothing was written")
		case err != nil:
			s.storeError(c, err)
		case created:
			c.Header("Location", "/notes/"+name)
			c.JSON(http.StatusCreated, info)
		default:
			c.JSON(http.StatusOK, info)
		}
	}
}

// handleGetNote streams the note from its file: memory stays bounded by the copy buffer whatever the note's
// size and the number of readers.
func (s *Server) handleGetNote() gin.HandlerFunc {
	return func(c *gin.Context) {
		f, info, err := s.store.Open(c.Param("name"))
		if err != nil {
			s.storeError(c, err)
			return
		}
		defer f.Close()
		h := c.Writer.Header()
		h["Content-Type"] = []string{"application/octet-stream"}
		h["Content-Length"] = []string{strconv.FormatInt(info.Size, 10)}
		h["X-Content-Type-Options"] = []string{"nosniff"}
		c.Status(http.StatusOK)
		if _, err := io.Copy(c.Writer, f); err != nil {
			// The status is sent; the client sees a short body. Usually the client left or was too slow.
			s.requestLogger(c).Warn("note stream interrupted", "note", info.Name, "size", info.Size,
				"sent", c.Writer.Size(), "error", err.Error())
		}
	}
}

func (s *Server) handleDeleteNote() gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := s.store.Delete(c.Param("name")); err != nil {
			s.storeError(c, err)
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

// storeError answers an error of the note store.
func (s *Server) storeError(c *gin.Context, err error) {
	switch {
	case errors.Is(err, notes.ErrInvalidName):
		abortWithError(c, http.StatusBadRequest, err.Error())
	case errors.Is(err, notes.ErrNotFound):
		abortWithError(c, http.StatusNotFound, err.Error())
	case errors.Is(err, notes.ErrNoSpace):
		s.requestLogger(c).Warn("write refused: data directory full", "error", err.Error())
		abortWithError(c, http.StatusInsufficientStorage,
			"insufficient storage: the data directory is full; nothing was written")
	case errors.Is(err, notes.ErrReadOnly):
		// Readiness turns off now rather than at the next check.
		s.setData(dataUnwritable, err)
		c.Header("Retry-After", retryAfterSeconds)
		abortWithError(c, http.StatusServiceUnavailable,
			"the data directory is read-only; nothing was written, retry later")
	default:
		s.internalError(c, err)
	}
}

// internalError logs the cause and tells the client nothing about the server's internals.
func (s *Server) internalError(c *gin.Context, err error) {
	s.requestLogger(c).Error("request failed", "error", err.Error())
	abortWithError(c, http.StatusInternalServerError, "internal server error")
}
