// Command baseline is the floor that goapp's /hello is measured against: a bare net/http handler that
// answers GET /hello with the same JSON body and Content-Type as goapp's Gin handler, and nothing else (no
// router, middleware, access log or metrics). Like Gin's c.JSON, it encodes the body on every request.
//
// With -router gin it serves the same answer through a bare Gin engine instead (Gin's router and c.JSON, no
// middleware), which splits goapp's distance from the floor into what Gin costs and what goapp adds.
//
//	baseline [-addr 127.0.0.1:8081] [-message "Hello from Gin!"] [-router nethttp|gin]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"

	"github.com/gin-gonic/gin"
)

type helloResponse struct {
	Message string `json:"message"`
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "baseline: "+err.Error())
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	flags := flag.NewFlagSet("baseline", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:8081", "listen address (host:port)")
	// goapp's default APP_MESSAGE, so both servers send bodies of the same size.
	message := flags.String("message", "Hello from Gin!", "message returned by GET /hello")
	router := flags.String("router", "nethttp", "what answers: nethttp (bare net/http) or gin (bare Gin engine)")
	if err := flags.Parse(args); err != nil {
		return err
	}
	handler, err := routesFor(*router, *message)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s (-addr): %w", *addr, err)
	}
	srv := &http.Server{Handler: handler}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func routesFor(router, message string) (http.Handler, error) {
	switch router {
	case "nethttp":
		return routes(message), nil
	case "gin":
		return ginRoutes(message), nil
	}
	return nil, fmt.Errorf("-router %q: want nethttp or gin", router)
}

func routes(message string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", handleHello(message))
	return mux
}

func handleHello(message string) http.HandlerFunc {
	resp := helloResponse{Message: message}
	return func(w http.ResponseWriter, _ *http.Request) {
		body, err := json.Marshal(resp)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
}

// ginRoutes is Gin with nothing added: goapp's handler shape (c.JSON of a struct) on gin.New(), which has no
// middleware at all.
func ginRoutes(message string) http.Handler {
	gin.SetMode(gin.ReleaseMode)
	engine := gin.New()
	resp := helloResponse{Message: message}
	engine.GET("/hello", func(c *gin.Context) { c.JSON(http.StatusOK, resp) })
	return engine
}
