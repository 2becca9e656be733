package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// healthcheck requests one URL and succeeds on a 2xx answer. It exists because the runtime image has no shell
// or curl: Docker's HEALTHCHECK and an in-cluster check Job run the service binary itself.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: goapp healthcheck [-timeout 3s] [URL]")
		fmt.Fprintln(stderr, "URL defaults to http://127.0.0.1:$PORT/healthz (PORT defaults to 8080).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("healthcheck: want at most one URL, got %d arguments", fs.NArg())
	}
	if *timeout <= 0 {
		return fmt.Errorf("healthcheck: -timeout must be positive, got %s", *timeout)
	}

	target := fs.Arg(0)
	if target == "" {
		port := strings.TrimSpace(getenv("PORT"))
		if port == "" {
			port = "8080"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("healthcheck: invalid PORT=%q: want an integer from 1 to 65535", port)
		}
		target = "http://127.0.0.1:" + port + "/healthz"
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("healthcheck: invalid URL %q: want http:// or https:// with a host", target)
	}

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	// No proxy: a check must reach the service itself even when the environment sets HTTP_PROXY.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("healthcheck: %s answered %s", u.Redacted(), resp.Status)
	}
	return nil
}
