// Command smoke is the workload of the local cluster's tests (tools/k8s/smoke-test.sh and the
// NetworkPolicy test), packed FROM scratch and pulled from the local registry. As a server it
// proves that the pod can write to its volume under the pod's uid; `smoke resolve NAME` proves
// cluster DNS and `smoke apiversion` that a pod reaches the API server through the kubernetes
// Service. `smoke wait` idles until stopped, so that a test can `kubectl exec` the probes
// `smoke connect HOST:PORT` (a TCP connection) and `smoke get URL` (an HTTP GET) from a pod's
// network namespace; both exit 1 when the peer cannot be reached. `smoke get-retrying URL` repeats the GET
// each second for up to a minute: a pod that connects as it starts is refused by a NetworkPolicy that admits
// it until the policy controller has learnt its new address. For the add-ons' tests, `smoke
// serve` answers GET / with $MESSAGE on :8080 and counts its requests as http_requests_total on
// /metrics (Prometheus' text format), and `smoke spin` keeps one CPU busy until stopped, so that
// metrics-server and the HPA see real usage.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
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
	if len(args) == 1 && args[0] == "apiversion" {
		return apiVersion(ctx, getenv, stdout)
	}
	if len(args) == 1 && args[0] == "wait" {
		<-ctx.Done()
		return nil
	}
	if len(args) == 2 && args[0] == "connect" {
		return connect(ctx, args[1], stdout)
	}
	if len(args) == 2 && args[0] == "get" {
		return get(ctx, args[1], stdout)
	}
	if len(args) == 2 && args[0] == "get-retrying" {
		return retrying(ctx, time.Minute, time.Second, func() error { return get(ctx, args[1], stdout) })
	}
	if len(args) == 1 && args[0] == "serve" {
		return listen(ctx, counting(getenv("MESSAGE")))
	}
	if len(args) == 1 && args[0] == "spin" {
		spin(ctx)
		return nil
	}
	if len(args) != 0 {
		return errors.New("usage: smoke | smoke resolve NAME | smoke apiversion | smoke wait | smoke connect HOST:PORT | smoke get URL | smoke get-retrying URL | smoke serve | smoke spin")
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
	return listen(ctx, mux)
}

// counting answers GET / with message and serves the number of those answers on /metrics.
func counting(message string) http.Handler {
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		fmt.Fprintln(w, message)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		fmt.Fprintf(w, "# HELP http_requests_total Requests answered on /.\n# TYPE http_requests_total counter\n"+
			"http_requests_total{path=\"/\"} %d\n", served.Load())
	})
	return mux
}

// retrying calls attempt until it succeeds, every pause, for at most limit; the last error if it never does.
func retrying(ctx context.Context, limit, pause time.Duration, attempt func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := attempt()
		if err == nil || time.Now().Add(pause).After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// spin keeps one CPU busy with work the compiler cannot drop, until ctx ends.
func spin(ctx context.Context) {
	sum := sha256.Sum256(nil)
	for ctx.Err() == nil {
		for range 10000 {
			sum = sha256.Sum256(sum[:])
		}
	}
}

func listen(ctx context.Context, handler http.Handler) error {
	srv := &http.Server{Addr: ":8080", Handler: handler, ReadHeaderTimeout: 5 * time.Second}
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

// probeTimeout bounds each probe: a port that a network policy drops never answers.
const probeTimeout = 3 * time.Second

func connect(ctx context.Context, addr string, stdout io.Writer) error {
	conn, err := (&net.Dialer{Timeout: probeTimeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Fprintln(stdout, "connected to", addr)
	return nil
}

func get(ctx context.Context, url string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d %s\n", resp.StatusCode, body)
	return nil
}

// apiVersion asks the API server for its version the way in-cluster clients reach it: the
// kubernetes Service's address from the environment, verified against the mounted cluster CA,
// with the pod's service account token (the API server refuses anonymous requests).
func apiVersion(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	caPEM, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
	if err != nil {
		return err
	}
	token, err := os.ReadFile(filepath.Join(saDir, "token"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("no certificate in " + saDir + "/ca.crt")
	}
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return errors.New("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+net.JoinHostPort(host, port)+"/version", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return fmt.Errorf("GET /version: %s: %w", resp.Status, err)
	}
	fmt.Fprintln(stdout, "kubernetes", v.GitVersion)
	return nil
}
