package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"goapp/internal/config"
)

// bearerChallenge is the WWW-Authenticate value of every 401 (RFC 6750).
const bearerChallenge = `Bearer realm="goapp notes"`

// requireToken guards the notes API with NOTES_TOKEN. Without a token configured the API is closed rather
// than open: a deployment that forgot the secret exposes nothing.
func (s *Server) requireToken() gin.HandlerFunc {
	if s.cfg.NotesToken == "" {
		return func(c *gin.Context) {
			c.Header("WWW-Authenticate", bearerChallenge)
			abortWithError(c, http.StatusUnauthorized, "the notes API is disabled: NOTES_TOKEN is not set on the server")
		}
	}
	// Comparing digests keeps the comparison constant-time in the token's length too, which
	// subtle.ConstantTimeCompare alone would reveal.
	want := sha256.Sum256([]byte(s.cfg.NotesToken))
	return func(c *gin.Context) {
		given, ok := bearerToken(c.Request.Header["Authorization"])
		if !ok {
			c.Header("WWW-Authenticate", bearerChallenge)
			abortWithError(c, http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <NOTES_TOKEN>")
			return
		}
		got := sha256.Sum256([]byte(given))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			c.Header("WWW-Authenticate", bearerChallenge+`, error="invalid_token"`)
			abortWithError(c, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		c.Next()
	}
}

// bearerToken extracts the token of "Authorization: Bearer <token>" (the scheme in any case, RFC 7235). More
// than one Authorization header is ambiguous and refused.
func bearerToken(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.Trim(token, " \t")
	if !config.IsToken68(token) {
		return "", false
	}
	return token, true
}

// requireStarted answers 503 until the data directory passed its first check: before that it may not even
// exist.
func (s *Server) requireStarted() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !s.started.Load() {
			c.Header("Retry-After", retryAfterSeconds)
			abortWithError(c, http.StatusServiceUnavailable, "starting: the data directory is not ready yet")
			return
		}
		c.Next()
	}
}

// drainNotice tells every client that talks to the server during the shutdown drain to close its connection
// after this answer, so kept-alive connections move to ready replicas one request at a time instead of being
// cut while a client may be sending on them.
func (s *Server) drainNotice() gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.draining.Load() {
			c.Writer.Header()["Connection"] = []string{"close"}
		}
		c.Next()
	}
}
