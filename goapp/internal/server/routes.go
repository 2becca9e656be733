package server

import "github.com/gin-gonic/gin"

// routeUnmatched is the route label of every request that matched no route, so that scanners probing random
// paths cannot grow the metrics without bound.
const routeUnmatched = "unmatched"

// isProbe tells the routes that the platform polls every few seconds; their access log lines are logged at
// debug level so that they do not drown the requests of real clients.
func isProbe(route string) bool {
	switch route {
	case "/healthz", "/readyz", "/startupz", "/metrics":
		return true
	}
	return false
}

// routes lists the whole API in one place; goapp/openapi.yaml describes the same routes (a test compares them).
func (s *Server) routes(r *gin.Engine) {
	r.Use(s.drainNotice(), s.requestID(), s.observe(), s.recovery())

	r.GET("/hello", s.handleHello())
	r.GET("/version", s.handleVersion())
	r.GET("/openapi.yaml", s.handleOpenAPI())

	r.GET("/healthz", s.handleHealthz())
	r.GET("/readyz", s.handleReadyz())
	r.GET("/startupz", s.handleStartupz())
	r.GET("/metrics", s.handleMetrics())

	// The notes API needs the bearer token, and a data directory that passed its first check.
	notesAPI := r.Group("/notes", s.requireToken(), s.requireStarted())
	notesAPI.GET("", s.handleListNotes())
	notesAPI.PUT("/:name", s.handlePutNote())
	notesAPI.GET("/:name", s.handleGetNote())
	notesAPI.DELETE("/:name", s.handleDeleteNote())

	r.NoRoute(s.handleNotFound())
	r.NoMethod(s.handleMethodNotAllowed())
}
