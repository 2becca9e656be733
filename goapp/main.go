// Command goapp is a small HTTP service: a greeting, persistent notes, health probes and Prometheus metrics.
//
//	goapp                        serve, configured by environment variables (see README)
//	goapp healthcheck [-timeout d] [URL]
//	                             request URL (default http://127.0.0.1:$PORT/healthz); exit 0 on a 2xx answer
package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"goapp/internal/config"
	"goapp/internal/liveconfig"
	"goapp/internal/logging"
	"goapp/internal/notes"
	"goapp/internal/server"
)

// openAPI describes the HTTP API; it is served at /openapi.yaml.
//
//go:embed openapi.yaml
var openAPI []byte

// version and commit are stamped by the linker (-X main.version=... -X main.commit=...).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal starts a graceful stop, a second one kills the process at once.
		<-ctx.Done()
		stop()
	}()
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "goapp: "+line)
		}
		os.Exit(1)
	}
}

// run is the whole program; main only supplies the process's context, arguments, environment and streams, so
// tests can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 1 {
		switch args[1] {
		case "healthcheck":
			return healthcheck(ctx, args[2:], getenv, stderr)
		default:
			return fmt.Errorf("unknown command %q: want no argument (serve) or \"healthcheck\"", args[1])
		}
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	// One level for every line, changed in place when CONFIG_FILE sets LOG_LEVEL.
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	logs := logging.New(stdout, level)
	// Closing writes the access lines still buffered, whatever way run ends.
	defer func() { _ = logs.Close() }()
	deps := server.Deps{
		Logs:    server.Logs{Logger: logs.Logger, AccessLog: logs.Access, Level: level},
		Store:   notes.New(cfg.DataDir),
		Build:   server.BuildInfo{Version: version, Commit: commit, GoVersion: runtime.Version()},
		OpenAPI: openAPI,
	}
	if cfg.ConfigFile != "" {
		deps.Live = liveconfig.New(cfg.ConfigFile, getenv)
	}
	srv, err := server.New(cfg, deps)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		return fmt.Errorf("listen on %s (HOST/PORT): %w", cfg.Addr(), err)
	}
	return srv.Serve(ctx, ln)
}
