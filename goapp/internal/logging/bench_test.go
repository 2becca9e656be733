package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"
)

// BenchmarkAccessLine writes goapp's access line to a pipe drained by another goroutine, as stdout is in a
// container (the runtime's log shim reads the other end): written at once ("direct", what goapp did before)
// against through the sink's buffer ("buffered").
func BenchmarkAccessLine(b *testing.B) {
	for _, tt := range []struct {
		name    string
		handler func(w io.Writer) (slog.Handler, func() error)
	}{
		{"direct", func(w io.Writer) (slog.Handler, func() error) {
			return slog.NewJSONHandler(w, nil), func() error { return nil }
		}},
		{"buffered", func(w io.Writer) (slog.Handler, func() error) {
			s := New(w, slog.LevelInfo)
			return s.Access, s.Close
		}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			r, w, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				_, _ = io.Copy(io.Discard, r)
			}()
			h, closeHandler := tt.handler(w)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				record := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
				record.AddAttrs(
					slog.String("request_id", "2SZLQGW3QHE7ZMMHRCTJMEV4BB"),
					slog.String("method", "GET"),
					slog.String("route", "/hello"),
					slog.String("path", "/hello"),
					slog.Int("status", 200),
					slog.Int64("latency_ns", 41235),
					slog.Int("bytes", 29),
					slog.String("client_ip", "10.0.3.17"),
				)
				if err := h.Handle(ctx, record); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := closeHandler(); err != nil {
				b.Fatal(err)
			}
			_ = w.Close()
			<-drained
			_ = r.Close()
		})
	}
}
