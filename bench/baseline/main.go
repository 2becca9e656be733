// Command baseline is the floor that goapp's /hello is measured against: a bare net/http handler that
// answers GET /hello with the same JSON body and Content-Type as goapp's Gin handler, and nothing else (no
// router, middleware, access log or metrics). Like Gin's c.JSON, it encodes the body on every request.
//
// With -router gin it serves the same answer through a bare Gin engine instead (Gin's router and c.JSON, no
// middleware), which splits goapp's distance from the floor into what Gin costs and what goapp adds.
//
// The -*-timeout flags give the http.Server the read, write and idle deadlines that goapp's server sets on
// every connection (none by default, like a bare http.Server): with goapp's values, they tell what the
// deadlines alone cost.
//
//	baseline [-addr 127.0.0.1:8081] [-message "Hello from Gin!"] [-router nethttp|gin]
//	         [-read-header-timeout 0] [-read-timeout 0] [-write-timeout 0] [-idle-timeout 0]
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
	"time"

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
	srv, addr, err := newServer(args, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s (-addr): %w", addr, err)
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newServer is the server the flags describe, and the address it is to listen on.
func newServer(args []string, stderr io.Writer) (*http.Server, string, error) {
	flags := flag.NewFlagSet("baseline", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:8081", "listen address (host:port)")
	// goapp's default APP_MESSAGE, so both servers send bodies of the same size.
	message := flags.String("message", "Hello from Gin!", "message returned by GET /hello")
	router := flags.String("router", "nethttp", "what answers: nethttp (bare net/http) or gin (bare Gin engine)")
	srv := &http.Server{}
	flags.DurationVar(&srv.ReadHeaderTimeout, "read-header-timeout", 0, "http.Server.ReadHeaderTimeout (0: none)")
	flags.DurationVar(&srv.ReadTimeout, "read-timeout", 0, "http.Server.ReadTimeout (0: none)")
	flags.DurationVar(&srv.WriteTimeout, "write-timeout", 0, "http.Server.WriteTimeout (0: none)")
	flags.DurationVar(&srv.IdleTimeout, "idle-timeout", 0, "http.Server.IdleTimeout (0: none)")
	if err := flags.Parse(args); err != nil {
		return nil, "", err
	}
	if err := checkTimeouts(srv); err != nil {
		return nil, "", err
	}
	handler, err := routesFor(*router, *message)
	if err != nil {
		return nil, "", err
	}
	srv.Handler = handler
	return srv, *addr, nil
}

// checkTimeouts refuses a negative deadline, which http.Server would silently take as none.
func checkTimeouts(srv *http.Server) error {
	for _, t := range []struct {
		flag string
		d    time.Duration
	}{
		{"-read-header-timeout", srv.ReadHeaderTimeout},
		{"-read-timeout", srv.ReadTimeout},
		{"-write-timeout", srv.WriteTimeout},
		{"-idle-timeout", srv.IdleTimeout},
	} {
		if t.d < 0 {
			return fmt.Errorf("%s %s: want 0 (none) or a positive duration", t.flag, t.d)
		}
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
