// Command smoke is the workload of the local cluster's smoke test (tools/k8s/smoke-test.sh),
// packed FROM scratch and pulled from the local registry. As a server it proves that the pod
// can write to its volume under the pod's uid; `smoke resolve NAME` proves cluster DNS.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "smoke:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 2 && args[0] == "resolve" {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, args[1], addrs)
		return nil
	}
	if len(args) != 0 {
		return errors.New("usage: smoke | smoke resolve NAME")
	}
	dataDir := getenv("DATA_DIR")
	if dataDir == "" {
		return errors.New("DATA_DIR is required")
	}
	// Fail at start if the volume is not writable: the test reads that as the pod not running.
	marker := filepath.Join(dataDir, "written-by-uid-"+strconv.Itoa(os.Getuid()))
	if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		entries, err := os.ReadDir(dataDir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s uid=%d gid=%d files=%d\n", getenv("MESSAGE"), os.Getuid(), os.Getgid(), len(entries))
	})
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
